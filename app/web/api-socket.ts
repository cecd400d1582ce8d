/**
 * The WebSocket side of `berth serve`: one API session (app/api/session.ts) per connection, speaking the
 * control socket's messages in JSON text frames. This file only decodes frames: a binary frame or one that
 * is not JSON is answered with EPROTO and closes the connection (1003, 1007); ws itself closes one over
 * MAX_MESSAGE_BYTES (1009).
 */
import type { WebSocket } from 'ws';
import type { ApiTarget } from '../api/contract.js';
import { ApiSession } from '../api/session.js';

/** Serves one accepted WebSocket until it closes. */
export function serveApiSocket(socket: WebSocket, target: ApiTarget): void {
  const session = new ApiSession(target, {
    send: (message) => {
      if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(message));
    },
    buffered: () => socket.bufferedAmount,
    close: () => socket.terminate(),
  });
  const unreadable = (problem: string, code: number, reason: string) => {
    session.unreadable(problem);
    socket.close(code, reason);
  };
  socket.on('close', () => session.end());
  socket.on('error', () => socket.terminate());
  socket.on('message', (data, isBinary) => {
    if (isBinary) return unreadable('Messages must be JSON text frames.', 1003, 'text frames only');
    let message: unknown;
    try {
      const bytes = Buffer.isBuffer(data)
        ? data
        : Array.isArray(data)
          ? Buffer.concat(data)
          : Buffer.from(data);
      message = JSON.parse(bytes.toString('utf8'));
    } catch {
      return unreadable('A message is not valid JSON.', 1007, 'invalid JSON');
    }
    session.receive(message);
  });
}
