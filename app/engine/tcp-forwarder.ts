/**
 * TCP forwarding: one connection to the target per accepted client, bytes relayed both ways with backpressure,
 * half-close preserved, resets propagated, failures counted while the listener stays up.
 *
 * Two data planes do this. The native relay (tcp-native.ts) moves the bytes without entering JavaScript; it is
 * used wherever the addon is built and has it (Linux). net.Socket (tcp-node.ts) is the fallback: where the addon
 * is missing or lacks the relay (macOS), when a target name does not resolve at start (it then resolves per
 * connection, reporting each failure), or when `dataPlane` is 'node'.
 */
import type { Forward } from '../config/schema.js';
import { loadBerthNative } from '../helper/helper-binder.js';
import { newCounters, type Counters, type Forwarder } from './counters.js';
import type { PrivilegedBinder } from './listener.js';
import { NativeTcpForwarder, resolveAll, type NativeTcp } from './tcp-native.js';
import { NodeTcpForwarder } from './tcp-node.js';

/** Limits of a TCP forward. */
export interface TcpLimits {
  /** How long a target may take to accept a connection. */
  connectTimeoutMs: number;
  /** Concurrent connections; further clients are closed at once and counted as errors. */
  maxConnections: number;
}

/** How TCP forwards run. */
export interface TcpOptions extends TcpLimits {
  /** 'native': the addon's relay where available, else net.Socket; 'node': always net.Socket. */
  dataPlane: 'native' | 'node';
}

let relay: NativeTcp | null | undefined;

/** The addon's TCP relay, or null where it is not built or not available (loaded once per process). */
export function nativeTcp(): NativeTcp | null {
  if (relay === undefined) {
    try {
      const native = loadBerthNative();
      relay = native.tcpRelayAvailable ? native : null;
    } catch {
      relay = null;
    }
  }
  return relay;
}

/** Forwards one TCP listener to its target, on the best data plane available. */
export class TcpForwarder implements Forwarder {
  private plane: Forwarder | undefined;
  private stopped = false;

  constructor(
    private readonly forward: Forward,
    private readonly options: TcpOptions,
    private readonly binder: PrivilegedBinder | undefined,
  ) {}

  /** Which data plane runs this forward (once started). */
  get dataPlane(): 'native' | 'node' | undefined {
    if (!this.plane) return undefined;
    return this.plane instanceof NativeTcpForwarder ? 'native' : 'node';
  }

  async start(): Promise<'direct' | 'helper'> {
    const native = this.options.dataPlane === 'native' ? nativeTcp() : null;
    const addresses = native ? await this.resolved() : undefined;
    if (this.stopped) {
      throw Object.assign(new Error('the forward was stopped while it started'), { code: 'ECANCELED' });
    }
    this.plane =
      native && addresses
        ? new NativeTcpForwarder(this.forward, this.options, this.binder, native, addresses)
        : new NodeTcpForwarder(this.forward, this.options, this.binder);
    return this.plane.start();
  }

  stop(): Promise<void> {
    this.stopped = true;
    return this.plane?.stop() ?? Promise.resolve();
  }

  sample(): Counters {
    return this.plane?.sample() ?? newCounters();
  }

  // The target's addresses ([] for a Unix socket), or undefined when its name does not resolve now.
  private async resolved(): Promise<string[] | undefined> {
    const { target } = this.forward;
    if ('unix' in target) return [];
    try {
      const addresses = await resolveAll(target.host);
      return addresses.length > 0 ? addresses : undefined;
    } catch {
      return undefined;
    }
  }
}
