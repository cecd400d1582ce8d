/** Asks before a forward is deleted: deleting stops it, its backend, and removes it from the config. */
import { useEffect, useRef } from 'react';

/** Props of the confirmation. */
export interface ConfirmDeleteProps {
  label: string;
  busy: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}

/** An alert dialog with Delete and Cancel; Cancel has the focus, so Enter does no harm. */
export function ConfirmDelete({ label, busy, onConfirm, onCancel }: ConfirmDeleteProps) {
  const cancel = useRef<HTMLButtonElement>(null);
  useEffect(() => cancel.current?.focus(), []);
  return (
    <div
      className="confirm"
      role="alertdialog"
      aria-labelledby="confirm-title"
      aria-describedby="confirm-text"
      onKeyDown={(event) => {
        if (event.key === 'Escape') onCancel();
      }}
    >
      <h3 id="confirm-title">Delete {label}?</h3>
      <p id="confirm-text">
        Berth stops this forward and its backend, frees the port and removes it from the config. This cannot
        be undone.
      </p>
      <div className="actions">
        <button type="button" className="danger" onClick={onConfirm} disabled={busy}>
          Delete
        </button>
        <button type="button" ref={cancel} onClick={onCancel}>
          Cancel
        </button>
      </div>
    </div>
  );
}
