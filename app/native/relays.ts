/**
 * The addon's two relays (native/src/tcp_relay.h, udp_relay.h): their types, and the wrappers that check every
 * argument before the addon sees it (the C++ checks again, and throws TypeError rather than crash). A relay owns
 * the listener fd it is given once it is constructed; if construction throws, the caller still owns the fd and
 * must close it. Both take one options object of the same shape: `{ fd, target, ...limits }`.
 */
import { isIP } from 'node:net';

/**
 * A failure counted by a relay: Node's errno code, errno (negative) and the system call; at a relay's cap the
 * code is its own ('EMAXCONN', 'EMAXSESSIONS') with errno 0 and syscall ''.
 */
export interface RelayError {
  code: string;
  errno: number;
  syscall: string;
}

/** Where a TCP relay connects: IP literals tried in order (the next on ECONNREFUSED, ENETUNREACH, ...), or a Unix socket. */
export type TcpRelayTarget = { addresses: string[]; port: number } | { path: string };

/** At most this many addresses per TCP target. */
export const MAX_TCP_ADDRESSES = 64;

/** A TCP relay's limits. */
export interface TcpRelayLimits {
  /** How long reaching the target may take, retries included; then the client is reset (ETIMEDOUT). */
  connectTimeoutMs: number;
  /** Concurrent connections; further clients are closed at once and counted (EMAXCONN). */
  maxConnections: number;
  /** > 0: a target that refuses (ECONNREFUSED, ENOENT) is tried again after this long, until the timeout. */
  retryRefusedMs: number;
}

/** What a TCP relay is made of: its listening socket, its target and its limits. */
export interface TcpRelayOptions extends TcpRelayLimits {
  /** A listening TCP socket; the relay owns it once constructed. */
  fd: number;
  target: TcpRelayTarget;
}

/** A TCP relay's counters since it started. */
export interface TcpRelayStats {
  /** Open connections (connecting ones included), and connections ever accepted. */
  active: number;
  total: number;
  /** Bytes read from clients / from the target, open connections included. */
  toTarget: number;
  fromTarget: number;
  /** Failures of the target side, accept() and the cap; `lastError` is the latest of them. */
  errors: number;
  lastError: RelayError | null;
}

/** The addon's TCP relay: bytes move without entering JavaScript; nothing calls back, so poll `stats()`. */
export interface TcpRelay {
  /** Also works after close(): the final counters, with no active connection. */
  stats(): TcpRelayStats;
  /** Connections accepted after this call go to the new target; open ones keep theirs. */
  setTarget(target: TcpRelayTarget): void;
  /** Idempotent and synchronous: the listener and every connection are closed when it returns. */
  close(): void;
}

/** Where a UDP relay's sessions send: an IP literal (IPv6 may carry a %scope) and a port. */
export interface UdpRelayTarget {
  address: string;
  port: number;
}

/** A UDP relay's limits. */
export interface UdpRelayLimits {
  /** A session without a datagram either way for this long is closed. */
  idleTimeoutMs: number;
  /**
   * Concurrent sessions (client addresses). At the cap the least recently used session idle for 1 s (or the idle
   * timeout, if shorter) makes room for a new client; when none is, the datagram is dropped and counted (EMAXSESSIONS).
   */
  maxSessions: number;
  /**
   * Concurrent sessions of one source address (any port), 1 or more; default a quarter of maxSessions, rounded up.
   * At this share the source's own least recently used idle session makes room, else the datagram is dropped and
   * counted (EMAXSESSIONS): one sender cannot lock the others out.
   */
  maxSessionsPerSource?: number;
}

/** What a UDP relay is made of: its bound socket, its target and its limits. */
export interface UdpRelayOptions extends UdpRelayLimits {
  /** A bound UDP socket; the relay owns it once constructed. */
  fd: number;
  target: UdpRelayTarget;
}

/** A UDP relay's counters since it started. */
export interface UdpRelayStats {
  /** Payload bytes and datagrams forwarded to the target / back to clients. */
  toTarget: number;
  fromTarget: number;
  datagramsToTarget: number;
  datagramsFromTarget: number;
  /** Open sessions, and sessions ever opened. */
  active: number;
  total: number;
  /** Failures a user should see; `lastError` is the latest of them. */
  errors: number;
  /** Datagrams not delivered: full socket buffers, truncation, the session caps, no session socket. */
  dropped: number;
  /** Idle sessions closed to make room for a new client at a cap. */
  evicted: number;
  lastError: RelayError | null;
}

/** The addon's UDP relay: datagrams move without entering JavaScript; nothing calls back, so poll `stats()`. */
export interface UdpRelay {
  /** Also works after close(): the final counters, with no active session. */
  stats(): UdpRelayStats;
  /** Sessions opened after this call connect to the new target; open ones keep theirs. */
  setTarget(target: UdpRelayTarget): void;
  /** Idempotent and synchronous: the listener and every session socket are closed when it returns. */
  close(): void;
}

/** The addon's TCP exports (native/src/tcp_relay_napi.cc). Linux only: elsewhere only `tcpRelayAvailable`, false. */
export interface TcpRelayExports {
  readonly tcpRelayAvailable: boolean;
  /**
   * A new listening TCP socket (non-blocking, close-on-exec, SO_REUSEADDR as libuv sets it, backlog 511) on
   * `address` (an IPv4 or IPv6 literal) and `port` (0: any). Throws an Error with Node's `code` / `errno` /
   * `syscall` ('socket' | 'bind' | 'listen'), a TypeError on bad arguments.
   */
  bindTcp(address: string, port: number): number;
  /** Throws a TypeError on bad options, an Error when `fd` is not a listening TCP socket or another relay's. */
  TcpRelay: new (options: TcpRelayOptions) => TcpRelay;
}

