/**
 * The addon's TCP relay (native/src/tcp_relay.cc) over real sockets: many concurrent connections with large
 * random payloads intact both ways and counted exactly, IPv6, a Unix socket target, the next address after a
 * refusal, retries of a refusing target, the connect timeout, the connection cap, setTarget, close() freeing the
 * port and every fd synchronously, close-on-exec of every socket it holds (checked in a spawned child's
 * /proc/PID/fd), bindTcp's errors, argument checks that leave the caller's fd open, no buffer held by idle
 * connections, and relays dropped unclosed (garbage collection, worker exit).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';
import type { TestContext } from 'node:test';
import { describe, test } from 'node:test';
import { addonPath, type BerthNative, loadBerthNative } from '../../app/native/addon.js';
import {
  openTcpRelay,
  type TcpRelay,
  type TcpRelayLimits,
  type TcpRelayOptions,
  type TcpRelayTarget,
} from '../../app/native/relays.js';
import {
  canBind,
  closed,
  echo,
  freePort,
  onCleanup,
  readAll,
  silentListener,
  tcpServer,
  tempDir,
  until,
} from '../support/index.js';
import { fds, O_CLOEXEC, fdFlags, isOpen } from '../support/fds.js';

function load(): { native?: BerthNative; skip: string | false } {
  if (process.platform !== 'linux') return { skip: 'the native TCP relay is Linux only' };
  let native: BerthNative;
  try {
    native = loadBerthNative('berth_native');
  } catch (err) {
    return { skip: `the addon is not built (npm run build:native): ${(err as Error).message}` };
  }
  if (!native.tcpRelayAvailable) return { skip: 'this build of the addon has no TCP relay' };
  return { native, skip: false };
}

const { native: loaded, skip } = load();
const native = loaded!;

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const OPTIONS: TcpRelayLimits = { connectTimeoutMs: 5000, maxConnections: 1000, retryRefusedMs: 0 };

/** A relay listening on a fresh port of `host`, closed after the test. */
async function relay(
  t: TestContext,
  target: TcpRelayTarget,
  options: Partial<TcpRelayLimits> = {},
  host = '127.0.0.1',
): Promise<{ relay: TcpRelay; port: number; fd: number }> {
  const port = await freePort(host);
  const fd = native.bindTcp(host, port);
  let r: TcpRelay;
  try {
    r = new native.TcpRelay({ ...OPTIONS, ...options, fd, target });
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  onCleanup(t, () => r.close());
  return { relay: r, port, fd };
}

/** Sends `payload` with a FIN and resolves to everything that came back before the other side's FIN. */
async function exchange(port: number, payload: Buffer | string, host = '127.0.0.1'): Promise<Buffer> {
  const socket = net.connect({ port, host, allowHalfOpen: true });
  await once(socket, 'connect');
  const reply = readAll(socket);
  socket.end(payload);
  return reply;
}

/** Connects `count` clients through the relay and waits until the echo target answered each (so all are open). */
async function held(t: TestContext, port: number, count: number): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  onCleanup(t, () => sockets.forEach((s) => s.destroy()));
  for (let i = 0; i < count; i += 1) {
    const socket = net.connect(port, '127.0.0.1');
    sockets.push(socket);
    socket.on('error', () => undefined);
    socket.write('x');
    await once(socket, 'data');
  }
  return sockets;
}

