/**
 * TCP forwarding through a real engine: real sockets on loopback, real targets. Every test runs on both data
 * planes: the addon's native relay and net.Socket (the fallback).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigStore } from '../../app/config/store.js';
import { Engine } from '../../app/engine/engine.js';
import { describe, test } from 'node:test';
import {
  addForward,
  canBind,
  closed,
  connect,
  dataPlanes,
  echo,
  freePort,
  onCleanup,
  readAll,
  silentListener,
  startEngine,
  tcpServer,
  tempDir,
  until,
} from '../support/index.js';

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

// libuv TCP handles of this process (the native relay has none: its sockets are not libuv handles).
const handles = (type: string) => process.getActiveResourcesInfo().filter((name) => name === type).length;

for (const { dataPlane, skip } of dataPlanes('tcp')) {
  describe(`TCP on the ${dataPlane} data plane`, () => {
    test('the forward runs on this data plane', { skip }, async (t) => {
      const { engine } = await startEngine(t, { tcp: { dataPlane } });
      const target = await tcpServer(t, echo);
      const servers = handles('TCPServerWrap');
      const sockets = handles('TCPSocketWrap');
      const port = await addForward(engine, 'plane', { host: '127.0.0.1', port: target.port });
      const client = await connect(port);
      onCleanup(t, () => client.destroy());
      client.write('ping');
      await once(client, 'data');
      // This test's client and the target's end of the connection are ours; the forward's listener and its two
      // sockets exist only on the node plane.
      assert.equal(handles('TCPServerWrap') - servers, dataPlane === 'native' ? 0 : 1);
      assert.equal(handles('TCPSocketWrap') - sockets, dataPlane === 'native' ? 2 : 4);
    });

    test('a large transfer arrives intact both ways and is counted', { skip }, async (t) => {
      const { engine } = await startEngine(t, { tcp: { dataPlane } });
      const upload = randomBytes(24 * 1024 * 1024);
      const download = randomBytes(12 * 1024 * 1024);
      let receivedHash = '';
      const target = await tcpServer(t, (socket) => {
        const hash = createHash('sha256');
        socket.on('data', (chunk: Buffer) => hash.update(chunk));
        socket.on('end', () => {
          receivedHash = hash.digest('hex');
          socket.end(download);
        });
      });
      const port = await addForward(engine, 'big', { host: '127.0.0.1', port: target.port });

      const client = await connect(port);
      const reply = readAll(client);
      client.end(upload);
      assert.equal(sha(await reply), sha(download));
      assert.equal(receivedHash, sha(upload));

      await until(
        async () => (await engine.call('status', {})).forwards[0]?.connections.active === 0,
        'the close',
      );
      const [status] = (await engine.call('status', {})).forwards;
      assert.deepEqual(status?.bytes, { toTarget: upload.length, fromTarget: download.length });
      assert.deepEqual(status?.connections, { active: 0, total: 1 });
    });

    test('many concurrent connections each get their own bytes back', { skip }, async (t) => {
      const { engine } = await startEngine(t, { tcp: { dataPlane } });
      const target = await tcpServer(t, echo);
      const port = await addForward(engine, 'many', { host: '127.0.0.1', port: target.port });
      const count = 200;
      await Promise.all(
        Array.from({ length: count }, async () => {
          const payload = randomBytes(64 * 1024);
          const client = await connect(port);
          const reply = readAll(client);
          client.end(payload);
          assert.equal(sha(await reply), sha(payload));
        }),
      );
      await until(
        async () => (await engine.call('status', {})).forwards[0]?.connections.active === 0,
        'all closes',
      );
      assert.equal((await engine.call('status', {})).forwards[0]?.connections.total, count);
    });

    test('IPv6 listen address and IPv6 target', { skip }, async (t) => {
      if (!(await canBind(0, '::1'))) return t.skip('no IPv6 loopback (::1) on this machine');
      const { engine } = await startEngine(t, { tcp: { dataPlane } });
      const target = await tcpServer(t, echo, '::1');
      const listen = { address: '::1', port: await freePort('::1') };
      const port = await addForward(engine, 'six', { host: '::1', port: target.port }, { listen });
      const client = await connect(port, '::1');
      const reply = readAll(client);
      client.end('over IPv6');
      assert.equal((await reply).toString(), 'over IPv6');
    });

    test('half-close: the client finishes sending and still receives the reply', { skip }, async (t) => {
      const { engine } = await startEngine(t, { tcp: { dataPlane } });
      // The target answers only after the client's FIN: it needs the whole request first.
      const target = await tcpServer(t, (socket) => {
        const chunks: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        socket.on('end', () => socket.end(`got ${Buffer.concat(chunks).length} bytes after your FIN`));
      });
      const port = await addForward(engine, 'half', { host: '127.0.0.1', port: target.port });
      const client = await connect(port);
      const reply = readAll(client);
      client.end(Buffer.alloc(100_000, 1));
      assert.equal((await reply).toString(), 'got 100000 bytes after your FIN');
    });

    test(
      'half-close: the target finishes sending and still receives from the client',
      { skip },
      async (t) => {
        const { engine } = await startEngine(t, { tcp: { dataPlane } });
        let afterFin = '';
        const targetDone = new Promise<void>((resolve) => {
          void tcpServer(t, (socket) => {
            socket.end('bye from target'); // FIN first, then keep reading
            socket.on('data', (chunk: Buffer) => (afterFin += chunk.toString()));
            socket.on('end', () => resolve());
          }).then(async (target) => {
            const port = await addForward(engine, 'half2', { host: '127.0.0.1', port: target.port });
            const client = await connect(port);
            const chunks: Buffer[] = [];
            client.on('data', (chunk: Buffer) => chunks.push(chunk));
            await once(client, 'end'); // the target's FIN reached the client...
            assert.equal(Buffer.concat(chunks).toString(), 'bye from target');
            client.end('still talking'); // ...and the client can still send
          });
        });
        await targetDone;
        assert.equal(afterFin, 'still talking');
      },
    );

    test('a stalled reader keeps what Berth reads from the target bounded', { skip }, async (t) => {
      const { engine } = await startEngine(t, { tcp: { dataPlane } });
      const limit = 256 * 1024 * 1024;
      let written = 0;
      const chunk = Buffer.alloc(256 * 1024, 7);
      const target = await tcpServer(t, (socket) => {
        // Writes as fast as the forwarder lets it, up to a bounded total.
        const pump = () => {
          while (written < limit && !socket.destroyed) {
            written += chunk.length;
            if (!socket.write(chunk)) return void socket.once('drain', pump);
          }
        };
        pump();
      });
      const port = await addForward(engine, 'stall', { host: '127.0.0.1', port: target.port });
      const client = await connect(port);
      client.pause(); // never reads

      // Wait until the flow stops: Berth stopped reading because the client's side is full.
      let last = -1;
      let stable = 0;
      await until(
        async () => {
          const now = (await engine.call('status', {})).forwards[0]?.bytes.fromTarget ?? 0;
          stable = now === last && now > 0 ? stable + 1 : 0;
          last = now;
          return stable >= 20;
        },
        'the transfer to stall',
        20_000,
      );
      client.destroy();
      assert.ok(
        last < 64 * 1024 * 1024,
        `Berth read ${last} bytes from the target for a client that reads nothing`,
      );
      assert.ok(written < limit, 'the target was held back by backpressure');
    });

    test(
      'a refused target closes the client promptly, is counted, and the listener stays up',
      { skip },
      async (t) => {
        const { engine } = await startEngine(t, { tcp: { dataPlane } });
        const deadPort = await freePort();
        const port = await addForward(engine, 'refused', { host: '127.0.0.1', port: deadPort });
        const client = await connect(port);
        const error = await closed(client);
        assert.ok(error === undefined || error.code === 'ECONNRESET', String(error));
        const [status] = (await engine.call('status', {})).forwards;
        assert.equal(status?.state, 'listening');
        assert.equal(status?.errors, 1);
        assert.equal(status?.lastError?.code, 'ECONNREFUSED');
        assert.match(status?.lastError?.message ?? '', /Nothing is listening on the target/);

        // The same listener serves again once the target is up.
        const target = net.createServer(echo).listen(deadPort, '127.0.0.1');
        onCleanup(t, () => target.close());
        await once(target, 'listening');
        const again = await connect(port);
        const reply = readAll(again);
        again.end('back');
        assert.equal((await reply).toString(), 'back');
      },
    );

    test('an unresolvable target host is an error for that connection only', { skip }, async (t) => {
      const { engine } = await startEngine(t, { tcp: { dataPlane } });
      const port = await addForward(engine, 'nxdomain', { host: 'berth-test.invalid', port: 80 });
      await closed(await connect(port));
      await until(async () => (await engine.call('status', {})).forwards[0]?.errors === 1, 'the error count');
      const [status] = (await engine.call('status', {})).forwards;
      assert.ok(
        ['ENOTFOUND', 'EAI_AGAIN'].includes(status?.lastError?.code ?? ''),
        String(status?.lastError?.code),
      );
      assert.equal(status?.state, 'listening');
    });

    test('a target given by name is served on whichever of its addresses listens', { skip }, async (t) => {
      const { engine } = await startEngine(t, { tcp: { dataPlane } });
      // Only 127.0.0.1 listens: where localhost also resolves to ::1, that address is refused and the next tried.
      const target = await tcpServer(t, echo);
      const port = await addForward(engine, 'named', { host: 'localhost', port: target.port });
      const client = await connect(port);
      const reply = readAll(client);
      client.end('by name');
      assert.equal((await reply).toString(), 'by name');
      assert.equal((await engine.call('status', {})).forwards[0]?.errors, 0);
    });

    test('a target that does not answer times out and the client is closed', { skip }, async (t) => {
      const silentPort = await silentListener(t);

      const { engine } = await startEngine(t, { tcp: { connectTimeoutMs: 300, dataPlane } });
      const port = await addForward(engine, 'silent', { host: '127.0.0.1', port: silentPort });
      await closed(await connect(port));
      const [status] = (await engine.call('status', {})).forwards;
      assert.equal(status?.lastError?.code, 'ETIMEDOUT');
      assert.equal(status?.state, 'listening');
    });

    test('a reset on either side resets the other', { skip }, async (t) => {
      const { engine } = await startEngine(t, { tcp: { dataPlane } });
      const targetErrors: string[] = [];
      let mode: 'target-resets' | 'client-resets' = 'target-resets';
      let targetSawData = false;
      const target = await tcpServer(t, (socket) => {
        socket.on('error', (err: NodeJS.ErrnoException) => targetErrors.push(err.code ?? ''));
        socket.once('data', () => {
          targetSawData = true;
          if (mode === 'target-resets') socket.resetAndDestroy();
        });
      });
      const port = await addForward(engine, 'rst', { host: '127.0.0.1', port: target.port });

      const client = await connect(port);
      client.write('trigger');
      const [err] = (await once(client, 'error')) as [NodeJS.ErrnoException];
      assert.equal(err.code, 'ECONNRESET');

      mode = 'client-resets';
      targetSawData = false;
      const second = await connect(port);
      second.write('hello');
      await until(() => targetSawData, 'the target to see data');
      second.resetAndDestroy();
      await until(() => targetErrors.includes('ECONNRESET'), 'the target to see the reset');
    });

    test('a Unix socket target', { skip }, async (t) => {
      const dir = await tempDir(t);
      const path = join(dir, 'target.sock');
      const target = net.createServer({ allowHalfOpen: true }, echo).listen(path);
      onCleanup(t, () => target.close());
      await once(target, 'listening');
      const { engine } = await startEngine(t, { tcp: { dataPlane } });
      const port = await addForward(engine, 'unix', { unix: path });
      const client = await connect(port);
      const reply = readAll(client);
      client.end('via unix');
      assert.equal((await reply).toString(), 'via unix');
    });

    test(
      'a Unix socket target that shuts down while bytes wait for it ends the connection',
      { skip },
      async (t) => {
        // The target never reads, so bytes wait in Berth for it; then it shuts its socket down both ways but
        // keeps the fd open. Those bytes can never be delivered: the connection must end (the native relay once
        // spun on the EPOLLHUP this leaves, which cannot be masked).
        const path = join(await tempDir(t), 'target.sock');
        const python = spawn('/usr/bin/python3', [
          '-c',
          'import socket,sys,time\ns=socket.socket(socket.AF_UNIX);s.bind(sys.argv[1]);s.listen(1)\nprint("ready",flush=True)\nc,_=s.accept()\nsys.stdin.readline()\nc.shutdown(socket.SHUT_RDWR)\nprint("shut",flush=True)\ntime.sleep(60)',
          path,
        ]);
        onCleanup(t, () => python.kill('SIGKILL'));
        await once(python.stdout, 'data');
        const { engine } = await startEngine(t, { tcp: { dataPlane } });
        const port = await addForward(engine, 'hup', { unix: path });
        const client = await connect(port);
        client.on('error', () => undefined);
        void closed(client); // reads, so the end is seen
        client.write(Buffer.alloc(8 * 1024 * 1024));
        const toTarget = async () => (await engine.call('status', {})).forwards[0]?.bytes.toTarget ?? 0;
        await until(async () => (await toTarget()) > 0, 'bytes to reach Berth');
        python.stdin.write('shut\n');
        await once(python.stdout, 'data');
        await until(() => client.closed, 'the client connection to end', 10_000);
        await until(
          async () => (await engine.call('status', {})).forwards[0]?.connections.active === 0,
          'the close',
        );
        const [status] = (await engine.call('status', {})).forwards;
        assert.ok((status?.errors ?? 0) >= 1, 'the failure is counted');
        assert.equal(status?.lastError?.code, 'EPIPE');
      },
    );

    test('disabling releases the port at once; enabling takes it again', { skip }, async (t) => {
      const { engine } = await startEngine(t, { tcp: { dataPlane } });
      const target = await tcpServer(t, echo);
      const port = await addForward(engine, 'toggle', { host: '127.0.0.1', port: target.port });
      const open = await connect(port); // an open connection must not keep the port
      const openClosed = closed(open);
      assert.equal((await engine.call('disable', { id: 'toggle' })).state, 'stopped');
      assert.equal(await canBind(port), true, 'a new process can bind the port right after disable');
      await openClosed;
      assert.equal((await engine.call('enable', { id: 'toggle' })).state, 'listening');
      assert.equal(await canBind(port), false);
    });

    test('a port in use is an error with a sentence; other forwards keep running', { skip }, async (t) => {
      const { engine } = await startEngine(t, { tcp: { dataPlane } });
      const target = await tcpServer(t, echo);
      const taken = await tcpServer(t, () => undefined);
      const status = await engine.call('add', {
        forward: {
          id: 'clash',
          listen: { port: taken.port },
          target: { host: '127.0.0.1', port: target.port },
        },
      });
      assert.equal(status.state, 'error');
      assert.equal(status.error?.code, 'EADDRINUSE');
      // The holder is this test process (test/engine/busy-port.test.ts has a squatter of its own).
      assert.match(
        status.error?.message ?? '',
        new RegExp(`already in use: it is held by .*\\(pid ${process.pid}, `),
      );
      assert.equal(status.error?.holder?.pid, process.pid);
      assert.equal(status.error?.retrying, true);
      const port = await addForward(engine, 'fine', { host: '127.0.0.1', port: target.port });
      const client = await connect(port);
      const reply = readAll(client);
      client.end('ok');
      assert.equal((await reply).toString(), 'ok');
      assert.equal((await engine.call('status', {})).forwards.find((f) => f.id === 'clash')?.state, 'error');
    });

    test('an address not on this machine is an EADDRNOTAVAIL error', { skip }, async (t) => {
      const { engine } = await startEngine(t, { tcp: { dataPlane } });
      const status = await engine.call('add', {
        forward: {
          id: 'far',
          listen: { address: '192.0.2.1', port: 4000 },
          target: { host: '127.0.0.1', port: 1 },
        },
      });
      assert.equal(status.state, 'error');
      assert.equal(status.error?.code, 'EADDRNOTAVAIL');
    });

    test('the connection cap closes extra clients and counts them', { skip }, async (t) => {
      const { engine } = await startEngine(t, { tcp: { maxConnections: 2, dataPlane } });
      const target = await tcpServer(t, echo);
      const port = await addForward(engine, 'cap', { host: '127.0.0.1', port: target.port });
      const held = [await connect(port), await connect(port)];
      onCleanup(t, () => held.forEach((s) => s.destroy()));
      await until(
        async () => (await engine.call('status', {})).forwards[0]?.connections.active === 2,
        'two open',
      );
      await closed(net.connect(port, '127.0.0.1'));
      await until(
        async () => (await engine.call('status', {})).forwards[0]?.lastError?.code === 'EMAXCONN',
        'the drop',
      );
    });

    test('editing a running forward moves new connections to the new target', { skip }, async (t) => {
      const { engine } = await startEngine(t, { tcp: { dataPlane } });
      const first = await tcpServer(t, (s) => s.end('first'));
      const second = await tcpServer(t, (s) => s.end('second'));
      const port = await addForward(engine, 'edit', { host: '127.0.0.1', port: first.port });
      const before = await connect(port);
      assert.equal((await readAll(before)).toString(), 'first');
      const updated = await engine.call('update', {
        id: 'edit',
        forward: { id: 'edit', listen: { port }, target: { host: '127.0.0.1', port: second.port } },
      });
      assert.equal(updated.state, 'listening');
      const after = await connect(port);
      assert.equal((await readAll(after)).toString(), 'second');
      assert.equal(
        (await engine.call('status', {})).forwards[0]?.connections.total,
        2,
        'counters survive the edit',
      );
    });

    test(
      'closing the engine while its forwards are still starting leaves no port bound',
      { skip },
      async (t) => {
        const dir = await tempDir(t);
        const ports = [await freePort(), await freePort(), await freePort()];
        const target = await tcpServer(t, echo);
        await writeFile(
          join(dir, 'config.json'),
          JSON.stringify({
            version: 1,
            forwards: ports.map((port, i) => ({
              id: `f${i}`,
              listen: { port },
              target: { host: '127.0.0.1', port: target.port },
            })),
          }),
        );
        const engine = new Engine({ store: new ConfigStore(join(dir, 'config.json')), tcp: { dataPlane } });
        const starting = engine.start();
        await engine.close(); // at once, before start() has finished
        await starting;
        for (const port of ports) assert.equal(await canBind(port), true, `port ${port} was left bound`);
      },
    );
  });
}
