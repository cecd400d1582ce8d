/**
 * The desktop window's transport: the preload's `window.berth` bridge (typed in app/api/bridge.ts) over
 * Electron IPC. The bridge returns replies as data (`{ ok, result }` or `{ ok, error }`), because an Error
 * thrown across Electron's context bridge loses its code; this side validates every reply and event with
 * the contract's schemas and rebuilds errors with `fromEnvelope`, exactly as the WebSocket transport does.
 */
import type { BerthBridge, BridgeReply } from '../../app/api/bridge.js';
import {
  EventSchema,
  type BerthEvent,
  type CommandName,
  type CommandRequest,
  type CommandResponse,
} from '../../app/api/contract.js';
import { ApiError } from '../../app/api/errors.js';
import { decodeReply, type ConnectionState, type Transport } from './transport.js';

/** The preload's bridge when the page runs in Berth's window, else undefined (a browser). */
export function preloadBridge(): BerthBridge | undefined {
  return (globalThis as { berth?: BerthBridge }).berth;
}

/** The IPC implementation of Transport. The main process lives as long as the window: always open. */
export class IpcTransport implements Transport {
  private state: ConnectionState = 'open';
  private readonly unsubscribers = new Set<() => void>();
  private readonly stateListeners = new Set<(state: ConnectionState) => void>();

  constructor(private readonly bridge: BerthBridge) {}

  async call<N extends CommandName>(name: N, request: CommandRequest<N>): Promise<CommandResponse<N>> {
    if (this.state === 'closed') throw new ApiError('ECLOSED', 'The connection to Berth was closed.');
    let reply: BridgeReply<N>;
    try {
      reply = await this.bridge.call(name, request);
    } catch {
      throw new ApiError('EIPC', 'Berth did not answer. Restart Berth if this keeps happening.');
    }
    return decodeReply(name, reply.ok ? { result: reply.result } : { error: reply.error });
  }

  subscribe(listener: (event: BerthEvent) => void): () => void {
    const off = this.bridge.subscribe((event) => {
      const parsed = EventSchema.safeParse(event);
      if (parsed.success) listener(parsed.data);
    });
    const unsubscribe = () => {
      if (this.unsubscribers.delete(unsubscribe)) off();
    };
    this.unsubscribers.add(unsubscribe);
    return unsubscribe;
  }

  onConnection(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    listener(this.state);
    return () => this.stateListeners.delete(listener);
  }

  close(): void {
    if (this.state === 'closed') return;
    for (const unsubscribe of [...this.unsubscribers]) unsubscribe();
    this.state = 'closed';
    for (const listener of this.stateListeners) listener('closed');
  }
}
