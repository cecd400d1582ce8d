/**
 * "Stop it": offered where a forward's port is held by a backend an earlier Berth left running. The engine
 * checks again that the holder is such a backend before it signals anything.
 */
import { useState } from 'react';
import { useBerth } from '../hooks.js';

/** Stops the leftover backend that holds the forward's port, then the forward takes the port. */
export function StopLeftover({ id }: { id: string }) {
  const { store, transport } = useBerth();
  const [busy, setBusy] = useState(false);
  const stop = () => {
    if (busy) return;
    setBusy(true);
    transport
      .call('stopLeftover', { id })
      .catch((err: unknown) => store.notify('error', err instanceof Error ? err.message : String(err)))
      .finally(() => setBusy(false));
  };
  return (
    <button
      type="button"
      className="small"
      aria-label={`Stop the process holding the port of ${id}`}
      aria-busy={busy}
      aria-disabled={busy}
      onClick={stop}
    >
      Stop it
    </button>
  );
}
