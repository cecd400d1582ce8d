/**
 * The one wrapper over the berth_native addon (native/src/addon.cc): asks berth-helper for a bound socket and
 * implements the engine's `PrivilegedBinder` with it. Arguments are checked here first; failures become
 * `HelperError`s whose `EHELPER*` messages are whole sentences a user can act on, while a bind the helper
 * itself could not do keeps its Node errno code (EADDRINUSE, ...) for the engine to explain.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PrivilegedBinder } from '../engine/listener.js';
import { installedHelperAccessHint, installedHelperStartHint } from './installed.js';

/** How received fds get close-on-exec: atomically in recvmsg (Linux), or by fcntl right after (macOS). */
export type ReceivePath = 'msg-cmsg-cloexec' | 'fcntl';

/** The addon's exports, as native/src/addon.cc defines them. */
export interface BerthNative {
  request(
    socketPath: string,
    op: 'ping' | 'bind',
    protocol: 'tcp' | 'udp' | '',
    address: string,
    port: number,
    timeoutMs: number,
    receivePath: ReceivePath,
  ): Promise<number | { version: number; message: string }>;
  readonly receivePaths: { native: ReceivePath; available: ReceivePath[] };
  readonly protocolVersion: number;
  /** Only in the berth_native_test build: leaves received fds without close-on-exec (negative tests). */
  testLeaveCloexecOff?: (on: boolean) => void;

  // The native UDP relay (native/src/udp_relay.cc). Linux only: elsewhere `udpRelayAvailable` is false and the
  // members below are missing.
  readonly udpRelayAvailable: boolean;
  /**
   * A new UDP socket (non-blocking, close-on-exec) bound to `address` (an IPv4 or IPv6 literal) and `port` (0: any).
   * Throws an Error with Node's `code` / `errno` / `syscall` ('socket' | 'bind'), a TypeError on bad arguments.
   */
  bindUdp(address: string, port: number): number;
  /** The port the socket `fd` is bound to (getsockname). */
  udpLocalPort(fd: number): number;
  /**
   * Relays datagrams between the bound UDP socket `fd` and the target, one connected socket per client. Owns `fd`
   * once constructed; if it throws (TypeError on bad arguments, Error when `fd` is not a bound UDP socket), the
   * caller still owns `fd` and must close it.
   */
  UdpRelay: new (
    fd: number,
    targetAddress: string,
    targetPort: number,
    idleTimeoutMs: number,
    maxSessions: number,
  ) => UdpRelay;

  // The native TCP relay (native/src/tcp_relay.cc). Linux only: elsewhere `tcpRelayAvailable` is false and the
  // members below are missing.
  readonly tcpRelayAvailable: boolean;
  /**
   * A new listening TCP socket (non-blocking, close-on-exec, SO_REUSEADDR as libuv sets it, backlog 511) on
   * `address` (an IPv4 or IPv6 literal) and `port` (0: any). Throws an Error with Node's `code` / `errno` /
   * `syscall` ('socket' | 'bind' | 'listen'), a TypeError on bad arguments.
   */
  bindTcp(address: string, port: number): number;
  /**
   * Relays every connection accepted on the listening TCP socket `listenFd` to the target. Owns `listenFd` once
   * constructed; if it throws (TypeError on bad arguments, Error when `listenFd` is not a listening TCP socket),
   * the caller still owns it and must close it.
   */
  TcpRelay: new (listenFd: number, target: TcpRelayTarget, options: TcpRelayOptions) => TcpRelay;
}

/** Where a TCP relay connects: IP literals tried in order (the next on ECONNREFUSED, ENETUNREACH, ...), or a Unix socket. */
export type TcpRelayTarget = { addresses: string[]; port: number } | { path: string };

/** A TCP relay's limits. */
export interface TcpRelayOptions {
  /** How long reaching the target may take, retries included; then the client is reset (ETIMEDOUT). */
  connectTimeoutMs: number;
  /** Concurrent connections; further clients are closed at once and counted (EMAXCONN). */
  maxConnections: number;
  /** > 0: a target that refuses (ECONNREFUSED, ENOENT) is tried again after this long, until the timeout. */
  retryRefusedMs: number;
}

/**
 * A failure counted by a relay: Node's errno code, errno (negative) and the system call; at a relay's cap the
 * code is its own ('EMAXCONN', 'EMAXSESSIONS') with errno 0 and syscall ''.
 */
export interface RelayError {
  code: string;
  errno: number;
  syscall: string;
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
  /** Datagrams not delivered: full socket buffers, truncation, the session cap, no session socket. */
  dropped: number;
  lastError: RelayError | null;
}

/** The addon's UDP relay: datagrams move without entering JavaScript; nothing calls back, so poll `stats()`. */
export interface UdpRelay {
  /** Also works after close(): the final counters, with no active session. */
  stats(): UdpRelayStats;
  /** Sessions opened after this call connect to the new target; open ones keep theirs. */
  setTarget(address: string, port: number): void;
  /** Idempotent and synchronous: the listener and every session socket are closed when it returns. */
  close(): void;
}

