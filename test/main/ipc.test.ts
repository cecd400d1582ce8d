/**
 * main/ipc.ts and main/bridge.ts (the preload's `window.berth`), with the fake Electron and a real engine:
 * every handler checks its sender and its arguments, and nothing throws across the boundary.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { CHANNELS, type BerthBridge } from '../../app/api/bridge.js';
import type { ApiTarget, BerthEvent } from '../../app/api/contract.js';
import { ApiError } from '../../app/api/errors.js';
import { MAX_IN_FLIGHT } from '../../app/api/session.js';
import { APP_URL } from '../../main/app-protocol.js';
import { createBridge, type IpcRendererLike } from '../../main/bridge.js';
import { registerIpc, type IpcMainLike } from '../../main/ipc.js';
import { trustedSender } from '../../main/sender.js';
import { IpcTransport } from '../../renderer/src/ipc-transport.js';
import { FakeFrame, FakeIpcMain, FakeIpcRenderer, FakeWebContents } from '../support/fake-electron.js';
import { addForward, freePort, startEngine, tcpServer, echo, until } from '../support/index.js';

/** A real engine behind the IPC handlers, with a count of live subscriptions. */
async function setup(t: TestContext) {
  const { engine } = await startEngine(t, { statsIntervalMs: 20 });
  let subscriptions = 0;
  const api: ApiTarget = {
    handle: (name, request) => engine.handle(name, request),
    subscribe(listener) {
      subscriptions += 1;
      const off = engine.subscribe(listener);
      return () => {
        subscriptions -= 1;
        off();
      };
    },
  };
  const ipcMain = new FakeIpcMain();
  const unregister = registerIpc(ipcMain as unknown as IpcMainLike, api, trustedSender(APP_URL));
  const contents = new FakeWebContents(APP_URL);
  return { engine, ipcMain, unregister, contents, subscriptions: () => subscriptions };
}

const foreignFrames = (contents: FakeWebContents) => ({
  'another origin': new FakeFrame('https://evil.example/'),
  'an iframe of the page': new FakeFrame(APP_URL, contents.mainFrame),
  'a file:// page': new FakeFrame('file:///tmp/index.html'),
  'a frame that is gone': null,
});

test('berth:call answers a trusted call with the engine result', async (t) => {
  const { ipcMain, contents } = await setup(t);
  const reply = await ipcMain.invoke(CHANNELS.call, contents, contents.mainFrame, 'status', {});
  assert.deepEqual(reply, { ok: true, result: { forwards: [] } });
});

test('berth:call refuses a call from a foreign frame, with an envelope, before the engine sees it', async (t) => {
  const { ipcMain, contents, engine } = await setup(t);
  const port = await freePort();
  for (const [what, frame] of Object.entries(foreignFrames(contents))) {
    const forward = { id: 'sneaky', listen: { port }, target: { host: '127.0.0.1', port: 9 } };
    const reply = await ipcMain.invoke(CHANNELS.call, contents, frame, 'add', { forward });
    assert.deepEqual(
      reply,
      {
        ok: false,
        error: { name: 'ApiError', code: 'EFORBIDDEN', message: 'Only the Berth window may use this API.' },
      },
      what,
    );
  }
  assert.deepEqual((await engine.call('status', {})).forwards, [], 'nothing was added');
});

test('berth:call turns malformed arguments into EINVAL or EBADCOMMAND envelopes, never a throw', async (t) => {
  const { ipcMain, contents } = await setup(t);
  const call = (...args: unknown[]) => ipcMain.invoke(CHANNELS.call, contents, contents.mainFrame, ...args);
  const cases: [unknown[], string][] = [
    [[], 'EINVAL'],
    [['status'], 'EINVAL'],
    [['status', {}, 'extra'], 'EINVAL'],
    [[42, {}], 'EBADCOMMAND'],
    [['nope', {}], 'EBADCOMMAND'],
    [['__proto__', {}], 'EBADCOMMAND'],
    [['toString', {}], 'EBADCOMMAND'],
    [['constructor', {}], 'EBADCOMMAND'],
    [['status', null], 'EINVAL'],
    [['status', 'x'], 'EINVAL'],
    [['status', { extra: 1 }], 'EINVAL'],
    [['enable', {}], 'EINVAL'],
    [['enable', { id: 7 }], 'EINVAL'],
    [['enable', { id: 'a', more: true }], 'EINVAL'],
    [['add', { forward: { id: 'BAD ID', target: { host: 'x', port: 99999 } } }], 'EINVAL'],
    [['remove', [1, 2]], 'EINVAL'],
  ];
  for (const [args, code] of cases) {
    const reply = (await call(...args)) as { ok: boolean; error?: { code: string } };
    assert.equal(reply.ok, false, JSON.stringify(args));
    assert.equal(reply.error?.code, code, JSON.stringify(args));
  }
  const invalid = (await call('add', { forward: { id: 'ok', target: { host: 'x', port: 99999 } } })) as {
    error: { problems?: { path: string }[] };
  };
  assert.ok(
    invalid.error.problems?.some((p) => p.path.includes('port')),
    'problems carry the JSON path',
  );
});

