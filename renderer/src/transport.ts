/**
 * How the UI reaches the engine: the typed API of app/api/contract.ts plus the connection's state. The
 * browser uses a WebSocket (ws-transport.ts); the Electron preload implements the same interface over IPC.
 */
import {
  commands,
  ErrorEnvelopeSchema,
  type BerthApi,
  type CommandName,
  type CommandResponse,
} from '../../app/api/contract.js';
import { ApiError, fromEnvelope } from '../../app/api/errors.js';

/** Whether the UI currently reaches the engine. */
export type ConnectionState = 'connecting' | 'open' | 'closed';

/** The typed API plus the connection's state; every implementation rebuilds errors as ApiError. */
export interface Transport extends BerthApi {
  /** Calls `listener` with the state now and on every change; returns the unsubscribe function. */
  onConnection(listener: (state: ConnectionState) => void): () => void;
  /** Closes the connection for good. */
  close(): void;
}

/**
 * Turns what the engine answered to `name` into its validated result, or throws the error it sent (rebuilt
 * from its envelope) or an EPROTO error when the answer fits no schema. Shared by every transport.
 */
export function decodeReply<N extends CommandName>(
  name: N,
  reply: { error?: unknown; result?: unknown },
): CommandResponse<N> {
  if (reply.error !== undefined) {
    const envelope = ErrorEnvelopeSchema.safeParse(reply.error);
    throw envelope.success
      ? fromEnvelope(envelope.data)
      : new ApiError('EPROTO', 'Berth sent an error the window cannot read.');
  }
  const result = commands[name].response.safeParse(reply.result);
  if (!result.success)
    throw new ApiError('EPROTO', 'Berth sent an answer the window cannot read. Reload it.');
  return result.data as CommandResponse<N>;
}
