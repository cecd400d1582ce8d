/** The `berth` CLI against a real `berth serve` process: real control socket, real config file. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { access, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { berth, serve } from '../support/berth-process.js';
import { canBind, echo, freePort, tcpServer, tempDir, until } from '../support/index.js';

test('serve, add, status --json, disable, enable, remove: the whole round', async (t) => {
  const berthd = await serve(t);
  assert.match(berthd.output(), new RegExp(`Berth control socket: ${berthd.control}`));
  assert.equal((await stat(berthd.control)).mode & 0o777, 0o600);

  const target = await tcpServer(t, echo);
  const port = await freePort();
  const added = await berthd.cli(
    'add',
    'web',
    '--listen',
    `127.0.0.1:${port}`,
    '--target',
    `127.0.0.1:${target.port}`,
    '--name',
    'Web',
  );
  assert.equal(added.code, 0, added.stderr);
  assert.equal(added.stdout.trim(), 'web: listening (direct)');

  const status = await berthd.cli('status', '--json');
  assert.equal(status.code, 0, status.stderr);
  const json = JSON.parse(status.stdout) as { forwards: Record<string, unknown>[] };
  assert.deepEqual(Object.keys(json), ['forwards']);
  // The first health check runs as the forward starts: done or not yet, by the time status answers.
  const { health, ...rest } = json.forwards[0] ?? {};
  assert.match((health as { state: string }).state, /^(unknown|healthy)$/);
  assert.deepEqual(rest, {
    id: 'web',
    name: 'Web',
    enabled: true,
    protocol: 'tcp',
    listen: { address: '127.0.0.1', port },
    target: { host: '127.0.0.1', port: target.port },
    state: 'listening',
    via: 'direct',
    error: null,
    lastError: null,
    connections: { active: 0, total: 0 },
    bytes: { toTarget: 0, fromTarget: 0 },
    errors: 0,
  });

  const human = await until(async () => {
    const out = (await berthd.cli('status')).stdout;
    return /^web\s+listening\s+healthy/m.test(out) ? out : undefined;
  }, 'the forward to be healthy');
  assert.match(human, /^ID\s+STATE\s+HEALTH\s+VIA\s+LISTEN\s+TARGET/m);
  assert.match(
    human,
    new RegExp(`^web\\s+listening\\s+healthy\\s+direct\\s+127\\.0\\.0\\.1:${port}/tcp`, 'm'),
  );

  const disabled = await berthd.cli('disable', 'web');
  assert.equal(disabled.stdout.trim(), 'web: stopped');
  assert.equal(await canBind(port), true, 'disable released the port');
  const saved = JSON.parse(await readFile(berthd.config, 'utf8')) as { forwards: { enabled: boolean }[] };
  assert.equal(saved.forwards[0]?.enabled, false, 'disable is saved to the config');

  assert.equal((await berthd.cli('enable', 'web')).stdout.trim(), 'web: listening (direct)');
  assert.equal(await canBind(port), false);

  const removed = await berthd.cli('remove', 'web');
  assert.equal(removed.code, 0);
  assert.equal(await canBind(port), true, 'remove released the port');
  assert.deepEqual(JSON.parse((await berthd.cli('status', '--json')).stdout), { forwards: [] });
  assert.deepEqual(
    (JSON.parse(await readFile(berthd.config, 'utf8')) as { forwards: unknown[] }).forwards,
    [],
  );
});

test('bad arguments and unknown ids give clear errors and non-zero exits', async (t) => {
  const berthd = await serve(t);
  const cases: [string[], number, RegExp][] = [
    [['frobnicate'], 2, /unknown command "frobnicate"/],
    [['add', 'web', '--target', '127.0.0.1:1'], 2, /--listen \[ADDRESS:\]PORT is required/],
    [['add', 'web', '--listen', '8080'], 2, /--target HOST:PORT or unix:\/PATH is required/],
    [['add', 'web', '--listen', 'eighty', '--target', '1'], 2, /--listen: "eighty" is not \[HOST:\]PORT/],
    [['add', 'web', '--listen', '::1:80', '--target', '1'], 2, /write IPv6 addresses in brackets/],
    [
      ['add', 'web', '--listen', '8080', '--target', '1', '--protocol', 'sctp'],
      2,
      /--protocol must be tcp or udp/,
    ],
    [['add', 'web', '--listen', '99999', '--target', '1'], 1, /forward\.listen\.port: must be 1-65535/],
    [['add', 'Bad_Id', '--listen', '8080', '--target', '1'], 1, /forward\.id: must be 1-40 lowercase/],
    [['enable'], 2, /missing the forward ID/],
    [['enable', 'a', 'b'], 2, /unexpected argument "b"/],
    [['status', '--bogus'], 2, /Unknown option '--bogus'/],
    [['enable', 'nope'], 1, /No forward with id "nope"\. There are no forwards yet\./],
    [['remove', 'nope'], 1, /No forward with id "nope"/],
  ];
  for (const [args, code, message] of cases) {
    const result = await berthd.cli(...args);
    assert.equal(result.code, code, `berth ${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message, `berth ${args.join(' ')}`);
  }
  const first = await berthd.cli('add', 'dup', '--listen', String(await freePort()), '--target', '1');
  assert.equal(first.code, 0, first.stderr);
  const again = await berthd.cli('add', 'dup', '--listen', String(await freePort()), '--target', '1');
  assert.equal(again.code, 1);
  assert.match(again.stderr, /A forward with id "dup" already exists/);
});

test('commands without a running Berth say how to start it', async (t) => {
  const dir = await tempDir(t);
  const result = await berth(['status', '--control', join(dir, 'none.sock')]);
  assert.equal(result.code, 1);
  assert.match(
    result.stderr,
    /Berth is not running: nothing answers on .*none\.sock\. Start it with `berth serve`\./,
  );
});

test('a second serve on the same control socket refuses to start and binds nothing', async (t) => {
  const first = await serve(t);
  const second = await berth(['serve', '--no-ui', '--config', first.config, '--control', first.control]);
  assert.equal(second.code, 1);
  assert.match(second.stderr, /Berth is already running/);
  assert.doesNotMatch(
    second.stdout + second.stderr,
    /listening|EADDRINUSE/,
    'it stopped before starting forwards',
  );
  assert.equal((await first.cli('status')).code, 0, 'the first instance is unharmed');
});

test('SIGTERM and SIGINT close every listener, remove the socket and exit 0', async (t) => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    const berthd = await serve(t);
    const target = await tcpServer(t, echo);
    const port = await freePort();
    assert.equal(
      (await berthd.cli('add', 'web', '--listen', String(port), '--target', String(target.port))).code,
      0,
    );
    berthd.child.kill(signal);
    const [code] = (await once(berthd.child, 'exit')) as [number];
    assert.equal(code, 0, berthd.output());
    assert.equal(await canBind(port), true, `${signal} released the port`);
    await assert.rejects(access(berthd.control), { code: 'ENOENT' });
  }
});

test('forwards in the config start with serve; one that cannot start does not stop the others', async (t) => {
  const dir = await tempDir(t);
  const target = await tcpServer(t, echo);
  const busy = await tcpServer(t, () => undefined);
  const free = await freePort();
  await writeFile(
    join(dir, 'config.json'),
    JSON.stringify({
      version: 1,
      forwards: [
        { id: 'busy', listen: { port: busy.port }, target: { host: '127.0.0.1', port: target.port } },
        { id: 'fine', listen: { port: free }, target: { host: '127.0.0.1', port: target.port } },
      ],
    }),
  );
  const berthd = await serve(t, dir);
  assert.match(
    berthd.output(),
    /busy: EADDRINUSE: .* is already in use: it is held by .*\(pid \d+, user \S+\)\. Berth takes the port by itself/,
  );
  assert.match(berthd.output(), new RegExp(`fine: listening on 127\\.0\\.0\\.1:${free}/tcp \\(direct\\)`));
  const status = JSON.parse((await berthd.cli('status', '--json')).stdout) as {
    forwards: { state: string }[];
  };
  assert.deepEqual(
    status.forwards.map((f) => f.state),
    ['error', 'listening'],
  );
});

test('validate checks a file offline and lists problems with their JSON paths', async (t) => {
  const dir = await tempDir(t);
  const good = join(dir, 'good.json');
  const bad = join(dir, 'bad.json');
  await writeFile(
    good,
    JSON.stringify({ version: 1, forwards: [{ id: 'a', listen: { port: 80 }, target: { unix: '/s' } }] }),
  );
  await writeFile(
    bad,
    JSON.stringify({
      version: 1,
      forwards: [{ id: 'a', listen: { port: 0 }, target: { host: 'x', port: 1 }, extra: 1 }],
    }),
  );
  const ok = await berth(['validate', good]);
  assert.equal(ok.code, 0);
  assert.equal(ok.stdout.trim(), `${good}: valid (1 forward)`);
  const notOk = await berth(['validate', bad]);
  assert.equal(notOk.code, 1);
  assert.equal(
    notOk.stderr.trim(),
    `${bad}: forwards[0].listen.port: must be 1-65535\n${bad}: forwards[0].extra: unknown key`,
  );
  const missing = await berth(['validate', join(dir, 'missing.json')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot read .*missing\.json/);
  assert.equal((await berth(['validate', '--config', good])).code, 0, '--config names the file too');
});

test('add with a backend after --, then berth logs shows its output', async (t) => {
  const berthd = await serve(t);
  const added = await berthd.cli(
    'add',
    'svc',
    '--listen',
    String(await freePort()),
    '--target',
    '1',
    '--restart',
    'never',
    '--env',
    'GREETING=hello from $(id)',
    '--',
    'sh',
    '-c',
    'echo "$GREETING"; echo oops >&2',
  );
  assert.equal(added.code, 0, added.stderr);
  const config = JSON.parse(await readFile(berthd.config, 'utf8')) as { forwards: { backend?: unknown }[] };
  assert.deepEqual(config.forwards[0]?.backend, {
    command: ['sh', '-c', 'echo "$GREETING"; echo oops >&2'],
    env: { GREETING: 'hello from $(id)' },
    restart: 'never',
  });
  let logs = '';
  await until(async () => {
    logs = (await berthd.cli('logs', 'svc')).stdout;
    return logs.includes('exited with code 0');
  }, 'the backend to run and exit');
  assert.match(logs, /^\S+ stdout hello from \$\(id\)$/m);
  assert.match(logs, /^\S+ stderr oops$/m);
  const bad = await berthd.cli('logs', 'svc', '--lines', 'zero');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--lines must be a positive whole number/);
  const orphan = await berthd.cli('add', 'x', '--listen', '1', '--target', '1', '--restart', 'always');
  assert.equal(orphan.code, 2);
  assert.match(orphan.stderr, /need a backend command after --/);
});
