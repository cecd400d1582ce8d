/**
 * One client's API session, whatever carries it (the control socket, the WebSocket of `berth serve`, one
 * window over Electron IPC): the frame checks, the cap on requests in flight, the subscription and its
 * backpressure, and the reply envelope. A transport decodes its messages and supplies a `SessionPort`: how to
 * send, how much is still buffered, how to close. Requests themselves are validated by the target
 * (app/api/requests.ts), once. The messages are described in docs/api.md.
 */
import type { ApiTarget, BerthEvent, CommandName, CommandOutcome, ErrorEnvelope } from './contract.js';
import { ApiError, toEnvelope } from './errors.js';

/** The largest message a client may send, on every transport; a longer one closes the connection. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

/** A subscriber that does not read is cut off rather than buffered without bound. */
export const MAX_PENDING_EVENT_BYTES = 8 * 1024 * 1024;

/** Requests one session may have running at once; more are answered EBUSY. */
export const MAX_IN_FLIGHT = 32;

/** A request's id as the client chose it: echoed in the reply. */
export type RequestId = number | string;

/** What a session sends: a reply (`id` null when the frame had no usable id) or an event. */
export type SessionMessage =
  | { id: RequestId | null; result: unknown }
  | { id: RequestId | null; error: ErrorEnvelope }
  | { event: BerthEvent };

/** What a transport supplies to its session. */
export interface SessionPort {
  /** Sends one message; a connection already gone drops it. */
  send(message: SessionMessage): void;
  /** Bytes sent but not yet taken by the client: how a subscriber that does not read is noticed. */
  buffered(): number;
  /** Ends the connection at once (a subscriber that stopped reading). */
  close(): void;
}

/** Serves one client: call `receive` for each decoded message and `end` when the connection goes. */
export class ApiSession {
  private inFlight = 0;
  private stopEvents: (() => void) | undefined;
  private ended = false;

  constructor(
    private readonly target: ApiTarget,
    private readonly port: SessionPort,
  ) {}

  /**
   * One decoded message of the wire protocol: `{id, command, request?}`, `{subscribe: true}` or
   * `{unsubscribe: true}`. Anything else is answered with a ProtocolError (EPROTO); the connection stays.
   */
  receive(message: unknown): void {
    if (this.ended) return;
    const frame = readFrame(message);
    if (frame.kind === 'bad') this.port.send({ id: frame.id, error: protocolError(frame.problem) });
    else if (frame.kind === 'subscribe') this.subscribe();
    else if (frame.kind === 'unsubscribe') this.unsubscribe();
    else {
      void this.call(frame.command, frame.request).then((outcome) => {
        if (this.ended) return;
        this.port.send(
          outcome.ok ? { id: frame.id, result: outcome.result } : { id: frame.id, error: outcome.error },
        );
      });
    }
  }

  /**
   * The transport could not decode a message (not JSON, too large, binary): the client is told why, and
   * nothing more is read or run. The transport closes the connection after this.
   */
  unreadable(problem: string): void {
    if (this.ended) return;
    this.port.send({ id: null, error: protocolError(problem) });
    this.end();
  }

  /** A call as positional arguments (IPC's invoke): exactly a command name and a request. */
  invoke(args: readonly unknown[]): Promise<CommandOutcome<CommandName>> {
    if (args.length !== 2) {
      return Promise.resolve(
        failed(
          new ApiError('EINVAL', `A call takes a command name and a request, got ${args.length} arguments.`),
        ),
      );
    }
    return this.call(args[0], args[1]);
  }

  /** Runs one command and resolves to its outcome, never a rejection; EBUSY past MAX_IN_FLIGHT. */
  async call(name: unknown, request: unknown): Promise<CommandOutcome<CommandName>> {
    if (this.inFlight >= MAX_IN_FLIGHT)
      return failed(new ApiError('EBUSY', 'Too many requests at once. Wait for answers.'));
    this.inFlight++;
    try {
      return { ok: true, result: await this.target.handle(name, request) };
    } catch (err) {
      return failed(err);
    } finally {
      this.inFlight--;
    }
  }

  /** Starts the events, a snapshot first; subscribing again starts over with a fresh snapshot. */
  subscribe(): void {
    if (this.ended) return;
    this.unsubscribe();
    const stop = this.target.subscribe((event) => this.push(event));
    // The snapshot arrives inside subscribe(), so a client already too slow may have ended the session.
    if (this.ended) stop();
    else this.stopEvents = stop;
  }

  /** Stops the events; answers to requests keep coming. */
  unsubscribe(): void {
    const stop = this.stopEvents;
    this.stopEvents = undefined;
    stop?.();
  }

  /** The connection is gone: the subscription stops and answers still running are dropped. */
  end(): void {
    this.ended = true;
    this.unsubscribe();
  }

  private push(event: BerthEvent): void {
    if (this.ended) return;
    if (this.port.buffered() > MAX_PENDING_EVENT_BYTES) {
      this.end();
      this.port.close();
    } else this.port.send({ event });
  }
}

function failed(err: unknown): { ok: false; error: ErrorEnvelope } {
  return { ok: false, error: toEnvelope(err) };
}

function protocolError(message: string): ErrorEnvelope {
  return { name: 'ProtocolError', code: 'EPROTO', message };
}

type Frame =
  | { kind: 'subscribe' }
  | { kind: 'unsubscribe' }
  | { kind: 'call'; id: RequestId; command: string; request: unknown }
  | { kind: 'bad'; id: RequestId | null; problem: string };

// Exactly the three frames and nothing else; the request inside a call is the target's to validate.
function readFrame(message: unknown): Frame {
  if (typeof message !== 'object' || message === null || Array.isArray(message))
    return { kind: 'bad', id: null, problem: 'A message must be a JSON object.' };
  const { id, command, request, subscribe, unsubscribe, ...rest } = message as Record<string, unknown>;
  const validId =
    (typeof id === 'number' && Number.isSafeInteger(id)) || (typeof id === 'string' && id.length <= 64);
  const replyId = validId ? id : null;
  if (Object.keys(rest).length > 0)
    return { kind: 'bad', id: replyId, problem: `Unknown message keys: ${Object.keys(rest).join(', ')}.` };
  if (subscribe !== undefined || unsubscribe !== undefined) {
    const alone = id === undefined && command === undefined && request === undefined;
    if (alone && subscribe === true && unsubscribe === undefined) return { kind: 'subscribe' };
    if (alone && unsubscribe === true && subscribe === undefined) return { kind: 'unsubscribe' };
    return {
      kind: 'bad',
      id: replyId,
      problem: 'A subscription is exactly {"subscribe": true}; its end is exactly {"unsubscribe": true}.',
    };
  }
  if (!validId)
    return { kind: 'bad', id: null, problem: 'A request needs an "id": a number or a short string.' };
  if (typeof command !== 'string' || command.length > 64)
    return { kind: 'bad', id: replyId, problem: 'A request needs a "command" name.' };
  // A request left out is the empty one, as `status` needs.
  return { kind: 'call', id, command, request: request === undefined ? {} : request };
}
