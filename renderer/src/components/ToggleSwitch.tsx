/** The on/off switch of a forward, named "Toggle ID" (docs/ui.md, "Accessible names"). */
import { useState } from 'react';
import type { ForwardStatus } from '../../../app/api/contract.js';
import { useBerth } from '../hooks.js';

/** Enables or disables the forward; a failure becomes a notice with the engine's sentence. */
export function ToggleSwitch({ forward }: { forward: Pick<ForwardStatus, 'id' | 'enabled'> }) {
  const { store, transport } = useBerth();
  const [busy, setBusy] = useState(false);
  const toggle = () => {
    if (busy) return;
    setBusy(true);
    transport
      .call(forward.enabled ? 'disable' : 'enable', { id: forward.id })
      .catch((err: unknown) => store.notify('error', err instanceof Error ? err.message : String(err)))
      .finally(() => setBusy(false));
  };
  return (
    <button
      type="button"
      role="switch"
      className="switch"
      aria-checked={forward.enabled}
      aria-label={`Toggle ${forward.id}`}
      aria-busy={busy}
      // Not `disabled`: a disabled button drops the keyboard focus while the engine answers.
      aria-disabled={busy}
      onClick={toggle}
    >
      <span className="switch-track" aria-hidden="true">
        <span className="switch-thumb" />
      </span>
      <span className="switch-text" aria-hidden="true">
        {forward.enabled ? 'On' : 'Off'}
      </span>
    </button>
  );
}
