/**
 * The control socket's own defences (a private folder, nothing read or run after an unreadable message) and
 * its API session (app/api/session.ts): strict frames, the in-flight cap, unsubscribe.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { chmod, mkdir } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { ApiTarget, BerthEvent } from '../../app/api/contract.js';
import { MAX_IN_FLIGHT } from '../../app/api/session.js';
import { ControlClient } from '../../app/control/client.js';
import { ControlServer } from '../../app/control/server.js';
import type { Engine } from '../../app/engine/engine.js';
import { closed, onCleanup, startEngine, tempDir, until } from '../support/index.js';

type Message = Record<string, unknown>;

/** A raw connection speaking JSON lines, keeping every message Berth sent on it. */
async function rawClient(t: TestContext, path: string) {
  const socket = net.connect(path);
  onCleanup(t, () => socket.destroy());
  await once(socket, 'connect');
  const received: Message[] = [];
  let buffered = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    let newline: number;
    while ((newline = buffered.indexOf('\n')) !== -1) {
      received.push(JSON.parse(buffered.slice(0, newline)) as Message);
      buffered = buffered.slice(newline + 1);
    }
  });
  return {
    received,
    send: (message: unknown) => socket.write(`${JSON.stringify(message)}\n`),
    reply: (id: number) => until(() => received.find((m) => m.id === id), `the reply to request ${id}`),
    events: () => received.flatMap((m) => (m.event ? [(m.event as BerthEvent).type] : [])),
  };
}

