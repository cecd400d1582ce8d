/**
 * The UI server's connections that have shown no valid token or cookie yet (app/web/pending.ts): a few at
 * once, each for a few seconds, so another local user cannot hold Berth's fds with idle connections (issue 19,
 * item 4; test/web/fd-flood.test.ts floods a real `berth serve`). A connection with credentials is never cut.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { WebSocket } from 'ws';
import type { PendingLimits } from '../../app/web/pending.js';
import { WebServer } from '../../app/web/server.js';
import { closed, onCleanup, startEngine, until } from '../support/index.js';

const UI_DIR = join(import.meta.dirname, '..', 'fixtures', 'web', 'ui');
const TOKEN = 'test-token-0123456789abcdef0123456789abcdef';
// What a cut-off may take beyond its deadline on a busy two-core machine.
const SLACK_MS = 3000;

async function openServer(t: TestContext, pending: PendingLimits): Promise<WebServer> {
  const { engine } = await startEngine(t);
  const web = await WebServer.open({ uiDir: UI_DIR, target: engine, token: TOKEN, pending });
  onCleanup(t, () => web.close());
  return web;
}

/** A raw connection to the server, destroyed when the test ends. */
async function rawConnection(t: TestContext, web: WebServer): Promise<net.Socket> {
  const socket = net.connect(web.port, '127.0.0.1');
  socket.on('error', () => undefined);
  onCleanup(t, () => socket.destroy());
  await once(socket, 'connect');
  return socket;
}

/** Sends one keep-alive HEAD request on `socket` and resolves with the status line of the answer. */
function exchange(socket: net.Socket, web: WebServer, headers = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (chunk: Buffer) => {
      seen += chunk.toString('latin1');
      if (seen.includes('\r\n\r\n')) {
        socket.off('data', onData);
        socket.off('close', onClose);
        resolve(seen.slice(0, seen.indexOf('\r\n')));
      }
    };
    const onClose = () => reject(new Error(`closed before an answer; saw ${JSON.stringify(seen)}`));
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.write(`HEAD / HTTP/1.1\r\nHost: 127.0.0.1:${web.port}\r\n${headers}\r\n`);
  });
}

/** An idle connection the server has accepted (it answered the gate page on it) without credentials. */
async function waiting(t: TestContext, web: WebServer): Promise<net.Socket> {
  const socket = await rawConnection(t, web);
  assert.match(await exchange(socket, web), / 401 /);
  return socket;
}

const isClosed = (socket: net.Socket) => socket.destroyed || socket.readyState === 'closed';

/** Resolves with the socket's close once it has closed, failing after the deadline plus slack. */
async function cutOff(socket: net.Socket, deadlineMs: number, what: string): Promise<void> {
  // Already closed (a second connection cut at the same deadline as the first): its 'close' has been emitted.
  if (isClosed(socket)) return;
  const done = closed(socket);
  await until(() => isClosed(socket), what, deadlineMs + SLACK_MS);
  await done;
}

void describe('web server: connections without credentials', () => {
  void it('cuts off an idle connection, and one that only got the gate page, at the deadline', async (t) => {
    const limits = { max: 32, deadlineMs: 300 };
    const web = await openServer(t, limits);
    const silent = await rawConnection(t, web);
    const gated = await waiting(t, web);
    await cutOff(silent, limits.deadlineMs, 'the silent connection to be closed');
    await cutOff(gated, limits.deadlineMs, 'the gated connection to be closed');
  });

  void it('pushes out the oldest waiting connection when the cap is reached, and no other', async (t) => {
    const limits = { max: 4, deadlineMs: 120_000 };
    const web = await openServer(t, limits);
    const sockets: net.Socket[] = [];
    for (let i = 0; i < limits.max; i++) sockets.push(await waiting(t, web));
    const newest = await rawConnection(t, web);
    await cutOff(sockets[0]!, 0, 'the oldest waiting connection to be pushed out');
    // Each of the others is still served: they were not pushed out with it.
    for (const socket of [...sockets.slice(1), newest]) assert.match(await exchange(socket, web), / 401 /);
  });

  void it('lets a client that shows its token at once in while idle connections fill the cap', async (t) => {
    const web = await openServer(t, { max: 4, deadlineMs: 120_000 });
    for (let i = 0; i < 8; i++) await rawConnection(t, web);
    const answer = await new Promise<number>((resolve, reject) => {
      http
        .get(
          {
            host: '127.0.0.1',
            port: web.port,
            path: '/',
            headers: { host: `127.0.0.1:${web.port}`, authorization: `Bearer ${TOKEN}` },
          },
          (response) => {
            response.resume();
            resolve(response.statusCode ?? 0);
          },
        )
        .on('error', reject);
    });
    assert.equal(answer, 200);
  });

  void it('never cuts off a connection that showed the token or the cookie', async (t) => {
    const limits = { max: 32, deadlineMs: 200 };
    const web = await openServer(t, limits);
    const withToken = await rawConnection(t, web);
    assert.match(await exchange(withToken, web, `Authorization: Bearer ${TOKEN}\r\n`), / 200 /);
    const socket = new WebSocket(`ws://127.0.0.1:${web.port}/api`, ['berth.v1', `berth-token.${TOKEN}`], {
      origin: `http://127.0.0.1:${web.port}`,
    });
    onCleanup(t, () => socket.terminate());
    await once(socket, 'open');
    // Past the deadline of a connection without credentials (and well inside Node's 5 s keep-alive).
    await new Promise((resolve) => setTimeout(resolve, limits.deadlineMs * 3));
    const again = await exchange(withToken, web, `Authorization: Bearer ${TOKEN}\r\n`);
    assert.match(again, / 200 /, 'the same connection is still served');
    const answer = once(socket, 'message');
    socket.send(JSON.stringify({ id: 1, command: 'status', request: {} }));
    assert.deepEqual(JSON.parse(String(((await answer) as [Buffer])[0])), {
      id: 1,
      result: { forwards: [] },
    });
  });
});
