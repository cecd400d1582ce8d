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
}

/** How long to wait before trying a refusing target again, when the forward's backend may still be starting. */
export const RETRY_MS = 100;