test('berth:call returns the engine errors as envelopes', async (t) => {
  const { ipcMain, contents } = await setup(t);
  const reply = await ipcMain.invoke(CHANNELS.call, contents, contents.mainFrame, 'enable', {
    id: 'missing',
  });
  assert.equal((reply as { ok: boolean }).ok, false);
  assert.equal((reply as { error: { code: string } }).error.code, 'ENOFORWARD');
});

test('berth:call never throws across the boundary, even when the API throws synchronously', async () => {
  const ipcMain = new FakeIpcMain();
  const api: ApiTarget = {
    handle: () => {
      throw new TypeError('boom');
    },
    subscribe: () => () => undefined,
  };
  registerIpc(ipcMain as unknown as IpcMainLike, api, trustedSender(APP_URL));
  const contents = new FakeWebContents(APP_URL);
  const reply = await ipcMain.invoke(CHANNELS.call, contents, contents.mainFrame, 'status', {});
  assert.deepEqual(reply, { ok: false, error: { name: 'TypeError', message: 'boom', code: 'EINTERNAL' } });
});

// Issue 12: a window could have any number of calls running; the sockets capped them at 32.
test('berth:call runs at most MAX_IN_FLIGHT calls of one window at once; one more is EBUSY', async () => {
  const ipcMain = new FakeIpcMain();
  const held: (() => void)[] = [];
  const api: ApiTarget = {
    handle: () => new Promise((resolve) => held.push(() => resolve({ forwards: [] }))),
    subscribe: () => () => undefined,
  };
  registerIpc(ipcMain as unknown as IpcMainLike, api, trustedSender(APP_URL));
  const contents = new FakeWebContents(APP_URL);
  const other = new FakeWebContents(APP_URL);
  const call = (window: FakeWebContents) =>
    ipcMain.invoke(CHANNELS.call, window, window.mainFrame, 'status', {}) as Promise<{ ok: boolean }>;
  const running = Array.from({ length: MAX_IN_FLIGHT }, () => call(contents));
  let answered: unknown;
  void call(contents).then((reply) => (answered = reply));
  // Answered at once, or (without a cap) held by the engine like the others.
  await until(() => answered !== undefined || held.length > MAX_IN_FLIGHT, 'the call over the cap');
  assert.equal(held.length, MAX_IN_FLIGHT, 'the call over the cap never reached the engine');
  assert.deepEqual(answered, {
    ok: false,
    error: { name: 'ApiError', code: 'EBUSY', message: 'Too many requests at once. Wait for answers.' },
  });
  const otherWindow = call(other);
  await until(() => held.length === MAX_IN_FLIGHT + 1, "another window's call, which has its own cap");
  for (const release of held.splice(0)) release();
  for (const reply of [...(await Promise.all(running)), await otherWindow]) assert.equal(reply.ok, true);
  const again = call(contents);
  await until(() => held.length === 1, 'a call once the others answered');
  held[0]?.();
  assert.equal((await again).ok, true);
});

test('berth:subscribe pushes a snapshot then changes to a trusted window only', async (t) => {
  const { ipcMain, contents, engine, subscriptions } = await setup(t);
  for (const frame of Object.values(foreignFrames(contents)))
    ipcMain.emitFrom(CHANNELS.subscribe, contents, frame);
  ipcMain.emitFrom(CHANNELS.subscribe, contents, contents.mainFrame, 'unexpected argument');
  assert.equal(subscriptions(), 0, 'foreign frames and malformed messages subscribe nothing');
  assert.equal(contents.sent.length, 0);

  ipcMain.emitFrom(CHANNELS.subscribe, contents, contents.mainFrame);
  assert.equal(subscriptions(), 1);
  assert.deepEqual(contents.sent[0], { channel: CHANNELS.event, args: [{ type: 'snapshot', forwards: [] }] });
  const { port: target } = await tcpServer(t, echo);
  await addForward(engine, 'web', { host: '127.0.0.1', port: target });
  await until(
    () => contents.sent.some((m) => (m.args[0] as BerthEvent).type === 'forward'),
    'a forward event reaches the window',
  );
  ipcMain.emitFrom(CHANNELS.subscribe, contents, contents.mainFrame);
  assert.equal(subscriptions(), 1, 'a reload replaces the subscription');
});

