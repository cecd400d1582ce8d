import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from '../../app/api/errors.js';
import { forwardStatus } from '../test/fake-transport.js';
import type { ConnectionState } from './transport.js';
import { WebSocketTransport } from './ws-transport.js';

// A stand-in for the browser's WebSocket: the test plays the server's side.
class FakeSocket extends EventTarget {
  readyState: number = WebSocket.CONNECTING;
  readonly sent: unknown[] = [];
  send(text: string) {
    this.sent.push(JSON.parse(text));
  }
  close() {
    this.readyState = WebSocket.CLOSED;
    this.dispatchEvent(new Event('close'));
  }
  open() {
    this.readyState = WebSocket.OPEN;
    this.dispatchEvent(new Event('open'));
  }
  receive(message: unknown) {
    this.dispatchEvent(new MessageEvent('message', { data: JSON.stringify(message) }));
  }
}

function setup() {
  const sockets: FakeSocket[] = [];
  const transport = new WebSocketTransport({
    url: 'ws://127.0.0.1:1/api',
    createSocket: () => {
      const socket = new FakeSocket();
      sockets.push(socket);
      return socket as unknown as WebSocket;
    },
  });
  const states: ConnectionState[] = [];
  transport.onConnection((state) => states.push(state));
  return { transport, sockets, states, socket: () => sockets.at(-1) as FakeSocket };
}

afterEach(() => vi.useRealTimers());

describe('WebSocketTransport', () => {
  it('sends calls once open and resolves them with the validated result', async () => {
    const { transport, socket } = setup();
    const answer = transport.call('enable', { id: 'web' });
    socket().open();
    await vi.waitFor(() =>
      expect(socket().sent).toEqual([{ id: 1, command: 'enable', request: { id: 'web' } }]),
    );
    socket().receive({ id: 1, result: forwardStatus() });
    await expect(answer).resolves.toMatchObject({ id: 'web', state: 'listening' });
  });

  it('rebuilds an error envelope as an ApiError with its problems', async () => {
    const { transport, socket } = setup();
    socket().open();
    const answer = transport.call('status', {});
    await vi.waitFor(() => expect(socket().sent).toHaveLength(1));
    socket().receive({
      id: 1,
      error: { name: 'ApiError', code: 'EINVAL', message: 'Bad.', problems: [{ path: 'id', message: 'no' }] },
    });
    const err: unknown = await answer.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ code: 'EINVAL', message: 'Bad.', problems: [{ path: 'id', message: 'no' }] });
  });

  it('subscribes on open, drops events that do not match the contract, and resubscribes after a reconnect', () => {
    vi.useFakeTimers();
    const { transport, sockets, socket, states } = setup();
    const events: unknown[] = [];
    transport.subscribe((event) => events.push(event));
    socket().open();
    expect(socket().sent).toEqual([{ subscribe: true }]);
    socket().receive({ event: { type: 'snapshot', forwards: [] } });
    socket().receive({ event: { type: 'snapshot', forwards: 'nope' } });
    expect(events).toEqual([{ type: 'snapshot', forwards: [] }]);
    socket().close();
    expect(states).toEqual(['connecting', 'open', 'closed']);
    vi.advanceTimersByTime(300);
    expect(sockets).toHaveLength(2);
    socket().open();
    expect(socket().sent).toEqual([{ subscribe: true }]);
    expect(states.at(-1)).toBe('open');
    transport.close();
  });

  it('fails a pending call with a sentence when the connection drops', async () => {
    const { transport, socket } = setup();
    socket().open();
    const answer = transport.call('status', {});
    await vi.waitFor(() => expect(socket().sent).toHaveLength(1));
    socket().close();
    await expect(answer).rejects.toMatchObject({ code: 'EDISCONNECTED', message: /lost before it answered/ });
    transport.close();
  });
});
