/** Newline-delimited JSON over a stream socket, with a cap on the size of one message. */
import type net from 'node:net';
import { MAX_MESSAGE_BYTES } from '../api/session.js';

/** Calls `onMessage` for each JSON line; `onBad` once for invalid JSON or an oversized line. */
export function readMessages(
  socket: net.Socket,
  onMessage: (message: unknown) => void,
  onBad: (reason: string) => void,
): void {
  let buffered = '';
  let bytes = 0;
  socket.setEncoding('utf8');
  // After the first bad message nothing more is read or run: the peer gets its error and is closed.
  const bad = (reason: string) => {
    socket.off('data', onData);
    buffered = '';
    onBad(reason);
  };
  const onData = (chunk: string) => {
    buffered += chunk;
    bytes += Buffer.byteLength(chunk);
    let newline: number;
    while ((newline = buffered.indexOf('\n')) !== -1) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      bytes = Buffer.byteLength(buffered);
      if (line.trim() === '') continue;
      let message: unknown;
      try {
        message = JSON.parse(line);
      } catch {
        return bad('a message is not valid JSON');
      }
      onMessage(message);
      if (socket.destroyed) return;
    }
    if (bytes > MAX_MESSAGE_BYTES) bad(`a message is larger than ${MAX_MESSAGE_BYTES} bytes`);
  };
  socket.on('data', onData);
}

/** Writes one message as a JSON line; false when the socket is already gone. */
export function writeMessage(socket: net.Socket, message: unknown): boolean {
  if (socket.destroyed || !socket.writable) return false;
  socket.write(`${JSON.stringify(message)}\n`);
  return true;
}
