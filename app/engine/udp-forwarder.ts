/**
 * UDP forwarding: one upstream socket per client address, connected to the target so only its replies come
 * back, which are routed to that client. Idle sessions expire; the number of sessions is capped.
 *
 * Two data planes do this. The native relay (udp-native.ts) moves datagrams in batches without entering
 * JavaScript; it is used wherever the addon is built and has it (Linux). node:dgram (udp-dgram.ts) is the
 * fallback: where the addon is missing or lacks the relay (macOS), when a target name does not resolve at
 * start (it then resolves per session, reporting each failure), or when `dataPlane` is 'node'.
 */
import type { Forward } from '../config/schema.js';
import type { Forwarder } from './forwarder.js';
import type { UdpLimits } from './limits.js';
import { nativeRelays, PlaneChoice, targetAddresses, type DataPlane } from './data-plane.js';
import type { PrivilegedBinder } from './listener.js';
import { DgramUdpForwarder } from './udp-dgram.js';
import { NativeUdpForwarder, type NativeUdp } from './udp-native.js';

/** How UDP forwards run. */
export interface UdpOptions extends UdpLimits {
  /** 'native': the addon's relay where available, else node:dgram; 'node': always node:dgram. */
  dataPlane: DataPlane;
}

/** The addon's UDP relay, or null where it is not built or not available. */
export function nativeUdp(): NativeUdp | null {
  const native = nativeRelays();
  return native?.udpRelayAvailable ? native : null;
}

/** Forwards one UDP listener to its target, on the best data plane available. */
export class UdpForwarder extends PlaneChoice {
  constructor(
    private readonly forward: Forward,
    private readonly options: UdpOptions,
    private readonly binder: PrivilegedBinder | undefined,
  ) {
    super();
    if ('unix' in forward.target) throw new Error('UDP forwards need a host and port target');
  }

  protected async choose(): Promise<Forwarder> {
    const native = this.options.dataPlane === 'native' ? nativeUdp() : null;
    const addresses = native ? await targetAddresses(this.forward) : undefined;
    return native && addresses
      ? new NativeUdpForwarder(this.forward, this.options, this.binder, native, addresses)
      : new DgramUdpForwarder(this.forward, this.options, this.binder);
  }
}
