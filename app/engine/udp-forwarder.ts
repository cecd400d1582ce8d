/**
 * UDP forwarding: one upstream socket per client address, connected to the target so only its replies come
 * back, which are routed to that client. Idle sessions expire; the number of sessions is capped.
 *
 * Two data planes do this. The native relay (udp-native.ts) moves datagrams in batches without entering
 * JavaScript; it is used wherever the addon is built and has it (Linux). node:dgram (udp-dgram.ts) is the
 * fallback: where the addon is missing or lacks the relay (macOS), when a target name does not resolve at
 * start (it then resolves per session, reporting each failure), or when `dataPlane` is 'node'.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Forward } from '../config/schema.js';
import { loadBerthNative } from '../helper/helper-binder.js';
import { newCounters, type Counters, type Forwarder } from './counters.js';
import type { PrivilegedBinder } from './listener.js';
import { DgramUdpForwarder } from './udp-dgram.js';
import { NativeUdpForwarder, type NativeUdp } from './udp-native.js';

/** Limits of a UDP forward. */
export interface UdpLimits {
  /** A session with no traffic either way for this long is closed. */
  idleTimeoutMs: number;
  /** Concurrent sessions (client addresses); datagrams from further clients are dropped and counted. */
  maxSessions: number;
}

/** How UDP forwards run. */
export interface UdpOptions extends UdpLimits {
  /** 'native': the addon's relay where available, else node:dgram; 'node': always node:dgram. */
  dataPlane: 'native' | 'node';
}

let relay: NativeUdp | null | undefined;

/** The addon's UDP relay, or null where it is not built or not available (loaded once per process). */
export function nativeUdp(): NativeUdp | null {
  if (relay === undefined) {
    try {
      const native = loadBerthNative();
      relay = native.udpRelayAvailable ? native : null;
    } catch {
      relay = null;
    }
  }
  return relay;
}

/** Forwards one UDP listener to its target, on the best data plane available. */
export class UdpForwarder implements Forwarder {
  private plane: Forwarder | undefined;
  private stopped = false;

  constructor(
    private readonly forward: Forward,
    private readonly options: UdpOptions,
    private readonly binder: PrivilegedBinder | undefined,
  ) {
    if ('unix' in forward.target) throw new Error('UDP forwards need a host and port target');
  }

  /** Which data plane runs this forward (once started). */
  get dataPlane(): 'native' | 'node' | undefined {
    if (!this.plane) return undefined;
    return this.plane instanceof NativeUdpForwarder ? 'native' : 'node';
  }

  async start(): Promise<'direct' | 'helper'> {
    const native = this.options.dataPlane === 'native' ? nativeUdp() : null;
    const address = native ? await this.resolved() : undefined;
    if (this.stopped) {
      throw Object.assign(new Error('the forward was stopped while it started'), { code: 'ECANCELED' });
    }
    this.plane =
      native && address
        ? new NativeUdpForwarder(this.forward, this.options, this.binder, native, address)
        : new DgramUdpForwarder(this.forward, this.options, this.binder);
    return this.plane.start();
  }

  stop(): Promise<void> {
    this.stopped = true;
    return this.plane?.stop() ?? Promise.resolve();
  }

  sample(): Counters {
    return this.plane?.sample() ?? newCounters();
  }

  // The target's address, or undefined when its name does not resolve now.
  private async resolved(): Promise<string | undefined> {
    const { host } = this.forward.target as { host: string };
    if (isIP(host) !== 0) return host;
    try {
      return (await lookup(host)).address;
    } catch {
      return undefined;
    }
  }
}
