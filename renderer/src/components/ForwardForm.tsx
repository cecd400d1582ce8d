/**
 * Add or edit a forward. Fields carry the labels of docs/ui.md; the values are checked with the engine's own
 * ForwardSchema before sending, and the engine's problems come back next to the same fields.
 */
import { useEffect, useId, useRef, useState, type FormEvent, type ReactNode } from 'react';
import type { Forward } from '../../../app/config/schema.js';
import { ApiError } from '../../../app/api/errors.js';
import { splitCommandLine } from '../argv.js';
import {
  EMPTY_VALUES,
  fieldLabel,
  fieldProblems,
  forwardFromValues,
  valuesFromForward,
  type Field,
  type FieldProblems,
  type FormValues,
} from '../form-model.js';
import { useBerth } from '../hooks.js';

/** Props of the form: `existing` edits that forward, otherwise a new one is added. */
export interface ForwardFormProps {
  existing?: Forward;
  onDone: (id: string) => void;
  onCancel: () => void;
}

const ORDER: Field[] = [
  'id',
  'name',
  'protocol',
  'listenAddress',
  'listenPort',
  'targetHost',
  'targetPort',
  'backendCommand',
];

/** The add/edit form. */
export function ForwardForm({ existing, onDone, onCancel }: ForwardFormProps) {
  const { transport } = useBerth();
  const [values, setValues] = useState<FormValues>(() =>
    existing ? valuesFromForward(existing) : EMPTY_VALUES,
  );
  const [problems, setProblems] = useState<FieldProblems>({});
  const [saving, setSaving] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);
  const base = useId();
  const title = existing ? `Edit ${existing.name ?? existing.id}` : 'Add forward';

  useEffect(() => {
    formRef.current?.querySelector<HTMLElement>('input:not([disabled]), select')?.focus();
  }, []);

  const focusFirstProblem = (found: FieldProblems) => {
    const first = ORDER.find((field) => found[field]);
    if (first) document.getElementById(`${base}-${first}`)?.focus();
  };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const checked = forwardFromValues(values, existing);
    if (!checked.ok) {
      setProblems(checked.problems);
      focusFirstProblem(checked.problems);
      return;
    }
    setProblems({});
    setSaving(true);
    const { forward } = checked;
    const request = existing
      ? transport.call('update', { id: existing.id, forward })
      : transport.call('add', { forward });
    request.then(
      () => onDone(forward.id),
      (err: unknown) => {
        setSaving(false);
        const found = problemsFromError(err);
        setProblems(found);
        focusFirstProblem(found);
      },
    );
  };

  const set = (field: Field) => (event: { target: { value: string } }) =>
    setValues((previous) => ({ ...previous, [field]: event.target.value }));

  const field = (name: Field, input: (props: InputProps) => ReactNode, hint?: ReactNode) => {
    const id = `${base}-${name}`;
    const describedBy = [problems[name] ? `${id}-problem` : '', hint ? `${id}-hint` : '']
      .filter(Boolean)
      .join(' ');
    return (
      <div className={`field field-${name}`}>
        <label htmlFor={id}>{fieldLabel(name)}</label>
        {input({
          id,
          value: values[name],
          onChange: set(name),
          'aria-invalid': problems[name] ? true : undefined,
          'aria-describedby': describedBy || undefined,
        })}
        {problems[name] && (
          <p id={`${id}-problem`} className="field-problem">
            {problems[name]}
          </p>
        )}
        {hint && (
          <div id={`${id}-hint`} className="hint">
            {hint}
          </div>
        )}
      </div>
    );
  };

  const targetIsUnix = values.targetHost.trim().startsWith('unix:');

  return (
    <section
      className="panel"
      aria-labelledby={`${base}-title`}
      onKeyDown={(event) => {
        if (event.key === 'Escape') onCancel();
      }}
    >
      <h2 id={`${base}-title`}>{title}</h2>
      <form ref={formRef} onSubmit={submit} noValidate>
        {problems.form && (
          <p className="form-problem" role="alert">
            {problems.form}
          </p>
        )}
        <div className="grid">
          {field(
            'id',
            (p) => (
              <input {...p} disabled={existing !== undefined} autoComplete="off" spellCheck={false} />
            ),
            'Lowercase letters, digits and hyphens; used by the CLI, e.g. berth enable web.',
          )}
          {field(
            'name',
            (p) => (
              <input {...p} autoComplete="off" />
            ),
            'Optional, shown instead of the ID.',
          )}
          {field('protocol', (p) => (
            <select {...p}>
              <option value="tcp">TCP</option>
              <option value="udp">UDP</option>
            </select>
          ))}
        </div>
        <fieldset>
          <legend>Listen on</legend>
          <div className="grid">
            {field('listenAddress', (p) => (
              <input {...p} inputMode="decimal" spellCheck={false} />
            ))}
            {field('listenPort', (p) => (
              <input {...p} inputMode="numeric" spellCheck={false} />
            ))}
          </div>
        </fieldset>
        <fieldset>
          <legend>Send to</legend>
          <div className="grid">
            {field(
              'targetHost',
              (p) => (
                <input {...p} spellCheck={false} />
              ),
              'An IP address or host name, or unix:/path/to.sock for a Unix socket.',
            )}
            {field('targetPort', (p) => (
              <input {...p} inputMode="numeric" spellCheck={false} disabled={targetIsUnix} />
            ))}
          </div>
        </fieldset>
        <fieldset>
          <legend>Backend (optional)</legend>
          {field(
            'backendCommand',
            (p) => (
              <input {...p} className="mono" spellCheck={false} autoComplete="off" />
            ),
            <ArgvPreview line={values.backendCommand} />,
          )}
        </fieldset>
        <div className="actions">
          <button type="submit" className="primary" disabled={saving}>
            Save
          </button>
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
          {saving && <span role="status">Saving…</span>}
        </div>
      </form>
    </section>
  );
}

type InputProps = {
  id: string;
  value: string;
  onChange: (event: { target: { value: string } }) => void;
  'aria-invalid': true | undefined;
  'aria-describedby': string | undefined;
};

// How the command line splits: what the program will receive, since no shell ever runs it.
function ArgvPreview({ line }: { line: string }) {
  if (line.trim() === '')
    return <>A program Berth starts and watches, e.g. python3 -m http.server 8080. No shell is used.</>;
  const split = splitCommandLine(line);
  if (!split.ok) return <>The command {split.message}.</>;
  return (
    <>
      Runs without a shell as {split.argv.length} argument{split.argv.length === 1 ? '' : 's'}:{' '}
      <ol className="argv" aria-label="Backend argv">
        {split.argv.map((arg, i) => (
          <li key={i}>
            <code>{arg}</code>
          </li>
        ))}
      </ol>
    </>
  );
}

function problemsFromError(err: unknown): FieldProblems {
  if (err instanceof ApiError) {
    if (err.problems && err.problems.length > 0) return fieldProblems(err.problems);
    if (err.code === 'EEXIST') return { id: err.message };
    return { form: err.message };
  }
  return { form: err instanceof Error ? err.message : String(err) };
}