/** The addon's UDP exports (native/src/udp_relay_napi.cc). Linux only: elsewhere only `udpRelayAvailable`, false. */
export interface UdpRelayExports {
  readonly udpRelayAvailable: boolean;
  /**
   * A new UDP socket (non-blocking, close-on-exec) bound to `address` (an IPv4 or IPv6 literal) and `port` (0: any).
   * Throws an Error with Node's `code` / `errno` / `syscall` ('socket' | 'bind'), a TypeError on bad arguments.
   */
  bindUdp(address: string, port: number): number;
  /** The port the socket `fd` is bound to (getsockname). */
  udpLocalPort(fd: number): number;
  /** Throws a TypeError on bad options, an Error when `fd` is not a bound UDP socket or another relay's. */
  UdpRelay: new (options: UdpRelayOptions) => UdpRelay;
}

const MAX_MS = 2_147_483_647;

function check(ok: boolean, message: string): void {
  if (!ok) throw new TypeError(message);
}

const isPort = (port: unknown): port is number =>
  Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65535;

function checkFd(fd: unknown): void {
  check(
    Number.isInteger(fd) && (fd as number) >= 0 && (fd as number) <= MAX_MS,
    `fd must be an integer 0-${MAX_MS}, got ${String(fd)}`,
  );
}

function checkCount(name: string, value: unknown): void {
  check(
    Number.isInteger(value) && (value as number) >= 1 && (value as number) <= MAX_MS,
    `${name} must be an integer 1-${MAX_MS}, got ${String(value)}`,
  );
}

function checkMs(name: string, value: unknown, zeroOk: boolean): void {
  const ok = typeof value === 'number' && (zeroOk ? value >= 0 : value > 0) && value <= MAX_MS;
  check(ok, `${name} must be ${zeroOk ? '>= 0' : '> 0'} and <= ${MAX_MS} ms, got ${String(value)}`);
}

/** Throws a TypeError unless `target` is one the TCP relay takes. */
export function checkTcpTarget(target: TcpRelayTarget): void {
  check(
    typeof target === 'object' && target !== null,
    'target must be { addresses: string[], port } or { path }',
  );
  if ('path' in target) {
    check(
      typeof target.path === 'string' && target.path.length > 0,
      'target.path must be a non-empty string',
    );
    check(
      Buffer.byteLength(target.path) < 108 && !target.path.includes('\0'),
      `target.path does not fit a Unix socket address: ${target.path}`,
    );
    return;
  }
  check(Array.isArray(target.addresses), 'target must be { addresses: string[], port } or { path }');
  const { addresses } = target;
  check(
    addresses.length >= 1 && addresses.length <= MAX_TCP_ADDRESSES,
    `target.addresses must hold 1-${MAX_TCP_ADDRESSES} addresses, got ${addresses.length}`,
  );
  for (const address of addresses)
    check(
      isIP(address.split('%')[0] ?? '') !== 0,
      `target address ${address} is not an IPv4 or IPv6 literal`,
    );
  check(isPort(target.port), `target.port must be an integer 1-65535, got ${String(target.port)}`);
}

/** Throws a TypeError unless `target` is one the UDP relay takes. */
export function checkUdpTarget(target: UdpRelayTarget): void {
  check(typeof target === 'object' && target !== null, 'target must be { address, port }');
  check(
    typeof target.address === 'string' && isIP(target.address.split('%')[0] ?? '') !== 0,
    `target.address must be an IPv4 or IPv6 literal, got ${String(target.address)}`,
  );
  check(isPort(target.port), `target.port must be an integer 1-65535, got ${String(target.port)}`);
}

/** A TCP relay on `options.fd`, its options (and later targets) checked before the addon sees them. */
export function openTcpRelay(native: Pick<TcpRelayExports, 'TcpRelay'>, options: TcpRelayOptions): TcpRelay {
  checkFd(options.fd);
  checkTcpTarget(options.target);
  checkMs('connectTimeoutMs', options.connectTimeoutMs, false);
  checkCount('maxConnections', options.maxConnections);
  checkMs('retryRefusedMs', options.retryRefusedMs, true);
  const relay = new native.TcpRelay(options);
  return {
    stats: () => relay.stats(),
    setTarget(target) {
      checkTcpTarget(target);
      relay.setTarget(target);
    },
    close: () => relay.close(),
  };
}

/** A UDP relay on `options.fd`, its options (and later targets) checked before the addon sees them. */
export function openUdpRelay(native: Pick<UdpRelayExports, 'UdpRelay'>, options: UdpRelayOptions): UdpRelay {
  checkFd(options.fd);
  checkUdpTarget(options.target);
  checkMs('idleTimeoutMs', options.idleTimeoutMs, false);
  checkCount('maxSessions', options.maxSessions);
  if (options.maxSessionsPerSource !== undefined)
    checkCount('maxSessionsPerSource', options.maxSessionsPerSource);
  const relay = new native.UdpRelay(options);
  return {
    stats: () => relay.stats(),
    setTarget(target) {
      checkUdpTarget(target);
      relay.setTarget(target);
    },
    close: () => relay.close(),
  };
}
