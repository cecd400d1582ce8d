/**
 * Health and healing (docs/forwarding.md, "Health checks"): real targets that go down, answer 503 or hang,
 * a real python3 http.server backend stopped with SIGSTOP, a real squatter on the listen port.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import test, { type TestContext } from 'node:test';
import type { ForwardStatus } from '../../app/api/contract.js';
import type { ForwardInput } from '../../app/config/schema.js';
import type { Engine } from '../../app/engine/engine.js';
import { connect, freePort, onCleanup, readAll, startEngine, tcpServer, until } from '../support/index.js';

const fast = { backoffBaseMs: 100, backoffMaxMs: 400, graceMs: 500, healthyAfterMs: 60_000 };
const quick = { intervalS: 1, timeoutMs: 500, failures: 2 } as const;

async function add(engine: Engine, forward: Omit<ForwardInput, 'listen'> & { port?: number }) {
  const { port, ...rest } = forward;
  const listen = { port: port ?? (await freePort()) };
  return { status: await engine.call('add', { forward: { ...rest, listen } }), port: listen.port };
}

const statusOf = async (engine: Engine, id: string): Promise<ForwardStatus> => {
  const status = (await engine.call('status', {})).forwards.find((f) => f.id === id);
  assert.ok(status, `forward ${id}`);
  return status;
};

/** Notices the engine emits, as `berth serve` prints them. */
function notices(engine: Engine): string[] {
  const seen: string[] = [];
  const stop = engine.subscribe((event) => {
    if (event.type === 'notice') seen.push(event.message);
  });
  void stop;
  return seen;
}

