/** Supervised backends: real processes started, watched, restarted, logged and stopped by a real engine. */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import type { BackendStatus } from '../../app/api/contract.js';
import { processGroup } from '../../app/backend/proc.js';
import type { ForwardInput } from '../../app/config/schema.js';
import type { Engine } from '../../app/engine/engine.js';
import { serve, type Instance } from '../support/berth-process.js';
import { connect, freePort, onCleanup, readAll, startEngine, until } from '../support/index.js';

// Fast timings so restarts and crash loops happen in milliseconds; the order of events is what is asserted.
const fast = {
  backoffBaseMs: 10,
  backoffMaxMs: 40,
  healthyAfterMs: 60_000,
  crashLoopLimit: 6,
  graceMs: 2000,
};
const isRoot = process.getuid?.() === 0;

async function withBackend(
  t: TestContext,
  backend: NonNullable<ForwardInput['backend']>,
  extra: { supervision?: object; targetPort?: number; health?: ForwardInput['health'] } = {},
): Promise<{ engine: Engine; port: number; backendOf: () => Promise<BackendStatus> }> {
  const { engine } = await startEngine(t, { supervision: { ...fast, ...extra.supervision } });
  const port = await freePort();
  await engine.call('add', {
    forward: {
      id: 'svc',
      listen: { port },
      target: { host: '127.0.0.1', port: extra.targetPort ?? (await freePort()) },
      backend,
      // Off unless asked for: most of these backends serve nothing, and supervision is what they test. With
      // a check, a backend is running only once its target answers (test/engine/health.test.ts).
      health: extra.health ?? { check: 'off' },
    },
  });
  const backendOf = async () => {
    const status = (await engine.call('status', {})).forwards[0];
    assert.ok(status?.backend, 'the forward reports its backend');
    return status.backend;
  };
  return { engine, port, backendOf };
}

const notes = async (engine: Engine) =>
  (await engine.call('logs', { id: 'svc' })).lines.filter((l) => l.stream === 'berth').map((l) => l.text);

test('an exit code is reported and, with restart "never", the backend stays exited', async (t) => {
  const { backendOf } = await withBackend(t, { command: ['sh', '-c', 'exit 7'], restart: 'never' });
  await until(async () => (await backendOf()).state === 'exited', 'the exit');
  const backend = await backendOf();
  assert.equal(backend.exitCode, 7);
  assert.equal(backend.signal, null);
  assert.equal(backend.restarts, 0);
  assert.equal(backend.pid, null);
});

test('a death by signal is reported with the signal name', async (t) => {
  const { backendOf } = await withBackend(t, { command: ['sh', '-c', 'kill -KILL $$'], restart: 'never' });
  await until(async () => (await backendOf()).state === 'exited', 'the exit');
  assert.equal((await backendOf()).signal, 'SIGKILL');
  assert.equal((await backendOf()).exitCode, null);
});

test('a missing binary is a failed backend with the reason, not a crash', async (t) => {
  const { engine, backendOf } = await withBackend(t, { command: ['/nonexistent/berth-no-such-program'] });
  await until(async () => (await backendOf()).state === 'failed', 'the failure');
  assert.match((await backendOf()).reason ?? '', /"\/nonexistent\/berth-no-such-program" was not found/);
  assert.equal((await engine.call('status', {})).forwards[0]?.state, 'listening', 'the listener stays up');
});

test('restart "on-failure" restarts a crash with doubling backoff until the crash-loop limit', async (t) => {
  const { engine, backendOf } = await withBackend(t, {
    command: ['sh', '-c', 'exit 3'],
    restart: 'on-failure',
  });
  await until(async () => (await backendOf()).state === 'failed', 'the crash loop to end', 15_000);
  const backend = await backendOf();
  assert.equal(backend.restarts, fast.crashLoopLimit - 1);
  assert.equal(backend.exitCode, 3);
  assert.match(backend.reason ?? '', /Crashed 6 times in a row \(last: exit code 3\); not restarting/);
  // The order of delays: 10, 20, 40 and then capped at 40 ms.
  const delays = (await notes(engine))
    .flatMap((n) => /^restarting in (\d+) ms/.exec(n)?.[1] ?? [])
    .map(Number);
  assert.deepEqual(delays, [10, 20, 40, 40, 40]);
});

test('restart "on-failure" leaves a clean exit alone; "always" restarts it', async (t) => {
  const clean = await withBackend(t, { command: ['true'], restart: 'on-failure' });
  await until(async () => (await clean.backendOf()).state === 'exited', 'the clean exit');
  assert.equal((await clean.backendOf()).restarts, 0);

  const always = await withBackend(t, { command: ['true'], restart: 'always' });
  await until(async () => (await always.backendOf()).restarts >= 3, 'three restarts');
  // A clean exit is not a failure: "always" never reaches the crash-loop limit with it.
  assert.notEqual((await always.backendOf()).state, 'failed');
});

