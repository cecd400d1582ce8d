/** Messages that belong to no single forward: failed commands, config notices from the engine. */
import { useBerth, useStoreState } from '../hooks.js';

/** The notices, newest last, each dismissible; errors are announced at once. */
export function Notices() {
  const { store } = useBerth();
  const { notices } = useStoreState();
  if (notices.length === 0) return null;
  return (
    <ul className="notices" aria-label="Notices">
      {notices.map((notice) => (
        <li
          key={notice.id}
          className={`notice notice-${notice.level}`}
          role={notice.level === 'error' ? 'alert' : 'status'}
        >
          <span>{notice.message}</span>
          <button type="button" className="link" onClick={() => store.dismiss(notice.id)}>
            Dismiss
          </button>
        </li>
      ))}
    </ul>
  );
}
