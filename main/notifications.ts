/**
 * Desktop notifications when a forward fails, its backend enters `failed`, or its target stops or starts
 * answering its health check again: at most one per forward per minute, however often it flaps. The detection and the rate limit are pure; showing is injected.
 */
import type { BerthEvent, ForwardStatus } from '../app/api/contract.js';

/** Allows one event per key per interval; the clock is injectable for tests. */
export class RateLimiter {
  private readonly last = new Map<string, number>();

  constructor(
    private readonly intervalMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** True (and the key's window restarts) when `key` has had nothing for `intervalMs`. */
  allow(key: string): boolean {
    const now = this.now();
    const last = this.last.get(key);
    if (last !== undefined && now - last < this.intervalMs) return false;
    this.last.set(key, now);
    return true;
  }

  /** Forgets a key (a removed forward). */
  forget(key: string): void {
    this.last.delete(key);
  }
}

/** One notification's text. */
export interface Notice {
  title: string;
  body: string;
}

/** The notification a change from `before` to `after` deserves, if any. */
export function failureNotice(before: ForwardStatus | undefined, after: ForwardStatus): Notice | undefined {
  const name = after.name ?? after.id;
  if (after.state === 'error' && before?.state !== 'error') {
    return { title: `${name} failed`, body: after.error?.message ?? 'Its listener stopped with an error.' };
  }
  if (after.backend?.state === 'failed' && before?.backend?.state !== 'failed') {
    const { reason, exitCode, signal } = after.backend;
    const why =
      reason ?? (signal ? `killed by ${signal}` : exitCode !== null ? `exit code ${exitCode}` : 'gave up');
    return { title: `${name}: backend failed`, body: `Its backend process failed (${why}).` };
  }
  if (after.state !== 'listening' || !before || before.state !== 'listening') return undefined;
  const [was, now] = [before.health.state, after.health.state];
  if (now === 'unhealthy' && was !== 'unhealthy') {
    return {
      title: `${name} is unhealthy`,
      body: `Its target does not answer: ${after.health.message ?? 'the check failed'}.`,
    };
  }
  if (now === 'healthy' && was === 'unhealthy') {
    return { title: `${name} is healthy again`, body: 'Its target answers its health check.' };
  }
  return undefined;
}

/** Turns engine events into rate-limited notifications. */
export class FailureNotifier {
  private readonly forwards = new Map<string, ForwardStatus>();

  constructor(
    private readonly show: (notice: Notice) => void,
    private readonly limiter: RateLimiter = new RateLimiter(),
  ) {}

  /** Feeds one engine event. */
  handle(event: BerthEvent): void {
    if (event.type === 'snapshot') {
      for (const forward of event.forwards) this.update(forward);
    } else if (event.type === 'forward') {
      this.update(event.forward);
    } else if (event.type === 'removed') {
      this.forwards.delete(event.id);
      this.limiter.forget(`forward:${event.id}`);
    } else if (event.type === 'notice' && event.level !== 'info' && this.limiter.allow('notice')) {
      this.show({ title: 'Berth', body: event.message });
    }
  }

  private update(forward: ForwardStatus): void {
    const notice = failureNotice(this.forwards.get(forward.id), forward);
    this.forwards.set(forward.id, forward);
    if (notice && this.limiter.allow(`forward:${forward.id}`)) this.show(notice);
  }
}