test('restart "never" does not restart a crash', async (t) => {
  const { backendOf } = await withBackend(t, { command: ['false'], restart: 'never' });
  await until(async () => (await backendOf()).state === 'exited', 'the exit');
  await new Promise((resolve) => setTimeout(resolve, 100)); // longer than any backoff of this policy
  assert.equal((await backendOf()).restarts, 0);
  assert.equal((await backendOf()).state, 'exited');
});

test('logs keep both streams, each in order, in a bounded buffer', async (t) => {
  const script = 'for i in $(seq 1 50); do echo "out $i"; echo "err $i" >&2; done';
  const whole = await withBackend(t, { command: ['sh', '-c', script], restart: 'never' });
  await until(async () => (await whole.backendOf()).state === 'exited', 'the exit');
  const { lines } = await whole.engine.call('logs', { id: 'svc' });
  const numbers = (stream: string) =>
    lines.filter((l) => l.stream === stream).map((l) => Number(l.text.split(' ')[1]));
  const oneToFifty = Array.from({ length: 50 }, (_, i) => i + 1);
  assert.deepEqual(numbers('stdout'), oneToFifty);
  assert.deepEqual(numbers('stderr'), oneToFifty);
  assert.ok(lines.every((l) => !Number.isNaN(Date.parse(l.time))));
  assert.deepEqual((await whole.engine.call('logs', { id: 'svc', limit: 2 })).lines, lines.slice(-2));

  const bounded = await withBackend(
    t,
    { command: ['sh', '-c', script], restart: 'never' },
    { supervision: { logLines: 30 } },
  );
  await until(async () => (await bounded.backendOf()).state === 'exited', 'the exit');
  const kept = (await bounded.engine.call('logs', { id: 'svc' })).lines;
  assert.equal(kept.length, 30, 'only the last 30 lines are kept');
  assert.equal(kept.at(-1)?.text, 'exited with code 0', 'the newest line is last');
});

test('argv and env arrive exactly as configured: no shell ever sees them', async (t) => {
  const args = [';id', '$(id)', '`id`', 'a b', '*', '"quoted"', "it's"];
  const { engine, backendOf } = await withBackend(t, {
    command: [
      'python3',
      '-c',
      'import json,os,sys; print(json.dumps([sys.argv[1:], os.environ["BERTH_T"]]))',
      ...args,
    ],
    env: { BERTH_T: '$(id) && `id`' },
    restart: 'never',
  });
  await until(async () => (await backendOf()).state === 'exited', 'the exit');
  const printed = (await engine.call('logs', { id: 'svc' })).lines.find((l) => l.stream === 'stdout');
  assert.deepEqual(JSON.parse(printed?.text ?? 'null'), [args, '$(id) && `id`']);
});

test('a client that connects while the backend is starting is served once it is up', async (t) => {
  const targetPort = await freePort();
  const server = `setTimeout(() => require('net').createServer((s) => s.pipe(s)).listen(${targetPort}, '127.0.0.1'), 700)`;
  const { port, backendOf } = await withBackend(
    t,
    { command: [process.execPath, '-e', server] },
    { targetPort, health: { check: 'tcp' } },
  );
  const client = await connect(port); // the backend is not listening yet
  assert.equal((await backendOf()).state, 'starting', 'not running before its target answers');
  const reply = readAll(client);
  client.end('patience');
  assert.equal((await reply).toString(), 'patience');
  await until(async () => (await backendOf()).state === 'running', 'readiness: the target answers');
});

test('fdCheck is clean for a normal backend', async (t) => {
  const { backendOf } = await withBackend(
    t,
    { command: ['sleep', '300'] },
    { supervision: { fdCheckIntervalMs: 50 } },
  );
  await until(async () => (await backendOf()).fdCheck !== 'unknown', 'the fd check');
  assert.equal((await backendOf()).fdCheck, 'clean');
});

