/**
 * The add/edit form's model: text fields ↔ a forward, validated with the engine's own ForwardSchema so the
 * form and the engine never disagree, and every problem mapped to the field it belongs to.
 */
import type { Problem } from '../../app/config/problems.js';
import { problemsFromIssues } from '../../app/config/problems.js';
import { ForwardSchema, type Forward, type ForwardInput } from '../../app/config/schema.js';
import { joinCommandLine, splitCommandLine } from './argv.js';

/** The form's fields, as text (what the inputs hold). */
export interface FormValues {
  id: string;
  name: string;
  protocol: 'tcp' | 'udp';
  listenAddress: string;
  listenPort: string;
  targetHost: string;
  targetPort: string;
  backendCommand: string;
}

/** One field of the form. */
export type Field = keyof FormValues;

/** Problems by field; `form` holds the ones that belong to no single field. */
export type FieldProblems = Partial<Record<Field | 'form', string>>;

/** The form of a new forward. */
export const EMPTY_VALUES: FormValues = {
  id: '',
  name: '',
  protocol: 'tcp',
  listenAddress: '127.0.0.1',
  listenPort: '',
  targetHost: '127.0.0.1',
  targetPort: '',
  backendCommand: '',
};

/** The form of an existing forward. */
export function valuesFromForward(forward: Forward): FormValues {
  return {
    id: forward.id,
    name: forward.name ?? '',
    protocol: forward.protocol,
    listenAddress: forward.listen.address,
    listenPort: String(forward.listen.port),
    targetHost: 'unix' in forward.target ? `unix:${forward.target.unix}` : forward.target.host,
    targetPort: 'port' in forward.target ? String(forward.target.port) : '',
    backendCommand: forward.backend ? joinCommandLine(forward.backend.command) : '',
  };
}

/** The forward the form describes (keeping `enabled` and the backend's other settings of `base`), or problems. */
export function forwardFromValues(
  values: FormValues,
  base?: Forward,
): { ok: true; forward: Forward } | { ok: false; problems: FieldProblems } {
  const problems: FieldProblems = {};
  const target = values.targetHost.trim().startsWith('unix:')
    ? { unix: values.targetHost.trim().slice('unix:'.length) }
    : { host: values.targetHost.trim(), port: toPort(values.targetPort) };
  let backend: ForwardInput['backend'];
  if (values.backendCommand.trim() !== '') {
    const split = splitCommandLine(values.backendCommand);
    if (split.ok) backend = { ...(base?.backend ?? {}), command: split.argv };
    else problems.backendCommand = `The command ${split.message}.`;
  }
  const input: ForwardInput = {
    id: values.id.trim(),
    ...(values.name.trim() !== '' ? { name: values.name.trim() } : {}),
    enabled: base?.enabled ?? true,
    protocol: values.protocol,
    listen: { address: values.listenAddress.trim(), port: toPort(values.listenPort) },
    target,
    ...(backend ? { backend } : {}),
  };
  const parsed = ForwardSchema.safeParse(input);
  if (!parsed.success) {
    // A command line that does not split is the clearer message for that field than zod's.
    return {
      ok: false,
      problems: { ...fieldProblems(problemsFromIssues(parsed.error.issues)), ...problems },
    };
  }
  if (Object.keys(problems).length > 0) return { ok: false, problems };
  return { ok: true, forward: parsed.data };
}

// An empty field is left out (zod says what is missing); anything else must read as a whole number.
function toPort(text: string): number {
  const trimmed = text.trim();
  if (trimmed === '') return undefined as unknown as number;
  return /^\d+$/.test(trimmed) ? Number(trimmed) : Number.NaN;
}

const FIELD_BY_PATH: [RegExp, Field][] = [
  [/^id$/, 'id'],
  [/^name$/, 'name'],
  [/^protocol$/, 'protocol'],
  [/^listen\.address$/, 'listenAddress'],
  [/^listen(\.port)?$/, 'listenPort'],
  [/^target\.port$/, 'targetPort'],
  [/^target(\.host|\.unix)?$/, 'targetHost'],
  [/^backend(\.|\[|$)/, 'backendCommand'],
];

const FIELD_LABELS: Record<Field, string> = {
  id: 'ID',
  name: 'Name',
  protocol: 'Protocol',
  listenAddress: 'Listen address',
  listenPort: 'Listen port',
  targetHost: 'Target host',
  targetPort: 'Target port',
  backendCommand: 'Backend command',
};

/** Places problems (local paths like `listen.port`, or the engine's `forward.listen.port`) next to their fields. */
export function fieldProblems(problems: readonly Problem[]): FieldProblems {
  const out: FieldProblems = {};
  for (const problem of problems) {
    const path = problem.path.replace(/^forward(\.|$)/, '');
    const field = FIELD_BY_PATH.find(([pattern]) => pattern.test(path))?.[1];
    const key = field ?? 'form';
    const sentence = field ? sentenceFor(field, problem.message) : `${problem.path}: ${problem.message}.`;
    out[key] = out[key] ? `${out[key]} ${sentence}` : sentence;
  }
  return out;
}

// "must be 1-65535" reads as "Listen port must be 1-65535."; a message that names its subject stands alone.
function sentenceFor(field: Field, message: string): string {
  const text = /^(must|is|has|needs|ends)\b/.test(message)
    ? `${FIELD_LABELS[field]} ${message}`
    : message.charAt(0).toUpperCase() + message.slice(1);
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

/** The label of each field, as docs/ui.md names it. */
export function fieldLabel(field: Field): string {
  return FIELD_LABELS[field];
}
