/**
 * UDP forwarding through the addon's relay (native/src/udp_relay.cc): the datagrams never enter JavaScript.
 * The relay reads and writes them in batches (recvmmsg/sendmmsg) on Node's own event loop, keeps one connected
 * upstream socket per client address, expires idle sessions and caps their number; this class acquires the
 * listener, keeps a named target resolved, and turns the relay's counters into the engine's.
 */
import { closeSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Forward } from '../config/schema.js';
import type { BerthNative, UdpRelay, UdpRelayError } from '../helper/helper-binder.js';
import { newCounters, type Counters, type Forwarder } from './counters.js';
import { bindUdpFd, type PrivilegedBinder } from './listener.js';
import { maxSessionsProblem, targetProblem, type ForwardProblem } from './messages.js';
import type { UdpLimits } from './udp-forwarder.js';

/** The part of the addon this forwarder uses. */
export type NativeUdp = Pick<BerthNative, 'bindUdp' | 'UdpRelay'>;

// A target given by name is looked up again this often; sessions opened afterwards use the new address.
const RESOLVE_EVERY_MS = 30_000;

/** Forwards one UDP listener to its target with the native relay. */
export class NativeUdpForwarder implements Forwarder {
  private relay: UdpRelay | undefined;
  private resolver: NodeJS.Timeout | undefined;
  private final: Counters | undefined;
  private lastError: ForwardProblem | null = null;
  private relayErrorsSeen = 0;
  private resolveErrors = 0;
  private stopped = false;

  /** `address` is the target's address, resolved already when the target is a name. */
  constructor(
    private readonly forward: Forward,
    private readonly limits: UdpLimits,
    private readonly binder: PrivilegedBinder | undefined,
    private readonly native: NativeUdp,
    private address: string,
  ) {}

  async start(): Promise<'direct' | 'helper'> {
    const { address: listenAddress, port } = this.forward.listen;
    const { fd, via } = await bindUdpFd(
      (address, listenPort) => this.native.bindUdp(address, listenPort),
      listenAddress,
      port,
      this.binder,
    );
    if (this.stopped) {
      closeSync(fd);
      throw Object.assign(new Error('the forward was stopped while it started'), { code: 'ECANCELED' });
    }
    const { port: targetPort } = this.target();
    try {
      // The relay owns the fd once its constructor returns; if it throws, the fd is still ours to close.
      this.relay = new this.native.UdpRelay(
        fd,
        this.address,
        targetPort,
        this.limits.idleTimeoutMs,
        this.limits.maxSessions,
      );
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    if (isIP(this.target().host) === 0) {
      this.resolver = setInterval(() => void this.resolve(), RESOLVE_EVERY_MS);
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

  private target(): { host: string; port: number } {
    const { target } = this.forward;
    if ('unix' in target) throw new Error('UDP forwards need a host and port target');
    return target;
  }

  private async resolve(): Promise<void> {
    const { host, port } = this.target();
    try {
      const { address } = await lookup(host);
      if (address === this.address || !this.relay) return;
      this.address = address;
      this.relay.setTarget(address, port);
    } catch (err) {
      // The last address found stays in use; the failure shows as the forward's last error.
      this.resolveErrors += 1;
      this.lastError = targetProblem(this.forward.target, err as NodeJS.ErrnoException);
    }
  }

  private problem(error: UdpRelayError): ForwardProblem {
    if (error.code === 'EMAXSESSIONS') return maxSessionsProblem(this.limits.maxSessions);
    const err: NodeJS.ErrnoException = new Error(`${error.syscall} failed with ${error.code}`);
    err.code = error.code;
    return targetProblem(this.forward.target, err);
  }
}