/** Which build of the addon to load: Berth always uses `berth_native`; tests may load the test twin. */
export type AddonBuild = 'berth_native' | 'berth_native_test';

/** What berth-helper answered to a ping. */
export interface HelperPing {
  version: number;
  message: string;
}

/** How a helper binder talks to berth-helper. */
export interface HelperBinderOptions {
  /** How long one request may take, connect to reply. */
  timeoutMs?: number;
  /** Defaults to the platform's own path (`msg-cmsg-cloexec` on Linux). */
  receivePath?: ReceivePath;
  /** The loaded addon; defaults to loading `berth_native` on first use. */
  native?: BerthNative;
}

/** A failed helper request, with Node-style `code`, `errno` and `syscall`. */
export class HelperError extends Error {
  override readonly name = 'HelperError';
  constructor(
    message: string,
    readonly code: string,
    readonly errno?: number,
    readonly syscall?: string,
  ) {
    super(message);
  }
}

const DEFAULT_TIMEOUT_MS = 5000;

/**
 * Finds `native/build/Release/<build>.node` above this file (it runs from app/ under tsx and from dist/app/).
 * `BERTH_NATIVE_ADDON` names another `berth_native` build to load instead: a bundle run from elsewhere (the
 * benchmark's), or a sanitizer build (scripts/native-asan.sh).
 */
export function addonPath(build: AddonBuild = 'berth_native'): string | undefined {
  const override = build === 'berth_native' ? process.env.BERTH_NATIVE_ADDON : undefined;
  if (override) return existsSync(override) ? override : undefined;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i += 1) {
    const candidate = join(dir, 'native', 'build', 'Release', `${build}.node`);
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return undefined;
}

/** Loads the addon; throws a HelperError (EHELPERNOADDON) saying how to build it when it is missing. */
export function loadBerthNative(build: AddonBuild = 'berth_native'): BerthNative {
  const file = addonPath(build);
  if (!file) {
    throw new HelperError(
      `Berth's native addon ${build}.node is not built, so privileged ports cannot be requested from berth-helper. Run \`npm ci\` (or \`npm run build:native\`) in Berth's folder.`,
      'EHELPERNOADDON',
    );
  }
  return createRequire(import.meta.url)(file) as BerthNative;
}

/**
 * A `PrivilegedBinder` backed by berth-helper at `socketPath`, or at the path a function returns at each request
 * (so the engine can follow the config's `helper.socket` as it changes).
 */
export function createHelperBinder(
  socketPath: string | (() => string),
  options: HelperBinderOptions = {},
): HelperBinder {
  return new HelperBinder(socketPath, options);
}

const MAX_CONCURRENT_REQUESTS = 2;

interface NativeFailure {
  message: string;
  code?: string;
  errno?: number;
  syscall?: string;
  stage?: string;
  helperStatus?: string;
}

/** Requests listeners from berth-helper over its Unix socket. */
export class HelperBinder implements PrivilegedBinder {
  private native: BerthNative | undefined;
  private readonly timeoutMs: number;

