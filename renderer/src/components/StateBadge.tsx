/** A forward's or backend's state as a word with a coloured dot: the word carries the meaning, not the colour. */
import type { BackendStatus, ForwardState, HealthState } from '../../../app/api/contract.js';
import { BACKEND_WORDS, HEALTH_WORDS, STATE_WORDS } from '../format.js';

/** "Listening", "Stopped", "Starting" or "Error". */
export function StateBadge({ state }: { state: ForwardState }) {
  return (
    <span className={`badge badge-${state}`}>
      <span className="dot" aria-hidden="true" />
      {STATE_WORDS[state]}
    </span>
  );
}

/** "Running", "Restarting", "Exited", "Failed", "Stopped" (or "Starting"). */
export function BackendBadge({ state }: { state: BackendStatus['state'] }) {
  return (
    <span className={`badge badge-backend-${state}`}>
      <span className="dot" aria-hidden="true" />
      {BACKEND_WORDS[state]}
    </span>
  );
}

/** "Healthy", "Unhealthy" or "Unknown": whether the target answers its check. */
export function HealthBadge({ state }: { state: HealthState['state'] }) {
  return (
    <span className={`badge badge-health-${state}`}>
      <span className="dot" aria-hidden="true" />
      {HEALTH_WORDS[state]}
    </span>
  );
}
