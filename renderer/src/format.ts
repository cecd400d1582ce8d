/** How the UI words and numbers read: state words, addresses, byte counts and rates. */
import type { BackendStatus, ForwardState, ForwardStatus } from '../../app/api/contract.js';

/** The word for each forward state (docs/ui.md, "Accessible names"): shown as text, never only as colour. */
export const STATE_WORDS: Record<ForwardState, string> = {
  listening: 'Listening',
  stopped: 'Stopped',
  starting: 'Starting',
  error: 'Error',
};

/** The word for each health state (docs/ui.md): "Healthy", "Unhealthy", "Unknown" (off shows nothing). */
export const HEALTH_WORDS: Record<ForwardStatus['health']['state'], string> = {
  healthy: 'Healthy',
  unhealthy: 'Unhealthy',
  unknown: 'Unknown',
  off: 'Not checked',
};

/** "held by python3, pid 4242" (the program's name, not its path), or what Berth can say without a pid. */
export function describeHolder(holder: NonNullable<NonNullable<ForwardStatus['error']>['holder']>): string {
  if (holder.pid === null) return `held by a process of ${holder.user}`;
  const program = (holder.command ?? '').split(' ')[0]?.split('/').pop() || 'a process';
  return `held by ${program}, pid ${holder.pid}`;
}

/** The word for each backend state (docs/ui.md, "Accessible names"). */
export const BACKEND_WORDS: Record<BackendStatus['state'], string> = {
  starting: 'Starting',
  running: 'Running',
  restarting: 'Restarting',
  exited: 'Exited',
  failed: 'Failed',
  stopped: 'Stopped',
};

/** "127.0.0.1:8080" or "[::1]:8080". */
export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Where a forward listens, e.g. "127.0.0.1:8080". */
export function describeListenAt(forward: Pick<ForwardStatus, 'listen'>): string {
  return hostPort(forward.listen.address, forward.listen.port);
}

/** Where a forward sends traffic, e.g. "db.internal:5432" or "unix:/run/app.sock". */
export function describeTargetAt(forward: Pick<ForwardStatus, 'target'>): string {
  const { target } = forward;
  return 'unix' in target ? `unix:${target.unix}` : hostPort(target.host, target.port);
}

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

/** 1536 → "1.5 KB" (powers of 1024, one decimal below 10). */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = unit === 0 || value >= 10 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

/** 1536 → "1.5 KB/s". */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** A count with thousands separators, the same in every locale so tests and screenshots agree. */
export function formatCount(count: number): string {
  return String(count).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** "exit code 3", "signal SIGKILL" or "—": how a backend last ended. */
export function describeExit(backend: Pick<BackendStatus, 'exitCode' | 'signal'>): string {
  if (backend.signal) return `signal ${backend.signal}`;
  if (backend.exitCode !== null) return `exit code ${backend.exitCode}`;
  return '—';
}
