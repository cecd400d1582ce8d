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
import type { Forwarder } from './forwarder.js';
import type { TcpLimits } from './limits.js';
import { nativeRelays, PlaneChoice, targetAddresses, type DataPlane } from './data-plane.js';
import type { PrivilegedBinder } from './listener.js';
import { NativeTcpForwarder, type NativeTcp } from './tcp-native.js';
import { NodeTcpForwarder } from './tcp-node.js';

/** How TCP forwards run. */
export interface TcpOptions extends TcpLimits {
  /** 'native': the addon's relay where available, else net.Socket; 'node': always net.Socket. */
  dataPlane: DataPlane;
}

/** The addon's TCP relay, or null where it is not built or not available. */
export function nativeTcp(): NativeTcp | null {
  const native = nativeRelays();
  return native?.tcpRelayAvailable ? native : null;
}

/** Forwards one TCP listener to its target, on the best data plane available. */
export class TcpForwarder extends PlaneChoice {
  constructor(
    private readonly forward: Forward,
    private readonly options: TcpOptions,
    private readonly binder: PrivilegedBinder | undefined,
  ) {
    super();
  }

  protected async choose(): Promise<Forwarder> {
    const native = this.options.dataPlane === 'native' ? nativeTcp() : null;
    const addresses = native ? await targetAddresses(this.forward) : undefined;
    return native && addresses
      ? new NativeTcpForwarder(this.forward, this.options, this.binder, native, addresses)
      : new NodeTcpForwarder(this.forward, this.options, this.binder);
  }
}
