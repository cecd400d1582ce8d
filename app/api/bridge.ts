/**
 * The preload bridge's contract, shared by both sides of Electron IPC: the channels between the preload
 * (main/bridge.ts) and the main process (main/ipc.ts), and the type of `window.berth` the renderer
 * (renderer/src/ipc-transport.ts) uses. It lives above the parties, so none imports another's code.
 */
import type { BerthEvent, CommandName, CommandOutcome, CommandRequest } from './contract.js';

/** The IPC channels of `window.berth`; nothing else crosses. */
export const CHANNELS = {
  /** invoke(name, request) → BridgeReply: one API command. */
  call: 'berth:call',
  /** send(): start pushing events to this window (a snapshot first). */
  subscribe: 'berth:subscribe',
  /** send(): stop pushing events to this window. */
  unsubscribe: 'berth:unsubscribe',
  /** main → window: one BerthEvent. */
  event: 'berth:event',
} as const;

/** What a command call over IPC resolves to: never a rejection, so the error's code survives the bridge. */
export type BridgeReply<N extends CommandName> = CommandOutcome<N>;

/** `window.berth`, the one namespace the preload exposes; its types derive from the API contract. */
export interface BerthBridge {
  call<N extends CommandName>(name: N, request: CommandRequest<N>): Promise<BridgeReply<N>>;
  /** Receives a snapshot at once, then changes; returns the unsubscribe function. */
  subscribe(listener: (event: BerthEvent) => void): () => void;
}