/** A child process run for the test and killed (SIGKILL) when it ends. */
function child(t: TestContext, command: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const proc = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  onCleanup(t, () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  return proc;
}

async function squat(t: TestContext, port: number, env: NodeJS.ProcessEnv = {}): Promise<ChildProcess> {
  const script = new URL('../fixtures/backend/squat.py', import.meta.url).pathname;
  const proc = child(t, 'python3', [script, String(port)], env);
  await once(proc.stdout!, 'data');
  return proc;
}

test('a target that goes down is unhealthy after `failures` checks, healthy again when back', async (t) => {
  const { engine } = await startEngine(t);
  const events = notices(engine);
  const target = await tcpServer(t, (s) => s.end());
  const { status } = await add(engine, {
    id: 'web',
    target: { host: '127.0.0.1', port: target.port },
    health: { check: 'tcp', ...quick },
  });
  assert.equal(status.health.state, 'unknown', 'not checked yet as it starts');
  await until(async () => (await statusOf(engine, 'web')).health.state === 'healthy', 'the first check');

  await new Promise((resolve) => target.server.close(resolve));
  const down = await until(async () => {
    const s = await statusOf(engine, 'web');
    return s.health.state === 'unhealthy' ? s : undefined;
  }, 'unhealthy');
  // Exactly `failures` checks in a row turned it, with the reason in words.
  assert.equal(down.health.failures, 2);
  assert.equal(down.health.message, `nothing is listening on 127.0.0.1:${target.port}`);
  assert.equal(down.state, 'listening', 'the listener is not what failed');
  assert.ok(events.some((m) => m === `web is unhealthy: nothing is listening on 127.0.0.1:${target.port}.`));

  // Back on the same port: one good check is enough.
  const again = net.createServer((s) => s.end()).listen(target.port, '127.0.0.1');
  onCleanup(t, () => new Promise((resolve) => again.close(resolve)));
  await until(async () => (await statusOf(engine, 'web')).health.state === 'healthy', 'healthy again');
  assert.ok(events.some((m) => /^web is healthy again: 127\.0\.0\.1:\d+ answers\.$/.test(m)));
});

test('an HTTP check: a 503 is unhealthy with its status, a 404 is healthy', async (t) => {
  const { engine } = await startEngine(t);
  let code = 503;
  const server = http.createServer((req, res) => {
    res.statusCode = req.url === '/healthz' ? code : 200;
    res.end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  onCleanup(t, () => new Promise((resolve) => server.close(resolve)));
  const port = (server.address() as net.AddressInfo).port;
  await add(engine, {
    id: 'api',
    target: { host: '127.0.0.1', port },
    health: { check: 'http', path: '/healthz', ...quick },
  });
  const sick = await until(async () => {
    const s = await statusOf(engine, 'api');
    return s.health.state === 'unhealthy' ? s : undefined;
  }, 'unhealthy on 503');
  assert.equal(sick.health.message, 'HTTP 503 from /healthz');
  code = 404; // below 500: the service answers, it just has no such page
  await until(async () => (await statusOf(engine, 'api')).health.state === 'healthy', 'healthy on 404');
});

test('a target that accepts but never answers fails by the timeout, in words', async (t) => {
  const { engine } = await startEngine(t);
  const held: net.Socket[] = [];
  const target = await tcpServer(t, (s) => held.push(s)); // reads nothing, answers nothing
  onCleanup(t, () => held.forEach((s) => s.destroy()));
  await add(engine, {
    id: 'hung',
    target: { host: '127.0.0.1', port: target.port },
    health: { check: 'http', path: '/', intervalS: 1, timeoutMs: 300, failures: 1 },
  });
  const hung = await until(async () => {
    const s = await statusOf(engine, 'hung');
    return s.health.state === 'unhealthy' ? s : undefined;
  }, 'unhealthy by timeout');
  assert.equal(hung.health.message, `no answer from 127.0.0.1:${target.port} in 300 ms`);
});

test('a refused connection through the forward checks at once, not at the next interval', async (t) => {
  const { engine } = await startEngine(t);
  const target = await tcpServer(t, (s) => s.end());
  const { port } = await add(engine, {
    id: 'web',
    target: { host: '127.0.0.1', port: target.port },
    // One check a minute: only a passive signal can make it unhealthy within this test.
    health: { check: 'tcp', intervalS: 60, timeoutMs: 500, failures: 1 },
  });
  await until(async () => (await statusOf(engine, 'web')).health.state === 'healthy', 'the first check');
  await new Promise((resolve) => target.server.close(resolve));
  const client = await connect(port);
  await readAll(client).catch(() => undefined); // refused behind the forward: closed
  const s = await until(async () => {
    const status = await statusOf(engine, 'web');
    return status.health.state === 'unhealthy' ? status : undefined;
  }, 'unhealthy from the refusal');
  assert.match(s.health.message ?? '', /nothing is listening/);
});

test('a stopped (SIGSTOP) backend is restarted: new pid, healthy, and serves again', async (t) => {
  const { engine } = await startEngine(t, { supervision: fast });
  const targetPort = await freePort();
  const { port } = await add(engine, {
    id: 'site',
    target: { host: '127.0.0.1', port: targetPort },
    backend: { command: ['python3', '-m', 'http.server', String(targetPort), '--bind', '127.0.0.1'] },
    health: { check: 'http', path: '/', ...quick },
  });
  const first = await until(
    async () => {
      const s = await statusOf(engine, 'site');
      return s.backend?.state === 'running' && s.health.state === 'healthy' ? s.backend.pid : undefined;
    },
    'the backend to be ready',
    15_000,
  );
  assert.ok(first);

  process.kill(first, 'SIGSTOP'); // hung: alive, listening, answering nothing
  const second = await until(
    async () => {
      const s = await statusOf(engine, 'site');
      const pid = s.backend?.pid;
      return pid && pid !== first && s.backend?.state === 'running' && s.health.state === 'healthy'
        ? pid
        : undefined;
    },
    'a new, healthy backend',
    20_000,
  );
  assert.notEqual(second, first);
  assert.throws(() => process.kill(first, 0), { code: 'ESRCH' }, 'the stopped process is gone');
  const status = await statusOf(engine, 'site');
  assert.equal(status.backend?.restarts, 1, 'counted as a restart');
  const logs = (await engine.call('logs', { id: 'site' })).lines.map((l) => l.text);
  assert.ok(
    logs.some((l) => /^not answering \(no answer from 127\.0\.0\.1:\d+ in 500 ms\): restarting it$/.test(l)),
  );

  const client = await connect(port);
  const reply = readAll(client);
  client.end('GET / HTTP/1.0\r\n\r\n');
  assert.match((await reply).toString(), /^HTTP\/1\.0 200 /);
});

test('after a wake-up a failing backend is restarted at once, not after `failures` checks', async (t) => {
  const { engine } = await startEngine(t, { supervision: fast });
  const targetPort = await freePort();
  await add(engine, {
    id: 'site',
    target: { host: '127.0.0.1', port: targetPort },
    backend: { command: ['python3', '-m', 'http.server', String(targetPort), '--bind', '127.0.0.1'] },
    // A check a minute, three to fail: without the re-check nothing would happen for minutes.
    health: { check: 'http', path: '/', intervalS: 60, timeoutMs: 500, failures: 3 },
  });
  const first = await until(
    async () => {
      const s = await statusOf(engine, 'site');
      return s.backend?.state === 'running' ? s.backend.pid : undefined;
    },
    'the backend to be ready',
    15_000,
  );
  assert.ok(first);
  const events = notices(engine);
  process.kill(first, 'SIGSTOP');
  engine.recheck('the system resumed');
  assert.deepEqual(events, ['Re-checking every forward now: the system resumed.']);
  await until(
    async () => {
      const pid = (await statusOf(engine, 'site')).backend?.pid;
      return pid !== first && pid !== null && pid !== undefined;
    },
    'the backend restarted',
    15_000,
  );
});

test('a busy port names its holder and is taken by itself once the holder exits', async (t) => {
  const { engine } = await startEngine(t, { bindRetry: { baseMs: 200, maxMs: 1000 } });
  const target = await tcpServer(t, (s) => s.end('hello'));
  const port = await freePort();
  const squatter = await squat(t, port);
  const { status } = await add(engine, { id: 'web', port, target: { host: '127.0.0.1', port: target.port } });
  assert.equal(status.state, 'error');
  assert.equal(status.error?.code, 'EADDRINUSE');
  assert.equal(status.error?.holder?.pid, squatter.pid);
  assert.match(status.error?.holder?.command ?? '', /python3 .*squat\.py \d+$/);
  assert.equal(status.error?.retrying, true);
  assert.equal(status.error?.holder?.leftover, undefined, 'not a backend of any Berth');
  assert.match(
    status.error?.message ?? '',
    new RegExp(
      `in use: it is held by \\S*python3 .*squat\\.py ${port} \\(pid ${squatter.pid}, user \\S+\\)\\. Berth takes the port by itself`,
    ),
  );

  squatter.kill('SIGTERM');
  await until(async () => (await statusOf(engine, 'web')).state === 'listening', 'the port taken');
  const client = await connect(port);
  assert.equal((await readAll(client)).toString(), 'hello');
});

test('a holder that is a backend an earlier Berth left running is said to be one, and can be stopped', async (t) => {
  const { engine } = await startEngine(t, { bindRetry: { baseMs: 60_000, maxMs: 60_000 } });
  const port = await freePort();
  const squatter = await squat(t, port, { BERTH_BACKEND_TREE: 'an-earlier-berth' });
  const { status } = await add(engine, { id: 'web', port, target: { host: '127.0.0.1', port: 1 } });
  assert.equal(status.error?.holder?.leftover, true);
  assert.match(status.error?.message ?? '', /held by a backend an earlier Berth left running/);
  const exited = once(squatter, 'exit');
  const after = await engine.call('stopLeftover', { id: 'web' });
  await exited;
  assert.equal(after.state, 'listening', 'the port is taken at once, not at the next retry a minute away');
});

test('stopLeftover refuses a holder that is not a Berth backend', async (t) => {
  const { engine } = await startEngine(t, { bindRetry: { baseMs: 60_000, maxMs: 60_000 } });
  const port = await freePort();
  const squatter = await squat(t, port);
  await add(engine, { id: 'web', port, target: { host: '127.0.0.1', port: 1 } });
  await assert.rejects(engine.call('stopLeftover', { id: 'web' }), { code: 'ENOTLEFTOVER' });
  assert.equal(squatter.exitCode, null, 'still running');
});

test('checks are bounded, and after close() no timer or socket of theirs is left', async (t) => {
  const resources = () => {
    const counts = new Map<string, number>();
    for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
    return { timers: counts.get('Timeout') ?? 0, sockets: counts.get('TCPSocketWrap') ?? 0 };
  };
  // Answers nothing; closes its side once the check's side is closed, so the count below sees it go.
  let open = 0;
  const hung = await tcpServer(t, (socket) => {
    open += 1;
    socket.resume(); // read the request (never answered), or the FIN behind it is never seen
    socket.on('end', () => socket.end());
    socket.once('close', () => (open -= 1));
  });
  const before = resources();
  const { engine } = await startEngine(t);
  for (let i = 0; i < 5; i += 1) {
    await add(engine, {
      id: `f${i}`,
      target: { host: '127.0.0.1', port: hung.port },
      // A long timeout: the checks are in flight when close() comes.
      health: { check: 'http', path: '/', intervalS: 30, timeoutMs: 20_000, failures: 1 },
    });
  }
  await until(() => open === 5, 'every check connected and waiting');
  const during = resources();
  assert.ok(during.sockets >= before.sockets + 5, 'the checks hold sockets while they wait');
  await engine.close();
  await until(() => open === 0, 'the checks in flight to close their sockets');
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(resources(), before);
});

test('invalid health settings are refused with their JSON paths', async (t) => {
  const { engine } = await startEngine(t);
  const cases: [ForwardInput['health'], string, RegExp][] = [
    [{ check: 'http', path: 'healthz' }, 'forward.health.path', /must start with "\/"/],
    [{ intervalS: 2, timeoutMs: 2000 }, 'forward.health.timeoutMs', /must be below the interval \(2000 ms\)/],
    [{ failures: 0 }, 'forward.health.failures', /at least 1/],
    [{ check: 'ping' as 'tcp' }, 'forward.health.check', /must be "tcp", "http" or "off"/],
    [{ path: '/x' }, 'forward.health.path', /only with "check": "http"/],
  ];
  for (const [health, path, message] of cases) {
    const forward = { id: 'x', listen: { port: 8080 }, target: { host: '127.0.0.1', port: 1 }, health };
    await assert.rejects(
      engine.call('add', { forward }),
      (err: { code?: string; problems?: { path: string; message: string }[] }) => {
        assert.equal(err.code, 'EINVAL', JSON.stringify(health));
        const problem = err.problems?.find((p) => p.path === path);
        assert.ok(problem, `${JSON.stringify(health)}: ${JSON.stringify(err.problems)}`);
        assert.match(problem.message, message);
        return true;
      },
    );
  }
  await assert.rejects(
    engine.call('add', {
      forward: {
        id: 'u',
        protocol: 'udp',
        listen: { port: 5353 },
        target: { host: '127.0.0.1', port: 53 },
        health: { check: 'tcp' },
      },
    }),
    (err: { problems?: { path: string }[] }) => err.problems?.[0]?.path === 'forward.health.check',
  );
});
