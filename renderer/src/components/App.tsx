/** The whole window: header, notices, and one of the table, the add/edit form or a forward's detail. */
import { useEffect, useMemo, useRef, useState } from 'react';
import type { Forward } from '../../../app/config/schema.js';
import { Berth, useBerth, useStoreState } from '../hooks.js';
import type { ForwardStore } from '../store.js';
import type { Transport } from '../transport.js';
import { EmptyState } from './EmptyState.js';
import { ForwardDetail } from './ForwardDetail.js';
import { ForwardForm } from './ForwardForm.js';
import { ForwardsTable } from './ForwardsTable.js';
import { Notices } from './Notices.js';

/** Which screen is showing. */
export type View =
  { kind: 'list' } | { kind: 'add' } | { kind: 'edit'; id: string } | { kind: 'detail'; id: string };

/** The app, given the store it reads and the transport it sends commands through. */
export function App({ store, transport }: { store: ForwardStore; transport: Transport }) {
  const context = useMemo(() => ({ store, transport }), [store, transport]);
  return (
    <Berth.Provider value={context}>
      <Window />
    </Berth.Provider>
  );
}

function Window() {
  const { connection, loaded, forwards, throughput, logs, announcement } = useStoreState();
  const [view, setView] = useState<View>({ kind: 'list' });
  const addButton = useRef<HTMLButtonElement>(null);
  const main = useRef<HTMLElement>(null);

  // When the screen changes, move focus to its heading so keyboard and screen reader users follow.
  useEffect(() => {
    if (view.kind !== 'add' && view.kind !== 'edit') main.current?.querySelector<HTMLElement>('h2')?.focus();
  }, [view]);

  const detailForward = view.kind === 'detail' ? forwards.find((f) => f.id === view.id) : undefined;
  const { store, transport } = useBerth();
  const detailId = view.kind === 'detail' ? view.id : undefined;
  useEffect(() => {
    // The detail view starts from the backend's recent output; `log` events keep it live from there.
    if (detailId === undefined) return;
    let current = true;
    transport.call('logs', { id: detailId }).then(
      ({ lines }) => {
        if (current) store.setLogs(detailId, lines);
      },
      () => undefined, // a forward removed meanwhile: the view closes itself
    );
    return () => {
      current = false;
    };
  }, [detailId, store, transport]);
  useEffect(() => {
    // A forward removed elsewhere (CLI, another window) closes its detail view.
    if (view.kind === 'detail' && loaded && !detailForward) setView({ kind: 'list' });
  }, [view, loaded, detailForward]);

  const openAdd = () => setView({ kind: 'add' });
  const toList = () => setView({ kind: 'list' });

  let content;
  if (view.kind === 'add') {
    content = <ForwardForm onDone={toList} onCancel={toList} />;
  } else if (view.kind === 'edit') {
    content = (
      <EditForward
        id={view.id}
        onDone={(id) => setView({ kind: 'detail', id })}
        onCancel={() => setView({ kind: 'detail', id: view.id })}
      />
    );
  } else if (view.kind === 'detail' && detailForward) {
    content = (
      <ForwardDetail
        forward={detailForward}
        samples={throughput[detailForward.id] ?? []}
        logs={logs[detailForward.id]}
        onBack={toList}
        onEdit={(id) => setView({ kind: 'edit', id })}
        onDeleted={toList}
      />
    );
  } else if (!loaded) {
    content = <p className="muted">Connecting to Berth…</p>;
  } else if (forwards.length === 0) {
    content = <EmptyState onAdd={openAdd} />;
  } else {
    content = (
      <>
        <h2 tabIndex={-1}>Forwards</h2>
        <ForwardsTable
          forwards={forwards}
          throughput={throughput}
          onOpen={(id) => setView({ kind: 'detail', id })}
        />
      </>
    );
  }

  return (
    <div className="app">
      <header className="top">
        <h1>Berth</h1>
        <ConnectionStatus connection={connection} />
        <span className="spacer" />
        <button
          type="button"
          className="primary"
          ref={addButton}
          onClick={openAdd}
          disabled={view.kind === 'add'}
        >
          Add forward
        </button>
      </header>
      <Notices />
      <main ref={main}>{content}</main>
      <p className="visually-hidden" role="status" aria-live="polite">
        {announcement}
      </p>
    </div>
  );
}

function ConnectionStatus({ connection }: { connection: 'connecting' | 'open' | 'closed' }) {
  const text =
    connection === 'open'
      ? 'Connected'
      : connection === 'connecting'
        ? 'Connecting…'
        : 'Disconnected: reconnecting. Is berth serve still running?';
  return (
    <span className={`connection connection-${connection}`} role="status">
      {text}
    </span>
  );
}

// The form needs the stored forward (backend cwd, env, restart), which the status does not carry.
function EditForward({
  id,
  onDone,
  onCancel,
}: {
  id: string;
  onDone: (id: string) => void;
  onCancel: () => void;
}) {
  const { transport } = useBerth();
  const [forward, setForward] = useState<Forward | undefined>();
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    let live = true;
    transport.call('get', { id }).then(
      (found) => live && setForward(found),
      (err: unknown) => live && setError(err instanceof Error ? err.message : String(err)),
    );
    return () => {
      live = false;
    };
  }, [id, transport]);
  if (error)
    return (
      <section className="panel">
        <p className="form-problem" role="alert">
          {error}
        </p>
        <button type="button" onClick={onCancel}>
          Back
        </button>
      </section>
    );
  if (!forward) return <p className="muted">Loading {id}…</p>;
  return <ForwardForm existing={forward} onDone={onDone} onCancel={onCancel} />;
}
