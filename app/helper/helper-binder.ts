/**
 * The engine's `PrivilegedBinder` backed by berth-helper: asks it for a bound socket through the addon's helper
 * client (app/native/helper-request.ts). Failures become `HelperError`s (./helper-errors.ts).
 */
import { isIP } from 'node:net';
import type { PrivilegedBinder } from '../engine/listener.js';
import { AddonMissingError, loadBerthNative, type BerthNative } from '../native/addon.js';
import {
  requestHelper,
  type HelperPing,
  type HelperRequest,
  type ReceivePath,
} from '../native/helper-request.js';
import { addonMissing, explainHelperFailure, HelperError } from './helper-errors.js';

export { HelperError } from './helper-errors.js';
export type { HelperPing, ReceivePath } from '../native/helper-request.js';

/** How a helper binder talks to berth-helper. */
export interface HelperBinderOptions {
  /** How long one request may take, connect to reply. */
  timeoutMs?: number;
  /** Defaults to the platform's own path (`msg-cmsg-cloexec` on Linux). */
  receivePath?: ReceivePath;
  /** The loaded addon; defaults to loading `berth_native` on first use. */
  native?: BerthNative;
}

const DEFAULT_TIMEOUT_MS = 5000;

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
    const result = await this.call({ op: 'bind', protocol, address, port }, what, port);
    if (typeof result !== 'number')
      throw new HelperError('berth-helper answered a bind with no fd.', 'EHELPERBADREPLY');
    return result;
  }

  /** Asks berth-helper for its protocol version: a cheap check that it runs and lets this user in. */
  async ping(): Promise<HelperPing> {
    const result = await this.call({ op: 'ping' }, 'a ping', 0);
    if (typeof result === 'number')
      throw new HelperError('berth-helper answered a ping with an fd.', 'EHELPERBADREPLY');
    return result;
  }

  private async call(
    op: { op: 'ping' } | { op: 'bind'; protocol: 'tcp' | 'udp'; address: string; port: number },
    what: string,
    port: number,
  ): Promise<number | HelperPing> {
    // Captured before the native call: the addon rejects from a libuv callback, whose stack says nothing
    // about who asked.
    const caller: { stack?: string } = {};
    Error.captureStackTrace(caller);
    let native: BerthNative;
    try {
      native = this.native ??= loadBerthNative();
    } catch (err) {
      const error = err instanceof AddonMissingError ? addonMissing(err.build) : (err as Error);
      throw withStack(error, caller.stack);
    }
    const socketPath = this.socketPath;
    const request: HelperRequest = {
      ...op,
      socketPath,
      timeoutMs: this.timeoutMs,
      receivePath: this.options.receivePath ?? native.receivePaths.native,
    };
    try {
      return await this.inTurn(() => requestHelper(native, request));
    } catch (err) {
      if (!(err instanceof Error) || err instanceof TypeError) throw err;
      const failed = { socketPath, what, port, timeoutMs: this.timeoutMs };
      throw withStack(explainHelperFailure(err, failed), caller.stack);
    }
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
