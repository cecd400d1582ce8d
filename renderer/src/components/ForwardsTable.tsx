/** The table named "Forwards": one row per forward with its state, traffic, backend and switch. */
import type { ForwardStatus } from '../../../app/api/contract.js';
import { describeHolder, describeListenAt, describeTargetAt, formatCount } from '../format.js';
import { HISTORY_LENGTH } from '../store.js';
import { Sparkline } from './Sparkline.js';
import { StopLeftover } from './StopLeftover.js';
import { BackendBadge, HealthBadge, StateBadge } from './StateBadge.js';
import { ToggleSwitch } from './ToggleSwitch.js';

const NO_SAMPLES: readonly number[] = Array.from({ length: HISTORY_LENGTH }, () => 0);

/** Props of the forwards table. */
export interface ForwardsTableProps {
  forwards: readonly ForwardStatus[];
  throughput: Readonly<Record<string, readonly number[]>>;
  onOpen: (id: string) => void;
}

/** Every forward as a row; the name opens the forward's detail view. */
export function ForwardsTable({ forwards, throughput, onOpen }: ForwardsTableProps) {
  return (
    <div className="table-wrap">
      <table className="forwards" aria-label="Forwards">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Listen</th>
            <th scope="col">Target</th>
            <th scope="col">Protocol</th>
            <th scope="col">State</th>
            <th scope="col">Via</th>
            <th scope="col">Active</th>
            <th scope="col">Throughput</th>
            <th scope="col">Backend</th>
            <th scope="col">On</th>
          </tr>
        </thead>
        <tbody>
          {forwards.map((forward) => (
            <ForwardRow
              key={forward.id}
              forward={forward}
              samples={throughput[forward.id] ?? NO_SAMPLES}
              onOpen={onOpen}
            />
          ))}
        </tbody>
      </table>
    </div>
  );
}

function ForwardRow({
  forward,
  samples,
  onOpen,
}: {
  forward: ForwardStatus;
  samples: readonly number[];
  onOpen: (id: string) => void;
}) {
  return (
    <tr data-forward={forward.id}>
      <th scope="row">
        <button type="button" className="link name" onClick={() => onOpen(forward.id)}>
          {forward.name ?? forward.id}
        </button>
        {forward.name !== undefined && <span className="muted id">{forward.id}</span>}
      </th>
      <td className="mono">{describeListenAt(forward)}</td>
      <td className="mono">{describeTargetAt(forward)}</td>
      <td>{forward.protocol.toUpperCase()}</td>
      <td className="state-cell">
        <StateBadge state={forward.state} />
        {forward.state === 'listening' && forward.health.state !== 'off' && (
          <HealthBadge state={forward.health.state} />
        )}
        {forward.state === 'listening' && forward.health.state === 'unhealthy' && (
          <p className="error-text">{forward.health.message}</p>
        )}
        {forward.state === 'error' && forward.error && (
          <>
            {forward.error.holder && <p className="holder">{describeHolder(forward.error.holder)}</p>}
            <p className="error-text">{forward.error.message}</p>
            {forward.error.holder?.leftover && <StopLeftover id={forward.id} />}
          </>
        )}
      </td>
      <td>{forward.via ?? '—'}</td>
      <td className="num">{formatCount(forward.connections.active)}</td>
      <td>
        <Sparkline samples={samples} />
      </td>
      <td>
        {forward.backend ? <BackendBadge state={forward.backend.state} /> : <span className="muted">—</span>}
      </td>
      <td>
        <ToggleSwitch forward={forward} />
      </td>
    </tr>
  );
}
