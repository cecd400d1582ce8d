/**
 * The limits and constants both data planes share, in a module that imports nothing: the TCP and UDP
 * forwarders, their native and Node planes and the engine all read them here, so none imports another for them.
 */

/** Limits of a TCP forward. */
export interface TcpLimits {
  /** How long a target may take to accept a connection. */
  connectTimeoutMs: number;
  /** Concurrent connections; further clients are closed at once and counted as errors. */
  maxConnections: number;
}

/** Limits of a UDP forward. */
export interface UdpLimits {
  /** A session with no traffic either way for this long is closed. */
  idleTimeoutMs: number;
  /** Concurrent sessions (client addresses); datagrams from further clients are dropped and counted. */
  maxSessions: number;
  /** Concurrent sessions of one source address (any port); default `sessionsPerSource(maxSessions)`. */
  maxSessionsPerSource?: number;
}

/**
 * The default share of one source address: a quarter of the sessions, so one sender cannot take them all.
 * native/src/udp_relay.h (DefaultSessionsPerSource) says the same.
 */
export function sessionsPerSource(maxSessions: number): number {
  return Math.ceil(maxSessions / 4);
}

/**
 * At a session cap, the least recently used session idle this long (or the idle timeout, if shorter) is closed
 * to make room for a new client (native/src/udp_relay.h: kEvictIdleMs).
 */
export const UDP_EVICT_IDLE_MS = 1000;

/** How long to wait before trying a refusing target again, when the forward's backend may still be starting. */
export const RETRY_MS = 100;
