/** Health as people see it from the CLI and `berth serve`'s log, against a real `berth serve` process. */
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type net from 'node:net';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { serve } from '../support/berth-process.js';
import { freePort, onCleanup, tcpServer, until } from '../support/index.js';

test('berth add --health http:PATH: status says unhealthy in words, and the log marks the change', async (t) => {
  const berthd = await serve(t);
  const server = http.createServer((_req, res) => {
    res.statusCode = 503;
    res.end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onCleanup(t, () => new Promise((resolve) => server.close(resolve)));
  const target = (server.address() as net.AddressInfo).port;
  const added = await berthd.cli(
    'add',
    'api',
    '--listen',
    String(await freePort()),
    '--target',
    String(target),
    '--health',
    'http:/healthz',
  );
  assert.equal(added.code, 0, added.stderr);
  const saved = JSON.parse(await readFile(berthd.config, 'utf8')) as {
    version: number;
    forwards: { health?: unknown }[];
  };
  assert.deepEqual(saved.forwards[0]?.health, { check: 'http', path: '/healthz' });
  assert.equal(saved.version, 2, 'a file that uses health is version 2');

  // The default interval is 10 s and 3 failures: within about 30 s.
  const table = await until(
    async () => {
      const out = (await berthd.cli('status')).stdout;
      return /^api\s+listening\s+unhealthy/m.test(out) ? out : undefined;
    },
    'unhealthy in berth status',
    45_000,
  );
  assert.match(table, /^api: unhealthy: HTTP 503 from \/healthz$/m);
  await until(
    () => berthd.output().includes('berth: api is unhealthy: HTTP 503 from /healthz.'),
    'the log line',
  );
});

test('berth add --health with a bad value is a usage error that names the forms', async (t) => {
  const berthd = await serve(t);
  const bad = await berthd.cli('add', 'x', '--listen', '8080', '--target', '1', '--health', 'ping');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--health must be tcp, http:PATH \(such as http:\/healthz\) or off, not "ping"/);
  const noSlash = await berthd.cli(
    'add',
    'x',
    '--listen',
    '8080',
    '--target',
    '1',
    '--health',
    'http:healthz',
  );
  assert.equal(noSlash.code, 1);
  assert.match(noSlash.stderr, /forward\.health\.path: must start with "\/"/);
});

test('berth serve stopped (SIGSTOP) for 20 s and continued re-checks every forward at once', async (t) => {
  const berthd = await serve(t);
  const target = await tcpServer(t, (s) => s.end());
  const added = await berthd.cli(
    'add',
    'web',
    '--listen',
    String(await freePort()),
    '--target',
    String(target.port),
  );
  assert.equal(added.code, 0, added.stderr);
  const pid = berthd.child.pid as number;
  process.kill(pid, 'SIGSTOP');
  onCleanup(t, () => process.kill(pid, 'SIGCONT'));
  await new Promise((resolve) => setTimeout(resolve, 20_000));
  process.kill(pid, 'SIGCONT');
  const line = await until(
    () => /^berth: Re-checking every forward now: Berth was paused for (\d+) s .*$/m.exec(berthd.output()),
    'the re-check to be logged',
  );
  assert.ok(Number(line[1]) >= 19, `the pause is measured: ${line[0]}`);
});
