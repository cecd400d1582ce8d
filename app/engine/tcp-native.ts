/**
 * TCP forwarding through the addon's relay (native/src/tcp_relay.cc): the bytes never enter JavaScript. The
 * relay accepts, connects to the target (its addresses in order, or a Unix socket), relays both ways with
 * backpressure and half-close, resets and counts like the net.Socket plane (tcp-node.ts), on Node's own event
 * loop. The bookkeeping around it is NativeForwarder's (data-plane.ts).
 */
import type { Forward } from '../config/schema.js';
import {
  MAX_TCP_ADDRESSES,
  openTcpRelay,
  type RelayError,
  type TcpRelay,
  type TcpRelayExports,
  type TcpRelayTarget,
} from '../native/relays.js';
import { NativeForwarder } from './data-plane.js';
import type { PrivilegedBinder } from './listener.js';
import { acceptProblem, maxConnectionsProblem, targetProblem, type ForwardProblem } from './messages.js';
import { RETRY_MS, type TcpLimits } from './limits.js';

/** The part of the addon this forwarder uses. */
export type NativeTcp = Pick<TcpRelayExports, 'bindTcp' | 'TcpRelay'>;

/** Forwards one TCP listener to its target with the native relay. */
export class NativeTcpForwarder extends NativeForwarder<TcpRelay> {
  constructor(
    forward: Forward,
    private readonly limits: TcpLimits,
    binder: PrivilegedBinder | undefined,
    private readonly native: NativeTcp,
    addresses: string[],
  ) {
    super(forward, binder, addresses);
  }

  protected bind(address: string, port: number): number {
    return this.native.bindTcp(address, port);
  }

  protected open(fd: number): TcpRelay {
    return openTcpRelay(this.native, {
      fd,
      target: this.target(),
      connectTimeoutMs: this.limits.connectTimeoutMs,
      maxConnections: this.limits.maxConnections,
      // A backend that is still starting refuses at first: its clients wait for it (as tcp-node.ts does).
      retryRefusedMs: this.forward.backend !== undefined ? RETRY_MS : 0,
    });
  }

  protected retarget(relay: TcpRelay): void {
    relay.setTarget(this.target());
  }

  protected problem(error: RelayError): ForwardProblem {
    if (error.code === 'EMAXCONN') return maxConnectionsProblem(this.limits.maxConnections);
    const err = NativeForwarder.errnoError(error);
    if (error.syscall === 'accept') return acceptProblem(err);
    return targetProblem(this.forward.target, err);
  }

  private target(): TcpRelayTarget {
    const { target } = this.forward;
    if ('unix' in target) return { path: target.unix };
    // The relay takes at most 64 addresses; a name with more is served by its first 64.
    return { addresses: this.addresses.slice(0, MAX_TCP_ADDRESSES), port: target.port };
  }
}
