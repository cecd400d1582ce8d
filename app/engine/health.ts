/**
 * Health checks: does the forward's target answer? One check is a TCP connect, or an HTTP GET whose status is
 * below 500, bounded by its timeout (one timer and one socket, both gone when it settles). A HealthMonitor
 * runs them for one forward at its interval, counts failures in a row, and tells its owner (the engine) each
 * result; what to do about a failing target (report it, restart the backend) is the engine's to decide.
 */
import http from 'node:http';
import net from 'node:net';
import { describeTarget, type EffectiveHealth, type Target } from '../config/schema.js';

/** The health of a forward as status carries it (docs/api.md). */
export interface HealthStatus {
  state: 'healthy' | 'unhealthy' | 'unknown' | 'off';
  /** When the last check settled, ISO 8601; null before the first. */
  checkedAt: string | null;
  /** Checks failed in a row. */
  failures: number;
  /** Why the target does not answer ("nothing is listening on 127.0.0.1:3000"), or what Berth waits for. */
  message: string | null;
}

/** How one check ended. */
export interface CheckResult {
  ok: boolean;
  /** The reason of a failure, in words; null when it passed. */
  message: string | null;
}

/**
 * Runs one check of `target`; never rejects, and settles within `health.timeoutMs`, or at once when `signal`
 * aborts (its socket and timer are gone by then).
 */
export function checkTarget(
  target: Target,
  health: EffectiveHealth,
  signal?: AbortSignal,
): Promise<CheckResult> {
  if (health.check === 'off') return Promise.resolve({ ok: true, message: null });
  if (signal?.aborted) return Promise.resolve({ ok: false, message: 'cancelled' });
  return new Promise<CheckResult>((resolve) => {
    const where = describeTarget(target);
    let settled = false;
    // What the check opened: closed by finish(), whichever way it ends.
    const open: { socket?: net.Socket; request?: http.ClientRequest } = {};
    const onAbort = () => finish({ ok: false, message: 'cancelled' });
    const finish = (result: CheckResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      open.request?.destroy();
      open.socket?.destroy();
      resolve(result);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(
      () => finish({ ok: false, message: `no answer from ${where} in ${seconds(health.timeoutMs)}` }),
      health.timeoutMs,
    );
    const address = 'unix' in target ? { path: target.unix } : { host: target.host, port: target.port };
    const failed = (err: NodeJS.ErrnoException) => finish({ ok: false, message: connectFailure(where, err) });
    if (health.check === 'tcp') {
      const socket = net.connect(address);
      open.socket = socket;
      socket.once('connect', () => finish({ ok: true, message: null }));
      socket.once('error', failed);
      return;
    }
    const hostHeader = 'unix' in target ? 'localhost' : hostForHeader(target.host, target.port);
    const request = http.request({
      ...('unix' in target ? { socketPath: target.unix } : { host: target.host, port: target.port }),
      method: 'GET',
      path: health.path,
      agent: false,
      headers: { host: hostHeader, 'user-agent': 'berth-health-check', connection: 'close' },
    });
    open.request = request;
    request.once('response', (response) => {
      const status = response.statusCode ?? 0;
      // The status line is the answer; the body is never read.
      response.destroy();
      if (status < 500) finish({ ok: true, message: null });
      else finish({ ok: false, message: `HTTP ${status} from ${health.path}` });
    });
    request.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'HPE_INVALID_CONSTANT' || err.code?.startsWith('HPE_')) {
        finish({ ok: false, message: `${where} does not speak HTTP (its answer is not an HTTP response)` });
      } else if (err.code === 'ECONNRESET' || err.code === 'EPIPE') {
        finish({ ok: false, message: `${where} closed the connection before answering ${health.path}` });
      } else failed(err);
    });
    request.end();
  });
}

/** What the owner of a monitor hears. */
export interface HealthHooks {
  /** A check settled (the status is already updated). */
  onResult(status: HealthStatus, result: CheckResult): void;
}

