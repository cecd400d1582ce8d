/** The client side of the control socket: the typed API over one connection to a running Berth. */
import net from 'node:net';
import {
  type BerthApi,
  type BerthEvent,
  type CommandName,
  type CommandRequest,
  type CommandResponse,
  type ErrorEnvelope,
} from '../api/contract.js';
import { ApiError, fromEnvelope } from '../api/errors.js';
import { readMessages, writeMessage } from './framing.js';

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

/** One connection to a running Berth's control socket. */
export class ControlClient implements BerthApi {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<(event: BerthEvent) => void>();

  private constructor(
    private readonly socket: net.Socket,
    private readonly timeoutMs: number,
  ) {
    readMessages(
      socket,
      (message) => this.receive(message as Reply),
      (reason) => this.failAll(new ApiError('EPROTO', `Berth sent something unreadable: ${reason}.`)),
    );
    socket.on('error', (err) => this.failAll(err));
    socket.on('close', () => this.failAll(new ApiError('ECLOSED', 'Berth closed the control connection.')));
  }

  /** Connects, or rejects with ENOTRUNNING and a sentence saying how to start Berth. */
  static connect(path: string, timeoutMs = 15_000): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(path);
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        resolve(new ControlClient(socket, timeoutMs));
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
          reject(
            new ApiError(
              'ENOTRUNNING',
              `Berth is not running: nothing answers on ${path}. Start it with \`berth serve\`.`,
            ),
          );
        } else if (err.code === 'EACCES') {
          reject(new ApiError('EACCES', `The control socket ${path} belongs to another user.`));
        } else reject(err);
      });
    });
  }

  call<N extends CommandName>(name: N, request: CommandRequest<N>): Promise<CommandResponse<N>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      // A Berth that is alive but cannot answer (stopped, out of fds) must not hang the CLI forever.
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new ApiError('ETIMEDOUT', `Berth did not answer "${name}" within ${this.timeoutMs / 1000} s.`),
        );
      }, this.timeoutMs);
      this.pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as CommandResponse<N>);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      if (!writeMessage(this.socket, { id, command: name, request })) {
        this.pending.get(id)?.reject(new ApiError('ECLOSED', 'The control connection is closed.'));
        this.pending.delete(id);
      }
    });
  }

  subscribe(listener: (event: BerthEvent) => void): () => void {
    // One subscription per connection: it starts with the first listener and ends with the last.
    const wrapped = (event: BerthEvent) => listener(event);
    this.listeners.add(wrapped);
    if (this.listeners.size === 1) writeMessage(this.socket, { subscribe: true });
    return () => {
      if (this.listeners.delete(wrapped) && this.listeners.size === 0)
        writeMessage(this.socket, { unsubscribe: true });
    };
  }

  /** Calls `listener` once when the connection ends (Berth stopped or went away). */
  onClose(listener: () => void): void {
    this.socket.once('close', listener);
  }

  /** Closes the connection. */
  close(): void {
    this.socket.destroy();
  }

  private receive(reply: Reply): void {
    if (reply.event) {
      for (const listener of this.listeners) listener(reply.event);
      return;
    }
    const pending = typeof reply.id === 'number' ? this.pending.get(reply.id) : undefined;
    if (!pending) {
      if (reply.error) this.failAll(fromEnvelope(reply.error));
      return;
    }
    this.pending.delete(reply.id as number);
    if (reply.error) pending.reject(fromEnvelope(reply.error));
    else pending.resolve(reply.result);
  }

  private failAll(err: Error): void {
    for (const pending of this.pending.values()) pending.reject(err);
    this.pending.clear();
  }
}

interface Reply {
  id?: number | null;
  result?: unknown;
  error?: ErrorEnvelope;
  event?: BerthEvent;
}
