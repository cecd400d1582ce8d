/**
 * UDP forwarding through a real engine: sessions per client, replies routed back, expiry, caps. Every test runs
 * on both data planes: the addon's native relay and node:dgram (the fallback).
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { describe, test } from 'node:test';
import type { Engine } from '../../app/engine/engine.js';
import { canBind, dataPlanes, onCleanup, startEngine, until } from '../support/index.js';

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
  onCleanup(t, () => socket.close());
  return { port: socket.address().port, sources };
}

async function udpClient(t: TestContext, host = '127.0.0.1'): Promise<dgram.Socket> {
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  socket.bind(0, host);
  await once(socket, 'listening');
  onCleanup(t, () => socket.close());
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

/** The reply to `text`, sent again every 100 ms until one comes, or undefined after `limitMs`. */
async function askUntil(
  client: dgram.Socket,
  port: number,
  text: string,
  limitMs: number,
): Promise<string | undefined> {
  let reply: string | undefined;
  const onMessage = (data: Buffer) => (reply ??= data.toString());
  client.on('message', onMessage);
  try {
    for (const deadline = Date.now() + limitMs; reply === undefined && Date.now() < deadline;) {
      client.send(text, port, '127.0.0.1');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return reply;
  } finally {
    client.off('message', onMessage);
  }
}

const forwardOf = async (engine: Engine) => (await engine.call('status', {})).forwards[0];

// dgram sockets of this process (the native relay has none: its sockets are not libuv handles).
const dgramHandles = () => process.getActiveResourcesInfo().filter((name) => name === 'UDPWrap').length;

for (const { dataPlane, skip } of dataPlanes('udp')) {
  describe(`UDP on the ${dataPlane} data plane`, () => {
    test('the forward runs on this data plane', { skip }, async (t) => {
      const { engine } = await startEngine(t, { udp: { dataPlane } });
      const target = await udpTarget(t);
      const before = dgramHandles();
      await addUdp(engine, 'plane', target.port);
      assert.equal(dgramHandles() - before, dataPlane === 'native' ? 0 : 1);
    });

    test('each client gets its own session and only its own replies', { skip }, async (t) => {
      const { engine } = await startEngine(t, { udp: { dataPlane } });
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

    test('idle sessions expire and a later datagram opens a new one', { skip }, async (t) => {
      const { engine } = await startEngine(t, { udp: { idleTimeoutMs: 150, dataPlane } });
      const target = await udpTarget(t);
      const port = await addUdp(engine, 'idle', target.port);
      const client = await udpClient(t);
      const first = (await ask(client, port, 'one')).split(' via ')[1];
      await until(async () => (await forwardOf(engine))?.connections.active === 0, 'the session to expire');
      const second = (await ask(client, port, 'two')).split(' via ')[1];
      assert.notEqual(first, second, 'a new upstream socket after expiry');
      assert.equal((await forwardOf(engine))?.connections.total, 2);
    });

    test('the session cap drops datagrams from new clients and counts them', { skip }, async (t) => {
      const { engine } = await startEngine(t, { udp: { maxSessions: 1, dataPlane } });
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

    // Issue 19: 1,024 datagrams from distinct source ports filled the session cap, and new clients were
    // dropped for the whole 60 s idle timeout.
    test('one source address cannot take every session: another is served at once', { skip }, async (t) => {
      // 8 sessions, 2 per source address by default (a quarter).
      const { engine } = await startEngine(t, { udp: { maxSessions: 8, idleTimeoutMs: 60_000, dataPlane } });
      const target = await udpTarget(t);
      const port = await addUdp(engine, 'flood', target.port);
      const flood = await Promise.all(Array.from({ length: 8 }, () => udpClient(t)));
      for (const [i, client] of flood.entries()) client.send(`flood ${i}`, port, '127.0.0.1');
      await until(
        async () => (await forwardOf(engine))?.errors === 6,
        "the datagrams beyond 127.0.0.1's share",
      );
      assert.equal((await forwardOf(engine))?.lastError?.code, 'EMAXSESSIONS');
      const other = await udpClient(t, '127.0.0.2');
      assert.match((await askUntil(other, port, 'other', 3000)) ?? 'no reply', /^other via \d+$/);
      assert.equal((await forwardOf(engine))?.connections.active, 3);
    });

    test(
      'at the cap the least recently used idle session makes room for a new client',
      { skip },
      async (t) => {
        const udp = { maxSessions: 4, maxSessionsPerSource: 4, idleTimeoutMs: 60_000, dataPlane };
        const { engine } = await startEngine(t, { udp });
        const target = await udpTarget(t);
        const port = await addUdp(engine, 'lru', target.port);
        const held = await Promise.all(Array.from({ length: 4 }, () => udpClient(t)));
        for (const [i, client] of held.entries()) await ask(client, port, `held ${i}`);
        const late = await udpClient(t);
        late.send('too soon', port, '127.0.0.1');
        await until(
          async () => (await forwardOf(engine))?.errors === 1,
          'the late client to be dropped at first',
        );
        // held[1..3] stay busy; held[0] goes quiet and, after a second, makes room: well before the 60 s.
        const busy = setInterval(() => held.slice(1).forEach((c) => c.send('busy', port, '127.0.0.1')), 100);
        onCleanup(t, () => clearInterval(busy));
        assert.match((await askUntil(late, port, 'late', 5000)) ?? 'no reply', /^late via \d+$/);
        clearInterval(busy);
        const status = await forwardOf(engine);
        assert.deepEqual(status?.connections, { active: 4, total: 5 });
        assert.equal(target.sources.size, 5, 'one upstream port per session ever opened');
      },
    );

    test('many datagrams in flight are all answered, each to its sender', { skip }, async (t) => {
      const { engine } = await startEngine(t, { udp: { dataPlane } });
      const target = await udpTarget(t);
      const port = await addUdp(engine, 'burst', target.port);
      const clients = [await udpClient(t), await udpClient(t)];
      // 32 in flight per client (several per batch on the relay), well within loopback's socket buffers: UDP
      // may drop what overflows them, so a larger burst could fail here without any bug.
      const count = 400;
      const window = 32;
      const replies = clients.map(() => [] as string[]);
      clients.forEach((client, c) => {
        let sent = 0;
        const next = () => client.send(`c${c}-${sent++}`, port, '127.0.0.1');
        client.on('message', (data) => {
          replies[c]?.push(data.toString().split(' via ')[0] ?? '');
          if (sent < count) next();
        });
        for (let i = 0; i < window; i += 1) next();
      });
      await until(() => replies.every((got) => got.length === count), 'every reply', 10_000);
      replies.forEach((got, c) => {
        assert.equal(new Set(got).size, count, 'no reply twice');
        assert.ok(
          got.every((text) => text.startsWith(`c${c}-`)),
          'no reply to the other client',
        );
      });
      const sentBytes = [...Array(count).keys()].reduce((n, i) => n + `c0-${i}`.length, 0);
      assert.equal((await forwardOf(engine))?.bytes.toTarget, 2 * sentBytes);
    });

    test('a target given by name is resolved', { skip }, async (t) => {
      const { address } = await lookup('localhost');
      const target = await udpTarget(t, address);
      const { engine } = await startEngine(t, { udp: { dataPlane } });
      const port = await freeUdpPort();
      const status = await engine.call('add', {
        forward: {
          id: 'named',
          protocol: 'udp',
          listen: { address: '127.0.0.1', port },
          target: { host: 'localhost', port: target.port },
        },
      });
      assert.equal(status.state, 'listening', JSON.stringify(status.error));
      assert.match(await ask(await udpClient(t), port, 'hi'), /^hi via \d+$/);
    });

    test('a target with nothing listening is reported, and served once it starts', { skip }, async (t) => {
      const { engine } = await startEngine(t, { udp: { dataPlane } });
      const targetPort = await freeUdpPort();
      const port = await addUdp(engine, 'late', targetPort);
      const client = await udpClient(t);
      client.send('anyone?', port, '127.0.0.1');
      await until(async () => {
        client.send('anyone?', port, '127.0.0.1');
        return (await forwardOf(engine))?.lastError?.code === 'ECONNREFUSED';
      }, 'the refusal to be reported');
      assert.match((await forwardOf(engine))?.lastError?.message ?? '', /Nothing is listening on the target/);
      const target = dgram.createSocket('udp4');
      target.on('message', (data, from) => target.send(`${data.toString()} late`, from.port, from.address));
      target.bind(targetPort, '127.0.0.1');
      await once(target, 'listening');
      onCleanup(t, () => target.close());
      // Datagrams sent while nothing listened may still be answered now: wait for the answer to this one.
      const answers: string[] = [];
      client.on('message', (data) => answers.push(data.toString()));
      await until(() => {
        client.send('now', port, '127.0.0.1');
        return answers.includes('now late');
      }, 'the answer once the target listens');
    });

    test('UDP over IPv6', { skip }, async (t) => {
      if (!(await canBind(0, '::1'))) return t.skip('no IPv6 loopback (::1) on this machine');
      const { engine } = await startEngine(t, { udp: { dataPlane } });
      const target = await udpTarget(t, '::1');
      const port = await addUdp(engine, 'six', target.port, '::1');
      const client = await udpClient(t, '::1');
      assert.match(await ask(client, port, 'six', '::1'), /^six via \d+$/);
    });

    test('disabling a UDP forward releases its port at once', { skip }, async (t) => {
      const { engine } = await startEngine(t, { udp: { dataPlane } });
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
      assert.equal(
        (await forwardOf(engine))?.connections.active,
        0,
        'sessions were closed with the listener',
      );
    });
  });
}