/** The engine behind a control socket, with a count of its live subscriptions. */
async function countingControl(t: TestContext) {
  const { engine, dir } = await startEngine(t);
  let subscriptions = 0;
  const target: ApiTarget = {
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
  const control = await ControlServer.open(join(dir, 'run', 'control.sock'), target);
  onCleanup(t, () => control.close());
  return { engine, control, subscriptions: () => subscriptions };
}

const quiet = (id: string) => ({
  forward: { id, listen: { port: 1 }, target: { unix: '/x' }, enabled: false },
});

const forwardIds = async (engine: Engine) => (await engine.call('status', {})).forwards.map((f) => f.id);

test('refuses a control folder that others can enter or write to', async (t) => {
  const { engine } = await startEngine(t);
  const dir = await tempDir(t);
  const shared = join(dir, 'shared');
  await mkdir(shared);
  await chmod(shared, 0o777); // as if another user had made it first
  await assert.rejects(ControlServer.open(join(shared, 'control.sock'), engine), (err: Error) => {
    assert.match(err.message, /shared must be a folder of this user with no access for others \(mode 0700\)/);
    assert.match(err.message, /mode 777/);
    return true;
  });
});

test('after a bad message nothing more is read or run, and the connection closes', async (t) => {
  const { engine, dir } = await startEngine(t);
  const control = await ControlServer.open(join(dir, 'run', 'control.sock'), engine);
  onCleanup(t, () => control.close());
  const client = net.connect({ path: control.path, allowHalfOpen: true });
  await once(client, 'connect');
  let reply = '';
  client.setEncoding('utf8').on('data', (chunk: string) => (reply += chunk));
  const add = { forward: { id: 'after-bad', listen: { port: 1 }, target: { unix: '/x' }, enabled: false } };
  const gone = closed(client);
  client.write('not json\n');
  client.write(`${JSON.stringify({ id: 1, command: 'add', request: add })}\n`);
  await gone;
  assert.match(reply, /"code":"EPROTO"/);
  assert.doesNotMatch(reply, /"id":1/);
  assert.deepEqual((await engine.call('status', {})).forwards, [], 'the request after the bad one never ran');
});

test('a message without end is cut off at the size cap instead of buffered', async (t) => {
  const { engine, dir } = await startEngine(t);
  const control = await ControlServer.open(join(dir, 'run', 'control.sock'), engine);
  onCleanup(t, () => control.close());
  const client = net.connect({ path: control.path, allowHalfOpen: true });
  client.on('error', () => undefined);
  await once(client, 'connect');
  let reply = '';
  client.setEncoding('utf8').on('data', (chunk: string) => (reply += chunk));
  const gone = closed(client);
  const chunk = 'x'.repeat(64 * 1024);
  let sent = 0;
  // At most 16 MiB, and only while the server keeps reading.
  // The server closing on us (EPIPE, reset) is the expected end of this loop.
  const stopped = gone.then(() => undefined);
  while (sent < 16 * 1024 * 1024 && !client.destroyed && client.writable) {
    const drained = client.write(chunk);
    sent += chunk.length;
    if (!drained) await Promise.race([new Promise((resolve) => client.once('drain', resolve)), stopped]);
  }
  await gone;
  assert.match(reply, /a message is larger than 1048576 bytes/);
  assert.ok(sent < 16 * 1024 * 1024, `the server read all ${sent} bytes`);
});

// Issue 12: the control socket cast each line loosely (a non-object or an unknown key reached the engine,
// or ran: {id, command, request, extra} added the forward), where the WebSocket answered EPROTO.
test('answers a line of the wrong shape with EPROTO, runs nothing, and keeps the connection', async (t) => {
  const { engine, control } = await countingControl(t);
  const client = await rawClient(t, control.path);
  const cases: [unknown, number | null][] = [
    [[1, 2], null],
    ['status', null],
    [{ id: 1, command: 'add', request: quiet('extra-key'), extra: true }, 1],
    [{ command: 'add', request: quiet('no-id') }, null],
    [{ id: { nested: true }, command: 'add', request: quiet('object-id') }, null],
    [{ id: 1.5, command: 'add', request: quiet('fraction-id') }, null],
    [{ id: 2 }, 2],
    [{ id: 3, command: 42 }, 3],
    [{ subscribe: 1 }, null],
    [{ id: 4, subscribe: true }, 4],
    [{ unsubscribe: 'yes' }, null],
    [{ subscribe: true, unsubscribe: true }, null],
  ];
  for (const [index, [frame, id]] of cases.entries()) {
    client.send(frame);
    const answer = await until(() => client.received[index], `the answer to ${JSON.stringify(frame)}`);
    assert.equal(answer.id, id, JSON.stringify(frame));
    assert.deepEqual(
      { name: (answer.error as Message).name, code: (answer.error as Message).code },
      { name: 'ProtocolError', code: 'EPROTO' },
      JSON.stringify(frame),
    );
  }
  client.send({ id: 9, command: 'status', request: {} });
  assert.deepEqual(await client.reply(9), { id: 9, result: { forwards: [] } }, 'the connection still works');
  assert.deepEqual(await forwardIds(engine), [], 'no badly framed request ran');
  assert.deepEqual(client.events(), [], 'no badly framed subscription started');
});

// Issue 12: the WebSocket capped requests in flight at 32, the control socket ran any number at once.
test('runs at most MAX_IN_FLIGHT requests of one connection at once; one more is answered EBUSY', async (t) => {
  const dir = await tempDir(t);
  const held: (() => void)[] = [];
  const target: ApiTarget = {
    handle: () => new Promise((resolve) => held.push(() => resolve({ forwards: [] }))),
    subscribe: () => () => undefined,
  };
  const control = await ControlServer.open(join(dir, 'control.sock'), target);
  onCleanup(t, () => control.close());
  const client = await rawClient(t, control.path);
  const over = MAX_IN_FLIGHT + 1;
  for (let id = 1; id <= over; id++) client.send({ id, command: 'status', request: {} });
  const busy = await client.reply(over);
  assert.equal((busy.error as Message).code, 'EBUSY');
  assert.equal(held.length, MAX_IN_FLIGHT, 'the request over the cap never reached the engine');
  for (const release of held.splice(0)) release();
  for (let id = 1; id < over; id++)
    assert.deepEqual(await client.reply(id), { id, result: { forwards: [] } });
  client.send({ id: over + 1, command: 'status', request: {} });
  await until(() => held.length === 1, 'the next request to run once the others answered');
  held[0]?.();
  assert.deepEqual(await client.reply(over + 1), { id: over + 1, result: { forwards: [] } });
});

// Issue 12: a control-socket subscription could not be ended but by closing the connection.
test('{"unsubscribe": true} stops the events; subscribing again starts with a fresh snapshot', async (t) => {
  const { engine, control, subscriptions } = await countingControl(t);
  const client = await rawClient(t, control.path);
  client.send({ subscribe: true });
  await until(() => client.events().includes('snapshot'), 'the snapshot');
  client.send({ unsubscribe: true });
  await until(() => subscriptions() === 0, 'the subscription to end');
  await engine.call('add', quiet('unseen'));
  client.send({ id: 1, command: 'status', request: {} });
  await client.reply(1);
  // Lines arrive in order: an event sent for the add would have come before the reply.
  assert.deepEqual(client.events(), ['snapshot'], 'no event after unsubscribe');
  assert.equal(client.received.length, 2, 'unsubscribe is not answered');
  client.send({ subscribe: true });
  const fresh = await until(
    () => client.received.filter((m) => m.event).at(1)?.event as BerthEvent | undefined,
    'a second snapshot',
  );
  assert.equal(fresh.type, 'snapshot');
  assert.deepEqual(fresh.type === 'snapshot' && fresh.forwards.map((f) => f.id), ['unseen']);
  assert.equal(subscriptions(), 1);
});

test('ControlClient ends its subscription when its last listener unsubscribes', async (t) => {
  const { control, subscriptions } = await countingControl(t);
  const client = await ControlClient.connect(control.path);
  onCleanup(t, () => client.close());
  const first: BerthEvent[] = [];
  const offFirst = client.subscribe((event) => first.push(event));
  const offSecond = client.subscribe(() => undefined);
  await until(() => first.length > 0, 'the snapshot');
  assert.equal(subscriptions(), 1, 'one subscription per connection');
  offFirst();
  await client.call('status', {}); // answered after anything sent before it was read
  assert.equal(subscriptions(), 1, 'a listener is left');
  offSecond();
  await until(() => subscriptions() === 0, 'the subscription to end with the last listener');
});
