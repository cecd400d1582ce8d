/**
 * The UI server's connections that have not yet shown a valid token or cookie. Anyone on the machine can
 * open them, so they are bounded: at most `max` at once (a new one pushes out the oldest, so a client that
 * speaks at once gets in even during a flood) and each for at most `deadlineMs`. Without the bound another
 * local user's idle connections could take every fd Berth has, and its forwards and control socket with them.
 */
import type { Socket } from 'node:net';

/** How many connections may wait for their credentials at once, and for how long. */
export interface PendingLimits {
  max: number;
  deadlineMs: number;
}

/** 32 at once, 5 s each: a browser shows its cookie or token in its first request, within milliseconds. */
export const DEFAULT_PENDING_LIMITS: PendingLimits = { max: 32, deadlineMs: 5000 };

/** Counts, times and cuts off the connections that have not shown credentials yet. */
export class PendingConnections {
  // In the order they came: the first key is the oldest.
  private readonly waiting = new Map<Socket, NodeJS.Timeout>();

  constructor(private readonly limits: PendingLimits) {}

  /** How many connections are waiting now. */
  get size(): number {
    return this.waiting.size;
  }

  /** A new connection: it waits for its credentials, and the oldest waiting one goes if there is no room. */
  admit(socket: Socket): void {
    if (this.waiting.size >= this.limits.max) {
      const oldest = this.waiting.keys().next().value;
      if (oldest) this.cutOff(oldest);
    }
    const timer = setTimeout(() => this.cutOff(socket), this.limits.deadlineMs);
    timer.unref();
    this.waiting.set(socket, timer);
    socket.once('close', () => this.trust(socket));
  }

  /** The connection showed a valid token or cookie (or has closed): no deadline, no longer counted. */
  trust(socket: Socket): void {
    clearTimeout(this.waiting.get(socket));
    this.waiting.delete(socket);
  }

  /** Forgets every waiting connection's deadline (the server is closing them all). */
  clear(): void {
    for (const timer of this.waiting.values()) clearTimeout(timer);
    this.waiting.clear();
  }

  private cutOff(socket: Socket): void {
    this.trust(socket);
    socket.destroy();
  }
}
