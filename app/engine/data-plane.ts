/**
 * What the TCP and UDP forwarders share about their two data planes: the addon's relays (app/native/relays.ts),
 * which move traffic without entering JavaScript, and the JavaScript forwarders they fall back to. A forwarder
 * picks its plane when it starts (`PlaneChoice`); the native plane's bookkeeping (acquiring the listener,
 * handing its fd to the relay, keeping a named target resolved, turning the relay's counters into the engine's)
 * is `NativeForwarder`.
 */
import { lookup } from 'node:dns/promises';
import { closeSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Forward } from '../config/schema.js';
import { loadBerthNative, type BerthNative } from '../native/addon.js';
import type { RelayError } from '../native/relays.js';
import { newCounters, type Counters, type Forwarder } from './forwarder.js';
import { bindFd, type PrivilegedBinder, type Via } from './listener.js';
import type { ForwardProblem } from './messages.js';

/** Which plane moves a forward's traffic: the addon's relay (where available) or JavaScript. */
export type DataPlane = 'native' | 'node';

let addon: BerthNative | null | undefined;

/** The addon, or null where it is not built (loaded once per process). */
export function nativeRelays(): BerthNative | null {
  if (addon === undefined) {
    try {
      addon = loadBerthNative();
    } catch {
      addon = null;
    }
  }
  return addon;
}

/** Every address of `host`, in the order the resolver gives them (an IP literal is its own). */
export async function resolveAll(host: string): Promise<string[]> {
  if (isIP(host) !== 0) return [host];
  return (await lookup(host, { all: true })).map((entry) => entry.address);
}

/** The target's addresses ([] for a Unix socket), or undefined when its name does not resolve now. */
export async function targetAddresses(forward: Forward): Promise<string[] | undefined> {
  const { target } = forward;
  if ('unix' in target) return [];
  try {
    const addresses = await resolveAll(target.host);
    return addresses.length > 0 ? addresses : undefined;
  } catch {
    return undefined;
  }
}

const cancelled = (): Error =>
  Object.assign(new Error('the forward was stopped while it started'), { code: 'ECANCELED' });

/** A forwarder that picks its data plane when it starts, and then is that plane. */
export abstract class PlaneChoice implements Forwarder {
  private plane: Forwarder | undefined;
  private stopped = false;

  /** The plane to run: may wait (for a name to resolve), and is not started yet. */
  protected abstract choose(): Promise<Forwarder>;

  async start(): Promise<Via> {
    const plane = await this.choose();
    if (this.stopped) throw cancelled();
    this.plane = plane;
    return plane.start();
  }

  stop(): Promise<void> {
    this.stopped = true;
    return this.plane?.stop() ?? Promise.resolve();
  }

  sample(): Counters {
    return this.plane?.sample() ?? newCounters();
  }

  refresh(): void {
    this.plane?.refresh?.();
  }
}

/** What both relays of the addon offer the engine. */
export interface Relay {
  stats(): Pick<Counters, 'active' | 'total' | 'toTarget' | 'fromTarget' | 'errors'> & {
    lastError: RelayError | null;
  };
  close(): void;
}

// A target given by name is looked up again this often; connections or sessions opened afterwards use the
// new addresses.
const RESOLVE_EVERY_MS = 30_000;

/** The native plane of one forward: a relay of the addon on the forward's listener. */
export abstract class NativeForwarder<R extends Relay> implements Forwarder {
  private relay: R | undefined;
  private resolver: NodeJS.Timeout | undefined;
  private final: Counters | undefined;
  private lastError: ForwardProblem | null = null;
  private relayErrorsSeen = 0;
  private stopped = false;

  /** `addresses`: the target's, resolved already when it is a name ([] for a Unix socket target). */
  constructor(
    protected readonly forward: Forward,
    private readonly binder: PrivilegedBinder | undefined,
    protected addresses: string[],
  ) {}

  /** Binds the forward's listener in the addon (close-on-exec); throws Node-style errors. */
  protected abstract bind(address: string, port: number): number;
  /** A relay that owns `fd` once this returns; if it throws, the caller still owns `fd`. */
  protected abstract open(fd: number): R;
  /** Points the relay's new connections or sessions at `this.addresses`. */
  protected abstract retarget(relay: R): void;
  /** What a failure the relay counted means to the user. */
  protected abstract problem(error: RelayError): ForwardProblem;

  async start(): Promise<Via> {
    const { address, port } = this.forward.listen;
    const protocol = this.forward.protocol;
    const { fd, via } = await bindFd(protocol, (a, p) => this.bind(a, p), address, port, this.binder);
    if (this.stopped) {
      closeSync(fd);
      throw cancelled();
    }
    try {
      this.relay = this.open(fd);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    const { target } = this.forward;
    if ('host' in target && isIP(target.host) === 0) {
      this.resolver = setInterval(() => void this.resolve(target.host), RESOLVE_EVERY_MS);
      this.resolver.unref();
    }
    return via;
  }

  stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.resolver);
    this.resolver = undefined;
    if (this.relay) {
      this.final = this.sample();
      this.relay.close();
      this.relay = undefined;
    }
    return Promise.resolve();
  }

  sample(): Counters {
    if (!this.relay) return this.final ?? newCounters();
    const stats = this.relay.stats();
    if (stats.errors !== this.relayErrorsSeen) {
      this.relayErrorsSeen = stats.errors;
      if (stats.lastError) this.lastError = this.problem(stats.lastError);
    }
    return {
      active: stats.active,
      total: stats.total,
      toTarget: stats.toTarget,
      fromTarget: stats.fromTarget,
      errors: stats.errors,
      lastError: this.lastError,
    };
  }

  /** Looks a target name up again now instead of at the next 30 s mark. */
  refresh(): void {
    const { target } = this.forward;
    if (this.relay && 'host' in target && isIP(target.host) === 0) void this.resolve(target.host);
  }

  /** A Node-style error for a failure the relay counted, for the engine's message helpers. */
  protected static errnoError(error: RelayError): NodeJS.ErrnoException {
    const err: NodeJS.ErrnoException = new Error(
      error.syscall ? `${error.code} (${error.syscall})` : error.code,
    );
    err.code = error.code;
    return err;
  }

  private async resolve(host: string): Promise<void> {
    try {
      const addresses = await resolveAll(host);
      if (!this.relay || addresses.length === 0 || addresses.join(' ') === this.addresses.join(' ')) return;
      this.addresses = addresses;
      this.retarget(this.relay);
    } catch {
      // The last addresses found stay in use. Not an error of the forward: connections may well succeed, and
      // those that fail are counted by the relay.
    }
  }
}
