/**
 * The WebSocket side of `berth serve`: a thin adapter over the engine's `handle` and `subscribe`, with the
 * control socket's messages (`{id, command, request}` → `{id, result}` | `{id, error}`; `{subscribe: true}`
 * → a stream of `{event}`). Frames are checked for shape and size here; requests are checked by the engine.
 */
import type { WebSocket } from 'ws';
import { toEnvelope } from '../api/errors.js';
import type { ControlTarget } from '../control/server.js';

/** The largest frame a client may send; ws closes the connection (1009) above it. */
export const MAX_FRAME_BYTES = 1024 * 1024;

/** A subscriber that does not read is cut off rather than buffered without bound. */
export const MAX_PENDING_EVENT_BYTES = 8 * 1024 * 1024;

/** Requests one connection may have running at once. */
export const MAX_IN_FLIGHT = 32;

type RequestId = number | string;

/** Serves one accepted WebSocket until it closes. */
export function serveApiSocket(socket: WebSocket, target: ControlTarget): void {
  let unsubscribe: (() => void) | undefined;
  let inFlight = 0;
  const send = (message: unknown) => {
    if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(message));
  };
  const protocolError = (id: RequestId | null, message: string) =>
    send({ id, error: { name: 'ProtocolError', code: 'EPROTO', message } });

  socket.on('close', () => unsubscribe?.());
  socket.on('error', () => socket.terminate());
  socket.on('message', (data, isBinary) => {
    if (isBinary) {
      protocolError(null, 'Messages must be JSON text frames.');
      socket.close(1003, 'text frames only');
      return;
    }
    let message: unknown;
    try {
      const bytes = Buffer.isBuffer(data)
        ? data
        : Array.isArray(data)
          ? Buffer.concat(data)
          : Buffer.from(data);
      message = JSON.parse(bytes.toString('utf8'));
    } catch {
      protocolError(null, 'A message is not valid JSON.');
      socket.close(1007, 'invalid JSON');
      return;
    }
    const frame = readFrame(message);
    if ('problem' in frame) {
      protocolError(frame.id, frame.problem);
      return;
    }
    if (frame.kind === 'subscribe') {
      unsubscribe ??= target.subscribe((event) => {
        if (socket.bufferedAmount > MAX_PENDING_EVENT_BYTES) socket.terminate();
        else send({ event });
      });
      return;
    }
    if (inFlight >= MAX_IN_FLIGHT) {
      send({
        id: frame.id,
        error: { name: 'ApiError', code: 'EBUSY', message: 'Too many requests at once. Wait for answers.' },
      });
      return;
    }
    inFlight++;
    target
      .handle(frame.command, frame.request)
      .then(
        (result) => send({ id: frame.id, result }),
        (err: unknown) => send({ id: frame.id, error: toEnvelope(err) }),
      )
      .finally(() => inFlight--);
  });
}

type Frame =
  | { kind: 'subscribe' }
  | { kind: 'call'; id: RequestId; command: string; request: unknown }
  | { id: RequestId | null; problem: string };

// `{subscribe: true}` or `{id, command, request?}`, nothing else; the engine validates the request itself.
function readFrame(message: unknown): Frame {
  if (typeof message !== 'object' || message === null || Array.isArray(message))
    return { id: null, problem: 'A message must be a JSON object.' };
  const { id, command, request, subscribe, ...rest } = message as Record<string, unknown>;
  const validId =
    (typeof id === 'number' && Number.isSafeInteger(id)) || (typeof id === 'string' && id.length <= 64);
  const replyId = validId ? id : null;
  if (Object.keys(rest).length > 0)
    return { id: replyId, problem: `Unknown message keys: ${Object.keys(rest).join(', ')}.` };
  if (subscribe !== undefined) {
    return subscribe === true && id === undefined && command === undefined && request === undefined
      ? { kind: 'subscribe' }
      : { id: replyId, problem: 'A subscription is exactly {"subscribe": true}.' };
  }
  if (!validId) return { id: null, problem: 'A request needs an "id": a number or a short string.' };
  if (typeof command !== 'string' || command.length > 64)
    return { id: replyId, problem: 'A request needs a "command" name.' };
  return { kind: 'call', id, command, request };
}