test('berth:unsubscribe stops the pushes; foreign frames cannot stop them', async (t) => {
  const { ipcMain, contents, subscriptions } = await setup(t);
  ipcMain.emitFrom(CHANNELS.subscribe, contents, contents.mainFrame);
  for (const frame of Object.values(foreignFrames(contents)))
    ipcMain.emitFrom(CHANNELS.unsubscribe, contents, frame);
  ipcMain.emitFrom(CHANNELS.unsubscribe, contents, contents.mainFrame, 'extra');
  assert.equal(subscriptions(), 1);
  ipcMain.emitFrom(CHANNELS.unsubscribe, contents, contents.mainFrame);
  assert.equal(subscriptions(), 0);
});

test('a destroyed window loses its subscription, and unregistering removes every handler', async (t) => {
  const { ipcMain, contents, subscriptions, unregister } = await setup(t);
  ipcMain.emitFrom(CHANNELS.subscribe, contents, contents.mainFrame);
  contents.destroy();
  assert.equal(subscriptions(), 0);
  const other = new FakeWebContents(APP_URL);
  ipcMain.emitFrom(CHANNELS.subscribe, other, other.mainFrame);
  assert.equal(subscriptions(), 1);
  unregister();
  assert.equal(subscriptions(), 0);
  assert.equal(ipcMain.handlers.size, 0);
  assert.equal(ipcMain.listenerCount(CHANNELS.subscribe) + ipcMain.listenerCount(CHANNELS.unsubscribe), 0);
});

test('window.berth through IpcTransport: typed calls, rebuilt errors, one subscription per window', async (t) => {
  const { ipcMain, contents, subscriptions } = await setup(t);
  const ipcRenderer = new FakeIpcRenderer(ipcMain, contents);
  const bridge = createBridge(ipcRenderer as unknown as IpcRendererLike);
  const transport = new IpcTransport(bridge);
  const { port: target } = await tcpServer(t, echo);
  const port = await freePort();
  const added = await transport.call('add', {
    forward: { id: 'web', listen: { port }, target: { host: '127.0.0.1', port: target } },
  });
  assert.equal(added.state, 'listening');
  await assert.rejects(transport.call('enable', { id: 'nope' }), (err: unknown) => {
    assert.ok(err instanceof ApiError);
    assert.equal(err.code, 'ENOFORWARD');
    return true;
  });
  await assert.rejects(
    transport.call('add', { forward: { id: 'x', listen: { port: 0 }, target: { host: 'h', port: 0 } } }),
    (err: ApiError) => err.code === 'EINVAL' && (err.problems?.length ?? 0) > 0,
  );
  const first: BerthEvent[] = [];
  const second: BerthEvent[] = [];
  const off1 = transport.subscribe((e) => first.push(e));
  const off2 = transport.subscribe((e) => second.push(e));
  assert.equal(subscriptions(), 1, 'one IPC subscription for the window');
  await until(() => first.some((e) => e.type === 'snapshot'), 'the snapshot');
  off1();
  assert.equal(subscriptions(), 1);
  off2();
  assert.equal(subscriptions(), 0);
  assert.equal(ipcRenderer.listenerCount(CHANNELS.event), 0);
  const states: string[] = [];
  transport.onConnection((s) => states.push(s));
  transport.close();
  assert.deepEqual(states, ['open', 'closed']);
  await assert.rejects(transport.call('status', {}), (err: ApiError) => err.code === 'ECLOSED');
});

test('IpcTransport rejects answers it cannot read, and a failing bridge, with codes', async () => {
  const reply = (value: unknown) =>
    ({ call: () => Promise.resolve(value), subscribe: () => () => undefined }) as unknown as BerthBridge;
  await assert.rejects(
    new IpcTransport(reply({ ok: true, result: { forwards: 'no' } })).call('status', {}),
    (err: ApiError) => err.code === 'EPROTO',
  );
  await assert.rejects(
    new IpcTransport(reply({ ok: false, error: { nonsense: true } })).call('status', {}),
    (err: ApiError) => err.code === 'EPROTO',
  );
  const broken = { call: () => Promise.reject(new Error('gone')), subscribe: () => () => undefined };
  await assert.rejects(
    new IpcTransport(broken as unknown as BerthBridge).call('status', {}),
    (err: ApiError) => err.code === 'EIPC',
  );
  const events: BerthEvent[] = [];
  const pushing = {
    call: () => Promise.reject(new Error('unused')),
    subscribe(listener: (event: unknown) => void) {
      listener({ type: 'bogus' });
      listener({ type: 'removed', id: 'web' });
      return () => undefined;
    },
  };
  new IpcTransport(pushing as unknown as BerthBridge).subscribe((e) => events.push(e));
  assert.deepEqual(events, [{ type: 'removed', id: 'web' }], 'events are validated with the contract');
});