describe('native TCP relay', { skip }, () => {
  test('many concurrent connections carry large random payloads intact both ways, counted exactly', async (t) => {
    const target = await tcpServer(t, echo);
    const { relay: r, port } = await relay(t, { addresses: ['127.0.0.1'], port: target.port });
    const count = 40;
    const payloads = Array.from({ length: count }, (_, i) => randomBytes(256 * 1024 + i * 4099));
    const replies = await Promise.all(payloads.map((payload) => exchange(port, payload)));
    replies.forEach((reply, i) => assert.equal(sha(reply), sha(payloads[i]!), `connection ${i}`));
    const bytes = payloads.reduce((n, p) => n + p.length, 0);
    await until(() => r.stats().active === 0, 'every connection to close');
    assert.deepEqual(r.stats(), {
      active: 0,
      total: count,
      toTarget: bytes,
      fromTarget: bytes,
      errors: 0,
      lastError: null,
    });
  });

  test('IPv6 listener and target', async (t) => {
    if (!(await canBind(0, '::1'))) return t.skip('no IPv6 loopback (::1) on this machine');
    const target = await tcpServer(t, echo, '::1');
    const { port } = await relay(t, { addresses: ['::1'], port: target.port }, {}, '::1');
    assert.equal((await exchange(port, 'six', '::1')).toString(), 'six');
  });

  test('a Unix socket target', async (t) => {
    const path = join(await tempDir(t), 'target.sock');
    const target = net.createServer({ allowHalfOpen: true }, echo).listen(path);
    onCleanup(t, () => target.close());
    await once(target, 'listening');
    const { port } = await relay(t, { path });
    assert.equal((await exchange(port, 'via unix')).toString(), 'via unix');
  });

  test('a refusing address is skipped for the next one', async (t) => {
    const target = await tcpServer(t, echo);
    // 127.0.0.2 refuses (nothing listens there on that port); 127.0.0.1 answers.
    const { relay: r, port } = await relay(t, { addresses: ['127.0.0.2', '127.0.0.1'], port: target.port });
    assert.equal((await exchange(port, 'second')).toString(), 'second');
    assert.equal(r.stats().errors, 0);
  });

  test('an address that does not answer is given up after a moment for the next one', async (t) => {
    // 127.0.0.2:P drops connection attempts silently (a full accept queue); 127.0.0.1:P answers. Without a
    // per-address deadline the relay would wait out the whole connect timeout on the first address.
    let targetPort: number | undefined;
    for (let i = 0; i < 5 && targetPort === undefined; i += 1) {
      const port = await silentListener(t, '127.0.0.2');
      if (await canBind(port)) targetPort = (await tcpServer(t, echo, '127.0.0.1', undefined, port)).port;
    }
    assert.ok(targetPort !== undefined, 'a port free on both 127.0.0.1 and 127.0.0.2');
    const { relay: r, port } = await relay(
      t,
      { addresses: ['127.0.0.2', '127.0.0.1'], port: targetPort },
      { connectTimeoutMs: 20_000 },
    );
    assert.equal((await exchange(port, 'next one')).toString(), 'next one');
    assert.equal(r.stats().errors, 0);
  });

  test('a refused target resets the client and is counted; retryRefusedMs waits for it to start', async (t) => {
    const targetPort = await freePort();
    const plain = await relay(t, { addresses: ['127.0.0.1'], port: targetPort });
    const error = await closed(net.connect(plain.port, '127.0.0.1'));
    assert.equal(error?.code, 'ECONNRESET');
    assert.deepEqual(plain.relay.stats().lastError, {
      code: 'ECONNREFUSED',
      errno: -111,
      syscall: 'connect',
    });
    assert.equal(plain.relay.stats().errors, 1);

    const patient = await relay(
      t,
      { addresses: ['127.0.0.1'], port: targetPort },
      { retryRefusedMs: 50, connectTimeoutMs: 5000 },
    );
    const reply = exchange(patient.port, 'patience');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const late = net.createServer({ allowHalfOpen: true }, echo).listen(targetPort, '127.0.0.1');
    onCleanup(t, () => late.close());
    assert.equal((await reply).toString(), 'patience');
    assert.equal(patient.relay.stats().errors, 0);
  });

  test('retrying gives up at the connect timeout with ETIMEDOUT', async (t) => {
    const targetPort = await freePort();
    const { relay: r, port } = await relay(
      t,
      { addresses: ['127.0.0.1'], port: targetPort },
      { retryRefusedMs: 30, connectTimeoutMs: 200 },
    );
    const started = Date.now();
    await closed(net.connect(port, '127.0.0.1'));
    assert.ok(Date.now() - started >= 150, 'the client waited for the target');
    await until(() => r.stats().errors === 1, 'the failure to be counted');
    // The last refusal inside the deadline, or the deadline itself.
    assert.ok(['ECONNREFUSED', 'ETIMEDOUT'].includes(r.stats().lastError?.code ?? ''));
    assert.equal(r.stats().active, 0);
  });

  test('maxConnections: a further client is closed at once and counted as EMAXCONN', async (t) => {
    const target = await tcpServer(t, echo);
    const { relay: r, port } = await relay(
      t,
      { addresses: ['127.0.0.1'], port: target.port },
      { maxConnections: 2 },
    );
    await held(t, port, 2);
    await closed(net.connect(port, '127.0.0.1'));
    await until(() => r.stats().errors === 1, 'the drop to be counted');
    assert.deepEqual(r.stats().lastError, { code: 'EMAXCONN', errno: 0, syscall: '' });
    assert.equal(r.stats().active, 2);
  });

  test('setTarget: connections accepted afterwards go to the new target, open ones keep theirs', async (t) => {
    const first = await tcpServer(t, (s) => s.end('first'));
    const second = await tcpServer(t, (s) => s.end('second'));
    const { relay: r, port } = await relay(t, { addresses: ['127.0.0.1'], port: first.port });
    assert.equal((await exchange(port, '')).toString(), 'first');
    r.setTarget({ addresses: ['127.0.0.1'], port: second.port });
    assert.equal((await exchange(port, '')).toString(), 'second');
  });

  test('close() frees the port and every fd at once; twice is fine; stats() still works', async (t) => {
    const target = await tcpServer(t, echo);
    const baseline = fds().size;
    const { relay: r, port } = await relay(t, { addresses: ['127.0.0.1'], port: target.port });
    // The listener, its epoll and the spare fd of the EMFILE trick.
    assert.equal(fds().size, baseline + 3);
    const clients = await held(t, port, 5);
    // Per connection: the test's client, the relay's two sockets, the target's end.
    assert.equal(fds().size, baseline + 3 + 5 * 4);
    const ends = clients.map((c) => closed(c));
    r.close();
    assert.equal(fds().size, baseline + 5 * 2, 'the relay closed all its fds synchronously');
    assert.equal(await canBind(port), true, 'the port is free right after close()');
    r.close();
    assert.equal(r.stats().active, 0);
    assert.equal(r.stats().total, 5);
    await Promise.all(ends);
    await until(() => fds().size === baseline, 'the test side to close too');
  });

  test('close-on-exec: a spawned child holds none of the relay sockets; the port rebinds while it lives', async (t) => {
    const target = await tcpServer(t, echo);
    const before = fds();
    const { relay: r, port } = await relay(t, { addresses: ['127.0.0.1'], port: target.port });
    await held(t, port, 3);
    const opened = [...fds()].filter(([fd, link]) => before.get(fd) !== link);
    for (const [fd] of opened) assert.ok(fdFlags(fd) & O_CLOEXEC, `fd ${fd} lacks close-on-exec`);
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    onCleanup(t, () => child.kill('SIGKILL'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const links = new Set(opened.map(([, link]) => link));
    const inherited = readdirSync(`/proc/${child.pid}/fd`)
      .map((fd) => readlinkSync(`/proc/${child.pid}/fd/${fd}`))
      .filter((link) => links.has(link) || link.startsWith('socket:') || link.includes('eventpoll'));
    assert.deepEqual(inherited, [], 'the child inherited sockets of the relay');
    r.close();
    assert.equal(child.exitCode, null, 'the child still lives');
    const again = net.createServer().listen(port, '127.0.0.1');
    await once(again, 'listening');
    again.close();
  });

  test('bindTcp: Node-style errors, TypeError on bad arguments', async (t) => {
    const taken = await tcpServer(t, () => undefined);
    assert.throws(() => native.bindTcp('127.0.0.1', taken.port), {
      code: 'EADDRINUSE',
      errno: -98,
      syscall: 'bind',
    });
    assert.throws(() => native.bindTcp('192.0.2.1', 4000), { code: 'EADDRNOTAVAIL', syscall: 'bind' });
    const bad: unknown[][] = [
      [],
      ['127.0.0.1'],
      ['localhost', 80],
      [1, 80],
      ['127.0.0.1', -1],
      ['127.0.0.1', 1.5],
    ];
    for (const args of bad) {
      assert.throws(
        () => (native.bindTcp as (...a: unknown[]) => number)(...args),
        TypeError,
        JSON.stringify(args),
      );
    }
    const fd = native.bindTcp('127.0.0.1', 0);
    assert.ok(fdFlags(fd) & O_CLOEXEC);
    closeSync(fd);
  });

  test('bad arguments throw TypeError; a socket that is not listening throws Error; the fd stays the caller’s', async () => {
    const fd = native.bindTcp('127.0.0.1', 0);
    const make = native.TcpRelay as unknown as new (...args: unknown[]) => TcpRelay;
    const target = { addresses: ['127.0.0.1'], port: 9 };
    const good = { ...OPTIONS, fd, target };
    const bad: unknown[][] = [
      [],
      [fd],
      [null],
      [fd, target, OPTIONS],
      [good, 1],
      [{ fd, target }],
      [{ ...good, fd: '3' }],
      [{ ...good, fd: -1 }],
      [{ ...good, target: null }],
      [{ ...good, target: { addresses: [], port: 9 } }],
      [{ ...good, target: { addresses: ['localhost'], port: 9 } }],
      [{ ...good, target: { addresses: ['127.0.0.1'], port: 0 } }],
      [{ ...good, target: { addresses: '127.0.0.1', port: 9 } }],
      [{ ...good, target: { path: '' } }],
      [{ ...good, target: { path: 'x'.repeat(200) } }],
      [{ ...good, connectTimeoutMs: 0 }],
      [{ ...good, maxConnections: 0.5 }],
      [{ ...good, retryRefusedMs: -1 }],
    ];
    for (const args of bad) {
      assert.throws(() => new make(...args), TypeError, JSON.stringify(args));
      assert.ok(isOpen(fd), `the fd was closed by ${JSON.stringify(args)}`);
      // The TypeScript wrapper refuses the same options before the addon sees them.
      if (args.length === 1 && typeof args[0] === 'object' && args[0] !== null) {
        const refused = { TcpRelay: () => assert.fail(`the addon saw ${JSON.stringify(args)}`) };
        const wrapper = refused as unknown as Parameters<typeof openTcpRelay>[0];
        assert.throws(() => openTcpRelay(wrapper, args[0] as TcpRelayOptions), TypeError);
      }
    }
    closeSync(fd);

    // A listener belongs to one relay: a second one on it would close it a second time.
    const first = native.bindTcp('127.0.0.1', 0);
    const taken = new native.TcpRelay({ ...good, fd: first });
    assert.throws(
      () => new native.TcpRelay({ ...good, fd: first }),
      (err: NodeJS.ErrnoException) => err.code === 'EEXIST' && err.syscall === 'TcpRelay',
    );
    assert.ok(isOpen(first), 'the first relay still holds its listener');
    taken.close();
    assert.ok(!isOpen(first));

    const udp = dgram.createSocket('udp4');
    udp.bind(0, '127.0.0.1');
    await once(udp, 'listening');
    const udpFd = (udp as unknown as { _handle: { fd: number } })._handle.fd;
    assert.throws(() => new native.TcpRelay({ ...OPTIONS, fd: udpFd, target }), { code: 'EPROTOTYPE' });
    udp.close();
    const file = openSync('/proc/self/stat', 'r');
    assert.throws(() => new native.TcpRelay({ ...OPTIONS, fd: file, target }), { code: 'ENOTSOCK' });
    assert.ok(isOpen(file));
    closeSync(file);
    const notListening = net.connect(9, '127.0.0.1');
    notListening.on('error', () => undefined);
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    await once(client, 'connect');
    const clientFd = (client as unknown as { _handle: { fd: number } })._handle.fd;
    assert.throws(() => new native.TcpRelay({ ...OPTIONS, fd: clientFd, target }), { code: 'EINVAL' });
    assert.ok(isOpen(clientFd));
    client.destroy();
    notListening.destroy();
    server.close();
  });

  test('an idle connection costs the relay well under 1 KiB of memory: no buffer is kept', async (t) => {
    // The relay alone in a child process, so this test's own sockets do not blur its memory.
    const target = await tcpServer(t, echo);
    const port = await freePort();
    const code = `
      const native = require(process.argv[1]);
      const fd = native.bindTcp('127.0.0.1', Number(process.argv[2]));
      const relay = new native.TcpRelay({ fd, target: { addresses: ['127.0.0.1'], port: Number(process.argv[3]) },
        connectTimeoutMs: 5000, maxConnections: 10000, retryRefusedMs: 0 });
      process.stdout.write('ready\\n');
      process.stdin.on('data', () => process.stdout.write(JSON.stringify(relay.stats()) + '\\n'));
    `;
    const child = spawn(
      process.execPath,
      ['-e', code, addonPath('berth_native')!, String(port), String(target.port)],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    onCleanup(t, () => child.kill('SIGKILL'));
    await once(child.stdout, 'data');
    const rss = () =>
      Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) * 1024;
    await held(t, port, 20); // warms the scratch buffer and the allocator up
    const before = rss();
    const count = 400;
    const clients = await held(t, port, count);
    // Each connection also moved 64 KiB each way before going idle.
    const chunk = randomBytes(64 * 1024);
    await Promise.all(
      clients.map(async (c) => {
        let got = 0;
        const done = new Promise<void>((resolve) =>
          c.on('data', (data: Buffer) => {
            got += data.length;
            if (got >= chunk.length) resolve();
          }),
        );
        c.write(chunk);
        await done;
      }),
    );
    const perConnection = (rss() - before) / count;
    assert.ok(perConnection < 1024, `the relay's memory grew by ${perConnection} bytes per idle connection`);
  });

  test('a relay dropped without close() is closed when collected', async (t) => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const target = await tcpServer(t, echo);
    const before = fds();
    const port = await freePort();
    // Held until the exchange is done (a collection during it would close the connection), then dropped.
    let kept: TcpRelay | undefined = new native.TcpRelay({
      ...OPTIONS,
      fd: native.bindTcp('127.0.0.1', port),
      target: { addresses: ['127.0.0.1'], port: target.port },
    });
    assert.equal((await exchange(port, 'before')).toString(), 'before');
    assert.equal(kept.stats().total, 1);
    kept = undefined;
    await until(
      async () => {
        gc();
        await new Promise((resolve) => setImmediate(resolve));
        return [...fds()].every(([fd, link]) => before.get(fd) === link);
      },
      'the collected relay to close its fds',
      5000,
    );
    closeSync(native.bindTcp('127.0.0.1', port));
  });

  test('a worker that exits with a relay open tears it down cleanly', async () => {
    const before = fds();
    const port = await freePort();
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const native = require(workerData.addon);
      const fd = native.bindTcp('127.0.0.1', workerData.port);
      new native.TcpRelay({ fd, target: { addresses: ['127.0.0.1'], port: 9 }, connectTimeoutMs: 1000, maxConnections: 10, retryRefusedMs: 0 });
      parentPort.postMessage('ready');
    `;
    const worker = new Worker(code, { eval: true, workerData: { addon: addonPath('berth_native'), port } });
    await once(worker, 'message');
    await worker.terminate();
    closeSync(native.bindTcp('127.0.0.1', port));
    assert.deepEqual(
      [...fds()].filter(([fd, link]) => before.get(fd) !== link),
      [],
      'fds the worker left open',
    );
  });
});