  constructor(
    private readonly socket: string | (() => string),
    private readonly options: HelperBinderOptions = {},
  ) {
    if (typeof socket === 'string') checkSocketPath(socket);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isInteger(this.timeoutMs) || this.timeoutMs < 1 || this.timeoutMs > 600_000) {
      throw new RangeError(`timeoutMs must be an integer 1-600000, got ${this.timeoutMs}`);
    }
    this.native = options.native;
  }

  // Each request blocks one of libuv's four shared worker threads until the helper answers (up to the
  // timeout). At most two at a time, so a slow helper never stalls Berth's file and DNS work with them.
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  private async inTurn<T>(request: () => Promise<T>): Promise<T> {
    while (this.running >= MAX_CONCURRENT_REQUESTS) await new Promise<void>((go) => this.waiting.push(go));
    this.running += 1;
    try {
      return await request();
    } finally {
      this.running -= 1;
      this.waiting.shift()?.();
    }
  }

  /** The socket the next request goes to. */
  get socketPath(): string {
    return typeof this.socket === 'string' ? this.socket : checkSocketPath(this.socket());
  }

  /** Resolves to a close-on-exec fd bound (and, for TCP, listening) on address:port, verified. */
  async bind(protocol: 'tcp' | 'udp', address: string, port: number): Promise<number> {
    if (protocol !== 'tcp' && protocol !== 'udp') throw new TypeError(`protocol must be tcp or udp`);
    if (isIP(address) === 0 || address.includes('%')) {
      throw new TypeError(`address must be an IPv4 or IPv6 literal without a zone, got ${address}`);
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new TypeError(`port must be an integer 1-65535, got ${port}`);
    }
    const what = `${protocol.toUpperCase()} ${isIP(address) === 6 ? `[${address}]` : address}:${port}`;
    const result = await this.call('bind', protocol, address, port, what);
    if (typeof result !== 'number')
      throw new HelperError('berth-helper answered a bind with no fd.', 'EHELPERBADREPLY');
    return result;
  }

  /** Asks berth-helper for its protocol version: a cheap check that it runs and lets this user in. */
  async ping(): Promise<HelperPing> {
    const result = await this.call('ping', '', '', 0, 'a ping');
    if (typeof result === 'number')
      throw new HelperError('berth-helper answered a ping with an fd.', 'EHELPERBADREPLY');
    return result;
  }

  private async call(
    op: 'ping' | 'bind',
    protocol: 'tcp' | 'udp' | '',
    address: string,
    port: number,
    what: string,
  ): Promise<number | HelperPing> {
    // Captured before the native call: the addon rejects from a libuv callback, whose stack says nothing
    // about who asked.
    const caller: { stack?: string } = {};
    Error.captureStackTrace(caller);
    let native: BerthNative;
    try {
      native = this.native ??= loadBerthNative();
    } catch (err) {
      throw withStack(err as Error, caller.stack);
    }
    const receivePath = this.options.receivePath ?? native.receivePaths.native;
    const socketPath = this.socketPath;
    try {
      return await this.inTurn(() =>
        native.request(socketPath, op, protocol, address, port, this.timeoutMs, receivePath),
      );
    } catch (err) {
      if (!(err instanceof Error) || err instanceof TypeError) throw err;
      throw withStack(this.explain(err, socketPath, what, port), caller.stack);
    }
  }

  // Turns the addon's technical failure into a sentence that names the port, the socket path and the fix.
  private explain(err: NativeFailure, socketPath: string, what: string, port: number): HelperError {
    const at = `berth-helper at ${socketPath}`;
    const needs = port > 0 ? `${what} needs privileges to bind, so Berth asked berth-helper, but ` : '';
    const uid = process.getuid?.() ?? 0;
    const start = `sudo native/build/Release/berth-helper --socket ${socketPath} --allow-uid ${uid}`;
    const detail = err.message;
    const code = err.code ?? 'EHELPERFAILED';
    const packaged = installedHelperAccessHint(socketPath);
    if (err.stage === 'connect') {
      if (code === 'EACCES' || code === 'EPERM') {
        return new HelperError(
          packaged
            ? `${needs}this user may not connect to ${socketPath}. ${packaged}`
            : `${needs}this user (uid ${uid}) may not connect to ${socketPath}. Restart berth-helper with \`--socket-group\` naming a group of this user and \`--socket-mode 0660\`, or with \`--socket-mode 0666 --allow-uid ${uid}\`.`,
          'EHELPERDENIED',
          err.errno,
          err.syscall,
        );
      }
      const startIt = installedHelperStartHint(socketPath);
      return new HelperError(
        startIt
          ? `${needs}no berth-helper answers at ${socketPath} (${detail}). ${startIt}`
          : `${needs}no berth-helper answers at ${socketPath} (${detail}). Start it as root, for example \`${start}\`, or set "helper": { "socket": ... } in the config to where it listens.`,
        'EHELPERUNAVAILABLE',
        err.errno,
        err.syscall,
      );
    }
    if (code === 'ETIMEDOUT') {
      return new HelperError(
        `${needs}${at} did not answer within ${this.timeoutMs / 1000} s. Check that berth-helper is running (its log is on its stderr) and restart it: \`${start}\`.`,
        'EHELPERTIMEOUT',
        err.errno,
        err.syscall,
      );
    }
    if (err.helperStatus === 'denied') {
      const fix = detail.includes('--ports')
        ? `To allow it, restart it with a \`--ports\` range that includes ${port}.`
        : (packaged ?? `To allow it, restart it with \`--allow-uid ${uid}\`.`);
      return new HelperError(`${needs}${at} refused: ${detail}. ${fix}`, 'EHELPERDENIED', err.errno);
    }
    if (err.helperStatus === 'failed') {
      // The helper tried and the system call failed: keep the errno code so the engine can explain it.
      return new HelperError(`berth-helper: ${detail}`, code, err.errno, err.syscall);
    }
    if (
      err.stage === 'helper' ||
      err.stage === 'reply' ||
      err.stage === 'verify' ||
      code === 'EHELPERBADREPLY'
    ) {
      return new HelperError(
        `${needs}${at} gave an unusable answer: ${detail}. Make sure the program listening on ${socketPath} is the berth-helper of this Berth version, and restart it: \`${start}\`.`,
        err.helperStatus === 'bad-request' ? 'EHELPERPROTOCOL' : 'EHELPERBADREPLY',
        err.errno,
        err.syscall,
      );
    }
    return new HelperError(
      `${needs}talking to ${at} failed: ${detail}. Restart berth-helper: \`${start}\`.`,
      code.startsWith('EHELPER') ? code : 'EHELPERFAILED',
      err.errno,
      err.syscall,
    );
  }
}

function checkSocketPath(path: string): string {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new TypeError(`berth-helper's socket must be an absolute path, got ${String(path)}`);
  }
  return path;
}

function withStack(err: Error, stack: string | undefined): Error {
  if (stack) err.stack = `${err.name}: ${err.message}${stack.slice(stack.indexOf('\n'))}`;
  return err;
}
