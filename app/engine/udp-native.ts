/**
 * UDP forwarding through the addon's relay (native/src/udp_relay.cc): the datagrams never enter JavaScript.
 * The relay reads and writes them in batches (recvmmsg/sendmmsg) on Node's own event loop, keeps one connected
 * upstream socket per client address, expires idle sessions and caps their number, in all and per source address
 * (making room with the least recently used idle session). The bookkeeping around it
 * is NativeForwarder's (data-plane.ts).
 */
import type { Forward } from '../config/schema.js';
import {
  openUdpRelay,
  type RelayError,
  type UdpRelay,
  type UdpRelayExports,
  type UdpRelayTarget,
} from '../native/relays.js';
import { NativeForwarder } from './data-plane.js';
import type { PrivilegedBinder } from './listener.js';
import { maxSessionsProblem, targetProblem, type ForwardProblem } from './messages.js';
import { sessionsPerSource, type UdpLimits } from './limits.js';

/** The part of the addon this forwarder uses. */
export type NativeUdp = Pick<UdpRelayExports, 'bindUdp' | 'UdpRelay'>;

/** Forwards one UDP listener to its target with the native relay (to the target's first address). */
export class NativeUdpForwarder extends NativeForwarder<UdpRelay> {
  constructor(
    forward: Forward,
    private readonly limits: UdpLimits,
    binder: PrivilegedBinder | undefined,
    private readonly native: NativeUdp,
    addresses: string[],
  ) {
    super(forward, binder, addresses);
  }

  protected bind(address: string, port: number): number {
    return this.native.bindUdp(address, port);
  }

  protected open(fd: number): UdpRelay {
    const { idleTimeoutMs, maxSessions } = this.limits;
    const maxSessionsPerSource = this.share();
    return openUdpRelay(this.native, {
      fd,
      target: this.target(),
      idleTimeoutMs,
      maxSessions,
      maxSessionsPerSource,
    });
  }

  private share(): number {
    return this.limits.maxSessionsPerSource ?? sessionsPerSource(this.limits.maxSessions);
  }

  protected retarget(relay: UdpRelay): void {
    relay.setTarget(this.target());
  }

  protected problem(error: RelayError): ForwardProblem {
    if (error.code === 'EMAXSESSIONS') return maxSessionsProblem(this.limits.maxSessions, this.share());
    return targetProblem(this.forward.target, NativeForwarder.errnoError(error));
  }

  private target(): UdpRelayTarget {
    const [address] = this.addresses;
    const { target } = this.forward;
    if (address === undefined || 'unix' in target)
      throw new Error('UDP forwards need a host and port target');
    return { address, port: target.port };
  }
}
