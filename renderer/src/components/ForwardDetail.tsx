/** One forward in full: counters, last error, backend process (pid, restarts, last exit, fd check) and logs. */
import { useState } from 'react';
import type { BackendStatus, ForwardStatus } from '../../../app/api/contract.js';
import { describeExit, describeListenAt, describeTargetAt, formatBytes, formatCount } from '../format.js';
import { useBerth } from '../hooks.js';
import { ConfirmDelete } from './ConfirmDelete.js';
import { LogTail } from './LogTail.js';
import { Sparkline } from './Sparkline.js';
import { StopLeftover } from './StopLeftover.js';
import { BackendBadge, HealthBadge, StateBadge } from './StateBadge.js';
import { ToggleSwitch } from './ToggleSwitch.js';

/** Props of the detail view. */
export interface ForwardDetailProps {
  forward: ForwardStatus;
  samples: readonly number[];
  logs: readonly string[] | undefined;
  onBack: () => void;
  onEdit: (id: string) => void;
  onDeleted: () => void;
}

const FD_CHECK: Record<BackendStatus['fdCheck'], string> = {
  clean: 'Clean: the backend holds none of Berth’s listening sockets.',
  leak: 'Leak: the backend holds one of Berth’s listening sockets, so the port stays busy after Berth closes it. Restart the backend.',
  unknown: 'Unknown: this platform cannot tell.',
};

/** The detail view of `forward`. */
export function ForwardDetail({ forward, samples, logs, onBack, onEdit, onDeleted }: ForwardDetailProps) {
  const { store, transport } = useBerth();
  const [confirming, setConfirming] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const label = forward.name ?? forward.id;

  const remove = () => {
    setDeleting(true);
    transport.call('remove', { id: forward.id }).then(onDeleted, (err: unknown) => {
      setDeleting(false);
      setConfirming(false);
      store.notify('error', err instanceof Error ? err.message : String(err));
    });
  };

  return (
    <section className="panel detail" aria-labelledby="detail-title">
      <div className="detail-head">
        <button type="button" className="link" onClick={onBack}>
          ← Back to forwards
        </button>
        <h2 id="detail-title" tabIndex={-1}>
          {label}
        </h2>
        <StateBadge state={forward.state} />
        {forward.state === 'listening' && forward.health.state !== 'off' && (
          <HealthBadge state={forward.health.state} />
        )}
        <ToggleSwitch forward={forward} />
        <span className="spacer" />
        <button type="button" onClick={() => onEdit(forward.id)}>
          Edit
        </button>
        <button type="button" className="danger" onClick={() => setConfirming(true)}>
          Delete…
        </button>
      </div>
      {confirming && (
        <ConfirmDelete
          label={label}
          busy={deleting}
          onConfirm={remove}
          onCancel={() => setConfirming(false)}
        />
      )}
      {forward.state === 'error' && forward.error && (
        <div className="form-problem" role="alert">
          <p>{forward.error.message}</p>
          {forward.error.holder?.leftover && <StopLeftover id={forward.id} />}
        </div>
      )}
      {forward.state === 'listening' && forward.health.message && (
        <p className={forward.health.state === 'unhealthy' ? 'form-problem' : 'muted'}>
          {forward.health.state === 'unhealthy' ? 'Unhealthy: ' : ''}
          {forward.health.message}
        </p>
      )}
      <div className="cards">
        <section aria-labelledby="traffic-title">
          <h3 id="traffic-title">Traffic</h3>
          <dl>
            <Item term="ID" value={forward.id} />
            <Item term="Listen" value={`${describeListenAt(forward)}/${forward.protocol}`} />
            <Item term="Target" value={describeTargetAt(forward)} />
            <Item term="Acquired" value={forward.via ? `${forward.via}` : '—'} />
            <Item
              term="Connections"
              value={`${formatCount(forward.connections.active)} active, ${formatCount(forward.connections.total)} total`}
            />
            <Item
              term="Bytes to target"
              value={`${formatCount(forward.bytes.toTarget)} (${formatBytes(forward.bytes.toTarget)})`}
            />
            <Item
              term="Bytes from target"
              value={`${formatCount(forward.bytes.fromTarget)} (${formatBytes(forward.bytes.fromTarget)})`}
            />
            <Item term="Errors" value={formatCount(forward.errors)} />
            <Item term="Last error" value={forward.lastError ? forward.lastError.message : 'None'} />
            <div>
              <dt>Throughput</dt>
              <dd>
                <Sparkline samples={samples} />
              </dd>
            </div>
          </dl>
        </section>
        <section aria-labelledby="backend-title">
          <h3 id="backend-title">Backend</h3>
          {forward.backend ? (
            <BackendDetail backend={forward.backend} logs={logs} />
          ) : (
            <p className="muted">
              No backend. Berth only forwards traffic for this forward; to have Berth start and watch the
              program behind it, edit the forward and fill in Backend command.
            </p>
          )}
        </section>
      </div>
    </section>
  );
}

function BackendDetail({ backend, logs }: { backend: BackendStatus; logs: readonly string[] | undefined }) {
  return (
    <>
      <dl>
        <div>
          <dt>State</dt>
          <dd>
            <BackendBadge state={backend.state} />
          </dd>
        </div>
        <Item term="PID" value={backend.pid === null ? '—' : String(backend.pid)} />
        <Item term="Restarts" value={formatCount(backend.restarts)} />
        <Item term="Last exit" value={describeExit(backend)} />
        <Item term="Listening sockets" value={FD_CHECK[backend.fdCheck]} />
        {backend.reason && <Item term="Reason" value={backend.reason} />}
      </dl>
      <h4>Recent output</h4>
      <LogTail lines={logs} />
    </>
  );
}

function Item({ term, value }: { term: string; value: string }) {
  return (
    <div>
      <dt>{term}</dt>
      <dd>{value}</dd>
    </div>
  );
}
