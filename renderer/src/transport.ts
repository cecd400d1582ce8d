/**
 * How the UI reaches the engine: the typed API of app/api/contract.ts plus the connection's state. The
 * browser uses a WebSocket (ws-transport.ts); the Electron preload implements the same interface over IPC.
 */
import type { BerthApi } from '../../app/api/contract.js';

/** Whether the UI currently reaches the engine. */
export type ConnectionState = 'connecting' | 'open' | 'closed';

/** The typed API plus the connection's state; every implementation rebuilds errors as ApiError. */
export interface Transport extends BerthApi {
  /** Calls `listener` with the state now and on every change; returns the unsubscribe function. */
  onConnection(listener: (state: ConnectionState) => void): () => void;
  /** Closes the connection for good. */
  close(): void;
}
