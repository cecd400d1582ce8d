/**
 * The browser's transport: one WebSocket to `berth serve`, speaking the control socket's messages
 * (`{id, command, request}` → `{id, result}` | `{id, error}`; `{subscribe: true}` → `{event}`...). It
 * reconnects with backoff and subscribes again, so a fresh snapshot replaces whatever was missed.
 */
import {
  EventSchema,
  type BerthEvent,
  type CommandName,
  type CommandRequest,
  type CommandResponse,
} from '../../app/api/contract.js';
import { ApiError } from '../../app/api/errors.js';
import { decodeReply, type ConnectionState, type Transport } from './transport.js';

interface Pending {
  name: CommandName;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

/** Options of the WebSocket transport; the defaults suit a page served by `berth serve`. */
export interface WebSocketTransportOptions {
  url: string;
  /** How long a call waits for the connection before it fails. */
  connectTimeoutMs?: number;
  /** WebSocket subprotocols: `berth.v1` and the token as `berth-token.TOKEN`. */
  protocols?: string[];
  /** Builds the socket; tests pass a fake. */
  createSocket?: (url: string) => WebSocket;
}

const MAX_BACKOFF_MS = 5000;

/** The WebSocket implementation of Transport. */
export class WebSocketTransport implements Transport {
  private socket: WebSocket | undefined;
  private state: ConnectionState = 'connecting';
  private nextId = 1;
  private backoffMs = 250;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private readonly pending = new Map<number, Pending>();
  private readonly eventListeners = new Set<(event: BerthEvent) => void>();
  private readonly stateListeners = new Set<(state: ConnectionState) => void>();
  private readonly waiting = new Set<() => void>();

  constructor(private readonly options: WebSocketTransportOptions) {
    this.connect();
  }

  call<N extends CommandName>(name: N, request: CommandRequest<N>): Promise<CommandResponse<N>> {
    return this.whenOpen().then(
      (socket) =>
        new Promise((resolve, reject) => {
          const id = this.nextId++;
          this.pending.set(id, { name, resolve: resolve as (value: unknown) => void, reject });
          socket.send(JSON.stringify({ id, command: name, request }));
        }),
    );
  }

  subscribe(listener: (event: BerthEvent) => void): () => void {
    this.eventListeners.add(listener);
    if (this.eventListeners.size === 1 && this.socket?.readyState === WebSocket.OPEN)
      this.socket.send(JSON.stringify({ subscribe: true }));
    return () => this.eventListeners.delete(listener);
  }

  onConnection(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    listener(this.state);
    return () => this.stateListeners.delete(listener);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.socket?.close();
    this.setState('closed');
    this.failAll(new ApiError('ECLOSED', 'The connection to Berth was closed.'));
    for (const wake of this.waiting) wake();
  }

  private connect(): void {
    const socket = (this.options.createSocket ?? ((url) => new WebSocket(url, this.options.protocols)))(
      this.options.url,
    );
    this.socket = socket;
    socket.addEventListener('open', () => {
      this.backoffMs = 250;
      this.setState('open');
      if (this.eventListeners.size > 0) socket.send(JSON.stringify({ subscribe: true }));
      for (const wake of this.waiting) wake();
    });
    socket.addEventListener('message', (message: MessageEvent) => {
      if (typeof message.data === 'string') this.receive(message.data);
    });
    socket.addEventListener('close', () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.failAll(
        new ApiError('EDISCONNECTED', 'The connection to Berth was lost before it answered. Try again.'),
      );
      if (this.closed) return;
      this.setState('closed');
      this.retryTimer = setTimeout(() => this.connect(), this.backoffMs);
      this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
    });
  }

  private receive(text: string): void {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    if (message.event !== undefined) {
      const event = EventSchema.safeParse(message.event);
      if (!event.success) return;
      for (const listener of this.eventListeners) listener(event.data);
      return;
    }
    const pending = typeof message.id === 'number' ? this.pending.get(message.id) : undefined;
    if (!pending) return;
    this.pending.delete(message.id as number);
    try {
      pending.resolve(decodeReply(pending.name, message));
    } catch (err) {
      pending.reject(err as Error);
    }
  }

  private whenOpen(): Promise<WebSocket> {
    const socket = this.socket;
    if (socket?.readyState === WebSocket.OPEN) return Promise.resolve(socket);
    if (this.closed) return Promise.reject(new ApiError('ECLOSED', 'The connection to Berth was closed.'));
    return new Promise((resolve, reject) => {
      const wake = () => {
        clearTimeout(timer);
        this.waiting.delete(wake);
        if (this.socket?.readyState === WebSocket.OPEN) resolve(this.socket);
        else reject(new ApiError('ECLOSED', 'The connection to Berth was closed.'));
      };
      const timer = setTimeout(() => {
        this.waiting.delete(wake);
        reject(
          new ApiError(
            'EDISCONNECTED',
            'Berth is not reachable. Check that `berth serve` is still running, then try again.',
          ),
        );
      }, this.options.connectTimeoutMs ?? 5000);
      this.waiting.add(wake);
    });
  }

  private failAll(err: Error): void {
    for (const pending of this.pending.values()) pending.reject(err);
    this.pending.clear();
  }

  private setState(state: ConnectionState): void {
    if (this.state === state) return;
    this.state = state;
    for (const listener of this.stateListeners) listener(state);
  }
}
