/** UDP forwarding through a real engine: sessions per client, replies routed back, expiry, caps. */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { test } from 'node:test';
import type { Engine } from '../app/engine/engine.js';
import { canBind, startEngine, until } from './support.js';

/** A UDP target that answers each datagram with `<payload> via <the port it came from>`. */
async function udpTarget(
  t: TestContext,
  host = '127.0.0.1',
): Promise<{ port: number; sources: Set<number> }> {
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const sources = new Set<number>();
  socket.on('message', (data, from) => {
    sources.add(from.port);
    socket.send(`${data.toString()} via ${from.port}`, from.port, from.address);
  });
  socket.bind(0, host);
  await once(socket, 'listening');
  t.after(() => socket.close());
  return { port: socket.address().port, sources };
}

async function udpClient(t: TestContext, host = '127.0.0.1'): Promise<dgram.Socket> {
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  socket.bind(0, host);
  await once(socket, 'listening');
  t.after(() => socket.close());
  return socket;
}

async function freeUdpPort(host = '127.0.0.1'): Promise<number> {
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  socket.bind(0, host);
  await once(socket, 'listening');
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(resolve));
  return port;
}

async function ask(client: dgram.Socket, port: number, text: string, host = '127.0.0.1'): Promise<string> {
  const reply = once(client, 'message') as Promise<[Buffer]>;
  client.send(text, port, host);
  const [data] = await reply;
  return data.toString();
}

async function addUdp(engine: Engine, id: string, targetPort: number, host = '127.0.0.1'): Promise<number> {
  const port = await freeUdpPort(host);
  const status = await engine.call('add', {
    forward: { id, protocol: 'udp', listen: { address: host, port }, target: { host, port: targetPort } },
  });
  assert.equal(status.state, 'listening', JSON.stringify(status.error));
  return port;
}

const forwardOf = async (engine: Engine) => (await engine.call('status', {})).forwards[0];

test('each client gets its own session and only its own replies', async (t) => {
  const { engine } = await startEngine(t);
  const target = await udpTarget(t);
  const port = await addUdp(engine, 'dns', target.port);
  const a = await udpClient(t);
  const b = await udpClient(t);
  const fromA = await ask(a, port, 'A1');
  const fromB = await ask(b, port, 'B1');
  assert.match(fromA, /^A1 via \d+$/);
  assert.match(fromB, /^B1 via \d+$/);
  assert.notEqual(fromA.split(' via ')[1], fromB.split(' via ')[1], 'one upstream socket per client');
  // The same client keeps its session (and its upstream port).
  assert.equal((await ask(a, port, 'A2')).split(' via ')[1], fromA.split(' via ')[1]);
  const status = await forwardOf(engine);
  assert.deepEqual(status?.connections, { active: 2, total: 2 });
  assert.equal(status?.bytes.toTarget, 6);
  assert.equal(status?.bytes.fromTarget, fromA.length + fromB.length + fromA.length);
});

test('idle sessions expire and a later datagram opens a new one', async (t) => {
  const { engine } = await startEngine(t, { udp: { idleTimeoutMs: 150 } });
  const target = await udpTarget(t);
  const port = await addUdp(engine, 'idle', target.port);
  const client = await udpClient(t);
  const first = (await ask(client, port, 'one')).split(' via ')[1];
  await until(async () => (await forwardOf(engine))?.connections.active === 0, 'the session to expire');
  const second = (await ask(client, port, 'two')).split(' via ')[1];
  assert.notEqual(first, second, 'a new upstream socket after expiry');
  assert.equal((await forwardOf(engine))?.connections.total, 2);
});

test('the session cap drops datagrams from new clients and counts them', async (t) => {
  const { engine } = await startEngine(t, { udp: { maxSessions: 1 } });
  const target = await udpTarget(t);
  const port = await addUdp(engine, 'cap', target.port);
  const a = await udpClient(t);
  const b = await udpClient(t);
  await ask(a, port, 'first');
  b.send('dropped', port, '127.0.0.1');
  await until(async () => (await forwardOf(engine))?.errors === 1, 'the drop to be counted');
  assert.equal((await forwardOf(engine))?.lastError?.code, 'EMAXSESSIONS');
  assert.equal(target.sources.size, 1, 'the second client never reached the target');
});

test('UDP over IPv6', async (t) => {
  if (!(await canBind(0, '::1'))) return t.skip('no IPv6 loopback (::1) on this machine');
  const { engine } = await startEngine(t);
  const target = await udpTarget(t, '::1');
  const port = await addUdp(engine, 'six', target.port, '::1');
  const client = await udpClient(t, '::1');
  assert.match(await ask(client, port, 'six', '::1'), /^six via \d+$/);
});

test('disabling a UDP forward releases its port at once', async (t) => {
  const { engine } = await startEngine(t);
  const target = await udpTarget(t);
  const port = await addUdp(engine, 'rel', target.port);
  const client = await udpClient(t);
  await ask(client, port, 'hi');
  await engine.call('disable', { id: 'rel' });
  const again = dgram.createSocket({ type: 'udp4', reuseAddr: false });
  again.bind(port, '127.0.0.1');
  await once(again, 'listening');
  again.close();
  assert.equal((await engine.call('enable', { id: 'rel' })).state, 'listening');
  assert.equal((await forwardOf(engine))?.connections.active, 0, 'sessions were closed with the listener');
});
