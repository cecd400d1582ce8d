/** What every forwarder is (TCP or UDP, native or Node plane) and the traffic counters it keeps. */
import type { ForwardProblem } from './messages.js';

/** Live counters of one forward; bytes of open connections are added when sampled. */
export interface Counters {
  active: number;
  total: number;
  toTarget: number;
  fromTarget: number;
  errors: number;
  lastError: ForwardProblem | null;
}

/** Fresh zeroed counters. */
export function newCounters(): Counters {
  return { active: 0, total: 0, toTarget: 0, fromTarget: 0, errors: 0, lastError: null };
}

/** A forwarder: opens its listener, moves traffic, and closes everything it opened on stop. */
export interface Forwarder {
  /** Acquires the listener; rejects with the bind error (the forwarder is then closed). */
  start(): Promise<'direct' | 'helper'>;
  /** Closes the listener and every connection; the port is free when this resolves. */
  stop(): Promise<void>;
  /** Counters including bytes moved so far on connections that are still open. */
  sample(): Counters;
  /** Looks the target's name up again now (after a wake-up or a network change); a no-op where none is kept. */
  refresh?(): void;
}
