/**
 * TCP forwarding through the addon's relay (native/src/tcp_relay.cc): the bytes never enter JavaScript. The
 * relay accepts, connects to the target (its addresses in order, or a Unix socket), relays both ways with
 * backpressure and half-close, resets and counts like the net.Socket plane (tcp-node.ts), on Node's own event
 * loop; this class acquires the listener, keeps a named target resolved, and turns the relay's counters into the
 * engine's.
 */
import { lookup } from 'node:dns/promises';
import { closeSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Forward } from '../config/schema.js';
import type { BerthNative, TcpRelay, TcpRelayError, TcpRelayTarget } from '../helper/helper-binder.js';
import { newCounters, type Counters, type Forwarder } from './counters.js';
import { bindTcpFd, type PrivilegedBinder } from './listener.js';
import { acceptProblem, maxConnectionsProblem, targetProblem, type ForwardProblem } from './messages.js';
import type { TcpLimits } from './tcp-forwarder.js';
import { RETRY_MS } from './tcp-node.js';

/** The part of the addon this forwarder uses. */
export type NativeTcp = Pick<BerthNative, 'bindTcp' | 'TcpRelay'>;

// A target given by name is looked up again this often; connections accepted afterwards use the new addresses.
const RESOLVE_EVERY_MS = 30_000;

/** Every address of `host`, in the order the resolver gives them (an IP literal is its own). */
export async function resolveAll(host: string): Promise<string[]> {
  if (isIP(host) !== 0) return [host];
  return (await lookup(host, { all: true })).map((entry) => entry.address);
}

/** Forwards one TCP listener to its target with the native relay. */
export class NativeTcpForwarder implements Forwarder {
  private relay: TcpRelay | undefined;
  private resolver: NodeJS.Timeout | undefined;
  private final: Counters | undefined;
  private lastError: ForwardProblem | null = null;
  private relayErrorsSeen = 0;
  private resolveErrors = 0;
  private stopped = false;

  /** `addresses`: the target's addresses, resolved already when it is a name; unused for a Unix socket target. */
  constructor(
    private readonly forward: Forward,
    private readonly limits: TcpLimits,
    private readonly binder: PrivilegedBinder | undefined,
    private readonly native: NativeTcp,
    private addresses: string[],
  ) {}

  async start(): Promise<'direct' | 'helper'> {
    const { address: listenAddress, port } = this.forward.listen;
    const { fd, via } = await bindTcpFd(
      (address, listenPort) => this.native.bindTcp(address, listenPort),
      listenAddress,
      port,
      this.binder,
    );
    if (this.stopped) {
      closeSync(fd);
      throw Object.assign(new Error('the forward was stopped while it started'), { code: 'ECANCELED' });
    }
    try {
      // The relay owns the fd once its constructor returns; if it throws, the fd is still ours to close.
      this.relay = new this.native.TcpRelay(fd, this.target(), {
        connectTimeoutMs: this.limits.connectTimeoutMs,
        maxConnections: this.limits.maxConnections,
        // A backend that is still starting refuses at first: its clients wait for it (as tcp-node.ts does).
        retryRefusedMs: this.forward.backend !== undefined ? RETRY_MS : 0,
      });
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
      errors: stats.errors + this.resolveErrors,
      lastError: this.lastError,
    };
  }

  private target(): TcpRelayTarget {
    const { target } = this.forward;
    if ('unix' in target) return { path: target.unix };
    return { addresses: this.addresses, port: target.port };
  }

  private async resolve(host: string): Promise<void> {
    try {
      const addresses = await resolveAll(host);
      if (!this.relay || addresses.length === 0 || addresses.join(' ') === this.addresses.join(' ')) return;
      this.addresses = addresses;
      this.relay.setTarget(this.target());
    } catch (err) {
      // The last addresses found stay in use; the failure shows as the forward's last error.
      this.resolveErrors += 1;
      this.lastError = targetProblem(this.forward.target, err as NodeJS.ErrnoException);
    }
  }

  private problem(error: TcpRelayError): ForwardProblem {
    if (error.code === 'EMAXCONN') return maxConnectionsProblem(this.limits.maxConnections);
    const err: NodeJS.ErrnoException = new Error(`${error.syscall} ${error.code}`);
    err.code = error.code;
    if (error.syscall === 'accept') return acceptProblem(err);
    return targetProblem(this.forward.target, err);
  }
}
