/**
 * `berth serve`'s web server refuses what it must: requests without the token or with a wrong one, a foreign
 * Host (DNS rebinding), a WebSocket from a foreign Origin; and its WebSocket speaks the control socket's
 * messages, checks every frame, and closes everything on shutdown.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { WebSocket } from 'ws';
import type { ApiTarget, BerthEvent } from '../../app/api/contract.js';
import { main } from '../../app/cli.js';
import { serve } from '../../app/serve.js';
import { WebServer } from '../../app/web/server.js';
import { onCleanup, startEngine, tempDir, until } from '../support/index.js';

const UI_DIR = join(import.meta.dirname, '..', 'fixtures', 'web', 'ui');
const TOKEN = 'test-token-0123456789abcdef0123456789abcdef';

async function openServer(t: TestContext): Promise<WebServer> {
  const { engine } = await startEngine(t);
  const web = await WebServer.open({ uiDir: UI_DIR, target: engine, token: TOKEN });
  onCleanup(t, () => web.close());
  return web;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function get(
  web: WebServer,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: '127.0.0.1',
        port: web.port,
        path,
        method,
        headers: { host: `127.0.0.1:${web.port}`, ...headers },
      },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body }),
        );
      },
    );
    request.on('error', reject);
    request.end();
  });
}

const bearer = { authorization: `Bearer ${TOKEN}` };

/** Opens a WebSocket; resolves with it, or with the HTTP status the server refused it with. */
function openSocket(
  web: WebServer,
  headers: Record<string, string>,
  origin: string | null = `http://127.0.0.1:${web.port}`,
  protocols: string[] = [],
): Promise<WebSocket | number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${web.port}/api`, protocols, {
      headers,
      ...(origin !== null ? { origin } : {}),
    });
    socket.once('open', () => resolve(socket));
    socket.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      socket.terminate();
    });
    socket.once('error', reject);
  });
}

async function connected(t: TestContext, web: WebServer): Promise<WebSocket> {
  const socket = await openSocket(web, bearer);
  assert.ok(
    socket instanceof WebSocket,
    `the WebSocket was refused with ${typeof socket === 'number' ? socket : 'no status'}`,
  );
  onCleanup(t, () => socket.terminate());
  return socket;
}

function nextMessage(socket: WebSocket): Promise<Record<string, unknown>> {
  return new Promise((resolve) =>
    socket.once('message', (data: Buffer) => resolve(JSON.parse(data.toString()) as Record<string, unknown>)),
  );
}

void describe('web server: HTTP', () => {
  void it('refuses a request without the token with the 401 gate page, which holds no app', async (t) => {
    const web = await openServer(t);
    const answer = await get(web, '/');
    assert.equal(answer.status, 401);
    assert.doesNotMatch(answer.body, /berth-test-ui/);
    assert.match(String(answer.headers['content-security-policy']), /script-src 'sha256-/);
  });

  void it('refuses a wrong token, as a header or as a cookie', async (t) => {
    const web = await openServer(t);
    assert.equal((await get(web, '/', { authorization: 'Bearer wrong' })).status, 401);
    assert.equal((await get(web, '/', { cookie: `berth-ui-${web.port}=wrong` })).status, 401);
    // The token itself is never a cookie credential.
    assert.equal((await get(web, '/', { cookie: `berth-ui-${web.port}=${TOKEN}` })).status, 401);
  });

  void it('serves the UI with the token, and trades the token for an HttpOnly cookie at /auth', async (t) => {
    const web = await openServer(t);
    const withHeader = await get(web, '/', bearer);
    assert.equal(withHeader.status, 200);
    assert.match(withHeader.body, /berth-test-ui/);
    assert.equal((await get(web, '/auth', bearer)).status, 405);
    assert.equal((await get(web, '/auth', { authorization: 'Bearer wrong' }, 'POST')).status, 401);
    const auth = await get(web, '/auth', bearer, 'POST');
    assert.equal(auth.status, 204);
    const cookie = String(auth.headers['set-cookie']);
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    const pair = cookie.split(';')[0] ?? '';
    const withCookie = await get(web, '/', { cookie: pair });
    assert.equal(withCookie.status, 200);
    // Browsers send localhost cookies to every port, so the cookie must not be the token...
    assert.doesNotMatch(cookie, new RegExp(TOKEN));
    // ...and it opens the UI's files but never the API.
    assert.equal(await openSocket(web, { cookie: pair }), 401);
    // A cookie of the same name planted by another local page cannot shadow the real one.
    const planted = await get(web, '/', { cookie: `berth-ui-${web.port}=planted; ${pair}` });
    assert.equal(planted.status, 200);
  });

  void it('refuses a foreign Host even with the token (DNS rebinding)', async (t) => {
    const web = await openServer(t);
    assert.equal((await get(web, '/', { ...bearer, host: `evil.example:${web.port}` })).status, 403);
    assert.equal((await get(web, '/', { ...bearer, host: `127.0.0.1:${web.port + 1}` })).status, 403);
    assert.equal((await get(web, '/auth', { ...bearer, host: 'evil.example' }, 'POST')).status, 403);
    assert.equal((await get(web, '/', { ...bearer, host: `localhost:${web.port}` })).status, 200);
  });

  void it('refuses /auth from a foreign Origin', async (t) => {
    const web = await openServer(t);
    assert.equal((await get(web, '/auth', { ...bearer, origin: 'http://evil.example' }, 'POST')).status, 403);
  });

  void it('serves nothing outside the UI folder', async (t) => {
    const web = await openServer(t);
    assert.equal((await get(web, '/%2e%2e/web-server.test.ts', bearer)).status, 404);
    assert.equal((await get(web, '/..%2f..%2fpackage.json', bearer)).status, 404);
    assert.equal((await get(web, '/missing.js', bearer)).status, 404);
  });

  void it('says which port is taken when the UI port is in use', async (t) => {
    const web = await openServer(t);
    const { engine } = await startEngine(t);
    await assert.rejects(
      WebServer.open({ port: web.port, uiDir: UI_DIR, target: engine }),
      new RegExp(`127\\.0\\.0\\.1:${web.port} is in use by another program: choose another port with --ui`),
    );
  });

  void it('refuses a UI address that is not loopback', async (t) => {
    const { engine } = await startEngine(t);
    await assert.rejects(WebServer.open({ host: '0.0.0.0', uiDir: UI_DIR, target: engine }), /loopback only/);
  });
});

void describe('web server: WebSocket', () => {
  void it('refuses a missing or wrong token, a foreign or missing Origin and a foreign Host', async (t) => {
    const web = await openServer(t);
    assert.equal(await openSocket(web, {}), 401);
    assert.equal(await openSocket(web, { authorization: 'Bearer wrong' }), 401);
    assert.equal(await openSocket(web, bearer, 'http://evil.example'), 403);
    assert.equal(await openSocket(web, bearer, `http://127.0.0.1:${web.port + 1}`), 403);
    assert.equal(await openSocket(web, bearer, null), 403);
    assert.equal(await openSocket(web, { ...bearer, host: `evil.example:${web.port}` }), 403);
  });

  void it('takes the token as the subprotocol berth-token.TOKEN, as the page sends it', async (t) => {
    const web = await openServer(t);
    const origin = `http://127.0.0.1:${web.port}`;
    const ok = await openSocket(web, {}, origin, ['berth.v1', `berth-token.${TOKEN}`]);
    assert.ok(ok instanceof WebSocket, `refused with ${typeof ok === 'number' ? ok : 'no status'}`);
    onCleanup(t, () => ok.terminate());
    assert.equal(ok.protocol, 'berth.v1', 'only berth.v1 is echoed back, never the token');
    assert.equal(await openSocket(web, {}, origin, ['berth.v1', 'berth-token.wrong']), 401);
  });

  void it('pushes a snapshot to a subscriber and answers commands like the control socket', async (t) => {
    const web = await openServer(t);
    const socket = await connected(t, web);
    const snapshot = nextMessage(socket);
    socket.send(JSON.stringify({ subscribe: true }));
    assert.deepEqual(await snapshot, { event: { type: 'snapshot', forwards: [] } });
    const status = nextMessage(socket);
    socket.send(JSON.stringify({ id: 7, command: 'status', request: {} }));
    assert.deepEqual(await status, { id: 7, result: { forwards: [] } });
    const unknown = nextMessage(socket);
    socket.send(JSON.stringify({ id: 'x', command: 'format-disk', request: {} }));
    const answer = await unknown;
    assert.equal(answer.id, 'x');
    assert.equal((answer.error as { code: string }).code, 'EBADCOMMAND');
    const invalid = nextMessage(socket);
    socket.send(JSON.stringify({ id: 8, command: 'enable', request: { id: 5 } }));
    assert.equal(((await invalid).error as { code: string }).code, 'EINVAL');
  });

  void it('answers a badly shaped frame with EPROTO and keeps the connection', async (t) => {
    const web = await openServer(t);
    const socket = await connected(t, web);
    for (const frame of [
      [1, 2],
      { id: 1, command: 'status', extra: true },
      { command: 'status' },
      { subscribe: 1 },
    ]) {
      const answer = nextMessage(socket);
      socket.send(JSON.stringify(frame));
      assert.equal(((await answer).error as { code: string }).code, 'EPROTO', JSON.stringify(frame));
    }
    const status = nextMessage(socket);
    socket.send(JSON.stringify({ id: 2, command: 'status', request: {} }));
    assert.deepEqual(await status, { id: 2, result: { forwards: [] } });
  });

  // Issue 12: a WebSocket subscription could not be ended but by closing the connection.
  void it('stops the events after {"unsubscribe": true}; subscribing again sends a fresh snapshot', async (t) => {
    const { engine } = await startEngine(t);
    const web = await WebServer.open({ uiDir: UI_DIR, target: engine, token: TOKEN });
    onCleanup(t, () => web.close());
    const socket = await connected(t, web);
    const received: Record<string, unknown>[] = [];
    socket.on('message', (data: Buffer) =>
      received.push(JSON.parse(data.toString()) as Record<string, unknown>),
    );
    const events = () => received.flatMap((m) => (m.event ? [m.event as BerthEvent] : []));
    socket.send(JSON.stringify({ subscribe: true }));
    await until(() => events().length === 1, 'the snapshot');
    socket.send(JSON.stringify({ unsubscribe: true }));
    // Frames are handled in order: once this is answered, the unsubscribe has been.
    socket.send(JSON.stringify({ id: 1, command: 'status', request: {} }));
    await until(() => received.some((m) => m.id === 1), 'the status reply');
    const forward = { id: 'unseen', listen: { port: 1 }, target: { unix: '/x' }, enabled: false };
    await engine.call('add', { forward });
    socket.send(JSON.stringify({ id: 2, command: 'status', request: {} }));
    await until(() => received.some((m) => m.id === 2), 'the second status reply');
    assert.deepEqual(
      events().map((e) => e.type),
      ['snapshot'],
      'no event after unsubscribe',
    );
    assert.equal(received.length, 3, 'unsubscribe is not answered');
    socket.send(JSON.stringify({ subscribe: true }));
    const fresh = await until(() => events()[1], 'a second snapshot');
    assert.deepEqual(fresh.type === 'snapshot' && fresh.forwards.map((f) => f.id), ['unseen']);
  });

  void it('closes the connection on invalid JSON, a binary frame or a frame over 1 MiB', async (t) => {
    const web = await openServer(t);
    const cases: [string | Buffer, number][] = [
      ['{not json', 1007],
      [Buffer.from([1, 2, 3]), 1003],
      [JSON.stringify({ id: 1, command: 'status', request: { pad: 'x'.repeat(1024 * 1024 + 1) } }), 1009],
    ];
    for (const [frame, code] of cases) {
      const socket = await connected(t, web);
      const closed = once(socket, 'close');
      socket.send(frame);
      const [closeCode] = (await closed) as [number];
      assert.equal(closeCode, code);
    }
  });

  void it('cuts off a subscriber that does not read instead of buffering without bound', async (t) => {
    // A target that can push far more than a real engine would, to fill the socket's buffers.
    const listeners = new Set<(event: BerthEvent) => void>();
    const target: ApiTarget = {
      handle: () => Promise.resolve({ forwards: [] }),
      subscribe(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
    const web = await WebServer.open({ uiDir: UI_DIR, target, token: TOKEN });
    onCleanup(t, () => web.close());
    const raw = net.connect(web.port, '127.0.0.1');
    onCleanup(t, () => raw.destroy());
    await once(raw, 'connect');
    raw.write(
      [
        'GET /api HTTP/1.1',
        `Host: 127.0.0.1:${web.port}`,
        `Origin: http://127.0.0.1:${web.port}`,
        `Authorization: Bearer ${TOKEN}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version: 13',
        '',
        '',
      ].join('\r\n'),
    );
    const [head] = (await once(raw, 'data')) as [Buffer];
    assert.match(head.toString(), /^HTTP\/1.1 101/);
    // A masked client frame {"subscribe":true}, then the client stops reading.
    const payload = Buffer.from(JSON.stringify({ subscribe: true }));
    const mask = Buffer.from([1, 2, 3, 4]);
    const masked = Buffer.from(payload.map((byte, i) => byte ^ (mask[i % 4] ?? 0)));
    raw.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
    raw.pause();
    await until(() => listeners.size === 1, 'the subscription');
    const big = 'x'.repeat(1024 * 1024);
    for (let i = 0; i < 64 && listeners.size > 0; i++) {
      for (const listener of [...listeners]) listener({ type: 'notice', level: 'info', message: big });
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(listeners.size, 0, 'the slow subscriber was cut off and unsubscribed');
  });

  void it('closes every socket and stops listening on close()', async (t) => {
    const { engine } = await startEngine(t);
    const web = await WebServer.open({ uiDir: UI_DIR, target: engine, token: TOKEN });
    const socket = await openSocket(web, bearer);
    assert.ok(socket instanceof WebSocket);
    socket.send(JSON.stringify({ subscribe: true }));
    const closed = once(socket, 'close');
    await web.close();
    await closed;
    await assert.rejects(get(web, '/', bearer), /ECONNREFUSED/);
  });
});

void describe('berth serve', () => {
  void it('prints the UI address once, and never writes the token anywhere else', async (t) => {
    const dir = await tempDir(t);
    const lines: string[] = [];
    const served = await serve({
      configPath: join(dir, 'config.json'),
      controlPath: join(dir, 'control.sock'),
      ui: { host: '127.0.0.1', port: 0 },
      uiDir: UI_DIR,
      out: (line) => lines.push(line),
      err: (line) => lines.push(line),
    });
    onCleanup(t, () => served.stop());
    const web = served.web;
    assert.ok(web);
    const uiLines = lines.filter((line) => line.startsWith('Berth UI: '));
    assert.deepEqual(uiLines, [`Berth UI: http://127.0.0.1:${web.port}/#token=${web.token}`]);
    await get(web, '/', { authorization: 'Bearer wrong' });
    await get(web, '/', { authorization: `Bearer ${web.token}` });
    await get(web, `/?token=${web.token}`);
    assert.equal(await openSocket(web, { authorization: 'Bearer nope' }), 401);
    await served.stop();
    assert.equal(
      lines.join('\n').split(web.token).length - 1,
      1,
      'the token appears only in the Berth UI line',
    );
  });

  void it('serves no UI with ui: false', async (t) => {
    const dir = await tempDir(t);
    const lines: string[] = [];
    const served = await serve({
      configPath: join(dir, 'config.json'),
      controlPath: join(dir, 'control.sock'),
      ui: false,
      out: (line) => lines.push(line),
      err: (line) => lines.push(line),
    });
    onCleanup(t, () => served.stop());
    assert.equal(served.web, undefined);
    assert.ok(!lines.some((line) => line.startsWith('Berth UI:')));
  });
});

void describe('berth serve --ui', () => {
  for (const [args, message] of [
    [['--ui', '0.0.0.0:8080'], /loopback only/],
    [['--ui', '192.168.1.5:80'], /loopback only/],
    [['--ui', 'nonsense'], /--ui: "nonsense" is not \[HOST:\]PORT/],
    [['--ui', '127.0.0.1:0', '--no-ui'], /cannot be used together/],
  ] as const) {
    void it(`refuses ${args.join(' ')} with a usage error`, async () => {
      const errors: string[] = [];
      const code = await main(['serve', ...args], { out: () => undefined, err: (line) => errors.push(line) });
      assert.equal(code, 2);
      assert.match(errors.join('\n'), message);
    });
  }
});