test('fdCheck says "leak" when a backend holds one of Berth\'s listening sockets', async (t) => {
  if (!isRoot) return t.skip('needs root: the leaky backend copies the listener with pidfd_getfd(2)');
  const script = new URL('../fixtures/backend/steal-listener.py', import.meta.url).pathname;
  const { engine } = await startEngine(t, { supervision: { ...fast, fdCheckIntervalMs: 50 } });
  const port = await freePort();
  await engine.call('add', {
    forward: {
      id: 'svc',
      listen: { port },
      target: { host: '127.0.0.1', port: 1 },
      backend: { command: ['python3', script, String(port)] },
    },
  });
  const backendOf = async () => (await engine.call('status', {})).forwards[0]?.backend;
  await until(async () => (await backendOf())?.fdCheck === 'leak', 'the leak to be seen');
  assert.ok((await notes(engine)).some((n) => /holds one of Berth's listening sockets/.test(n)));
});

/** Adds a forward whose backend is a small process tree: sh and two sleeps, in one process group. */
async function addTree(berthd: Instance): Promise<void> {
  const added = await berthd.cli(
    'add',
    'tree',
    '--listen',
    String(await freePort()),
    '--target',
    '1',
    '--',
    'sh',
    '-c',
    'sleep 300 & sleep 300',
  );
  assert.equal(added.code, 0, added.stderr);
}

test('no orphans: SIGTERM to berth serve stops the whole process group of every backend', async (t) => {
  const berthd = await serve(t);
  await addTree(berthd);
  let pid = 0;
  await until(async () => {
    const status = JSON.parse((await berthd.cli('status', '--json')).stdout) as {
      forwards: { backend?: BackendStatus }[];
    };
    pid = status.forwards[0]?.backend?.pid ?? 0;
    return pid > 0 && (await processGroup(pid)).length >= 3; // sh and its two sleeps
  }, 'the backend tree');
  berthd.child.kill('SIGTERM');
  await new Promise((resolve) => berthd.child.once('exit', resolve));
  assert.deepEqual(await processGroup(pid), [], 'nothing of the group survives');
});

test('no orphans: after SIGKILL, the next start stops what the killed Berth left and says so', async (t) => {
  const first = await serve(t);
  await addTree(first);
  let pid = 0;
  await until(async () => {
    const records = await readFile(`${first.dir}/run/backends.json`, 'utf8').catch(() => '[]');
    pid = (JSON.parse(records) as { pid: number }[])[0]?.pid ?? 0;
    return pid > 0 && (await processGroup(pid)).length >= 3;
  }, 'the backend to be recorded');
  first.child.kill('SIGKILL');
  await new Promise((resolve) => first.child.once('exit', resolve));
  const left = await processGroup(pid);
  onCleanup(t, () =>
    left.forEach((p) => {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }),
  );
  assert.ok(left.length >= 2, 'SIGKILL left the backend running (the situation under test)');

  const second = await serve(t, first.dir);
  assert.match(
    second.output(),
    new RegExp(`Stopped the backend of "tree" \\(pid ${pid}, .*\\) that a previous Berth left running`),
  );
  await until(async () => (await processGroup(pid)).length === 0, 'the orphaned group to be gone');
  // ...and the forward itself starts again with a fresh backend.
  await until(async () => {
    const status = JSON.parse((await second.cli('status', '--json')).stdout) as {
      forwards: { backend?: BackendStatus }[];
    };
    // Its target never answers, so it stays starting (readiness); what matters is a new process.
    const backend = status.forwards[0]?.backend;
    return backend?.state === 'starting' && backend.pid !== null && backend.pid !== pid;
  }, 'the new backend');
});

test('no timer outlives its backend, even one that dies before its first fd check', async (t) => {
  // Guards a leak: an interval set after the process had already exited kept Node alive forever.
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const before = timers();
  const { engine, dir } = await startEngine(t, { supervision: { ...fast, fdCheckIntervalMs: 50 } });
  for (const [i, command] of [['sh', '-c', 'kill -KILL $$'], ['true'], ['sleep', '300']].entries()) {
    await engine.call('add', {
      forward: {
        id: `b${i}`,
        listen: { port: await freePort() },
        target: { host: '127.0.0.1', port: 1 },
        backend: { command, restart: 'never' },
        health: { check: 'off' }, // running as soon as spawned: the health checks' timers have their own test
      },
    });
  }
  await until(async () => {
    const states = (await engine.call('status', {})).forwards.map((f) => f.backend?.state);
    return states.join() === 'exited,exited,running';
  }, 'the backends to settle');
  await engine.close();
  await new Promise((resolve) => setTimeout(resolve, 100)); // past any fd check still in flight
  assert.equal(timers(), before, `timers left after close (engine in ${dir})`);
});

test('a healthy run resets the backoff and the crash count', async (t) => {
  // Each run lasts longer than healthyAfterMs, so every crash is the first in a row: never `failed`.
  const { engine, backendOf } = await withBackend(
    t,
    { command: ['sh', '-c', 'sleep 0.15; exit 1'], restart: 'on-failure' },
    { supervision: { healthyAfterMs: 50, crashLoopLimit: 2 } },
  );
  await until(async () => (await backendOf()).restarts >= 3, 'three restarts', 15_000);
  assert.notEqual((await backendOf()).state, 'failed');
  const delays = (await notes(engine))
    .flatMap((n) => /^restarting in (\d+) ms/.exec(n)?.[1] ?? [])
    .map(Number);
  assert.ok(delays.length >= 3);
  assert.ok(
    delays.every((d) => d === fast.backoffBaseMs),
    `delays ${delays.join(', ')}`,
  );
});