/**
 * Checks one forward's target every interval while started. `failures` checks failed in a row make it
 * unhealthy, one success healthy. While `waiting` (a backend starting), failures are not counted: the status
 * stays unknown, and checks come every second until the target answers (readiness).
 */
export class HealthMonitor {
  private timer: NodeJS.Timeout | undefined;
  private inFlight: AbortController | undefined;
  private again = false;
  private started = false;
  private health: HealthStatus;
  private waitingFor = false;

  constructor(
    private readonly target: () => Target,
    private readonly settings: EffectiveHealth,
    private readonly hooks: HealthHooks,
  ) {
    this.health = this.initial();
  }

  get status(): HealthStatus {
    return { ...this.health };
  }

  get enabled(): boolean {
    return this.settings.check !== 'off';
  }

  /** Starts checking: the first check at once. */
  start(): void {
    if (!this.enabled || this.started) return;
    this.started = true;
    this.schedule(0);
  }

  /** Stops checking: a check in flight is cancelled (its socket closed), no timer is left. Back to unknown. */
  stop(): void {
    this.started = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.inFlight?.abort();
    this.inFlight = undefined;
    this.again = false;
    this.waitingFor = false;
    this.health = this.initial();
  }

  /**
   * Failures do not count while `waiting` (a backend is starting, so its target is not expected to answer):
   * checks come every second, and the status says what Berth waits for.
   */
  setWaiting(waiting: boolean): void {
    if (!this.enabled || waiting === this.waitingFor) return;
    this.waitingFor = waiting;
    if (!waiting) return;
    this.health = { ...this.health, state: 'unknown', failures: 0, message: this.waitMessage() };
    if (this.timer !== undefined) this.schedule(this.retryMs());
  }

  /** Checks now instead of at the next interval (after a wake-up, or a refused connection). */
  checkNow(): void {
    if (!this.started) return;
    if (this.inFlight) this.again = true;
    else this.schedule(0);
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.runOnce();
    }, delayMs);
  }

  private async runOnce(): Promise<void> {
    const controller = new AbortController();
    this.inFlight = controller;
    const result = await checkTarget(this.target(), this.settings, controller.signal);
    if (this.inFlight !== controller) return; // stopped meanwhile
    this.inFlight = undefined;
    const checkedAt = new Date().toISOString();
    if (result.ok) {
      this.health = { state: 'healthy', checkedAt, failures: 0, message: null };
    } else if (this.waitingFor) {
      this.health = { state: 'unknown', checkedAt, failures: 0, message: this.waitMessage(result) };
    } else {
      const failures = this.health.failures + 1;
      const state = failures >= this.settings.failures ? 'unhealthy' : this.health.state;
      this.health = { state, checkedAt, failures, message: result.message };
    }
    // Asked again meanwhile: at once. Waiting for a start: soon. Otherwise at the interval.
    const again = this.again;
    this.again = false;
    this.schedule(again ? 0 : this.waitingFor && !result.ok ? this.retryMs() : this.settings.intervalMs);
    this.hooks.onResult(this.status, result);
  }

  private retryMs(): number {
    return Math.min(1000, this.settings.intervalMs);
  }

  private waitMessage(result?: CheckResult): string {
    const why = result?.message ? ` (${result.message})` : '';
    return `waiting for ${describeTarget(this.target())} to answer${why}`;
  }

  private initial(): HealthStatus {
    return { state: this.enabled ? 'unknown' : 'off', checkedAt: null, failures: 0, message: null };
  }
}

function connectFailure(where: string, err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return `nothing is listening on ${where}`;
    case 'ENOENT':
      return `there is no socket at ${where}`;
    case 'ECONNRESET':
      return `${where} reset the connection`;
    case 'ETIMEDOUT':
      return `no answer from ${where}`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EAI_NONAME':
      return `the host name of ${where} does not resolve`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `${where} cannot be reached from this machine`;
    default:
      return `cannot connect to ${where}: ${err.code ?? err.message}`;
  }
}

function hostForHeader(host: string, port: number): string {
  return `${net.isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
