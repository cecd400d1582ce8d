/**
 * Issue 19, item 3 ("backends that daemonise escape"): a backend that forks, calls setsid and forks again
 * leaves a daemon outside its process group and session. Stopping process groups missed it: it survived
 * SIGTERM of Berth and the next start's clean-up after a SIGKILL. These run a real `berth serve` with a real
 * double-forking backend (test/fixtures/backend/daemonize.py).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { BackendStatus } from '../../app/api/contract.js';
import { addonPath } from '../../app/native/addon.js';
import { serve, type Instance } from '../support/berth-process.js';
import { canBind, freePort, onCleanup, until } from '../support/index.js';

const DAEMONIZE = new URL('../fixtures/backend/daemonize.py', import.meta.url).pathname;
const onLinux = process.platform === 'linux' ? undefined : 'needs Linux: /proc and setsid';

/** One process as /proc/PID/stat shows it. */
interface Proc {
  state: string;
  ppid: number;
  sid: number;
  startTime: string;
}

async function proc(pid: number): Promise<Proc | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: f[0]!, ppid: Number(f[1]), sid: Number(f[3]), startTime: f[19]! };
  } catch {
    return undefined;
  }
}

/** The daemon a backend left: its pid, session and start time (which tell it from a later owner of the pid). */
interface Daemon {
  pid: number;
  sid: number;
  startTime: string;
}

/** True while the daemon runs: same start time, not a zombie. */
async function running(daemon: Daemon): Promise<boolean> {
  const now = await proc(daemon.pid);
  return now !== undefined && now.startTime === daemon.startTime && now.state !== 'Z' && now.state !== 'X';
}

async function backendPid(berthd: Instance, id: string): Promise<number> {
  const status = JSON.parse((await berthd.cli('status', '--json')).stdout) as {
    forwards: { id: string; backend?: BackendStatus }[];
  };
  return status.forwards.find((f) => f.id === id)?.backend?.pid ?? 0;
}

/**
 * Adds forward `id` whose backend double-forks a daemon, and returns the daemon once it has written its pid.
 * The daemon is SIGKILLed when the test ends if it still runs (by pid, checked by start time).
 */
async function addDaemon(
  t: TestContext,
  berthd: Instance,
  id: string,
  leader: 'stay' | 'exit',
  port?: number,
): Promise<Daemon> {
  const pidfile = join(berthd.dir, `${id}.pid`);
  const argv = ['python3', DAEMONIZE, pidfile, leader, ...(port === undefined ? [] : [String(port)])];
  const extra = leader === 'exit' ? ['--restart', 'never'] : [];
  const listen = String(await freePort());
  const added = await berthd.cli('add', id, '--listen', listen, '--target', '1', ...extra, '--', ...argv);
  assert.equal(added.code, 0, added.stderr);
  const text = await until(() => readFile(pidfile, 'utf8'), `the daemon of ${id} to write its pid`);
  const [pid, sid] = text.split(' ').map(Number) as [number, number];
  const startTime = (await proc(pid))?.startTime ?? '';
  const daemon = { pid, sid, startTime };
  onCleanup(t, async () => {
    if (await running(daemon)) process.kill(pid, 'SIGKILL');
    // A Berth started again on the same folder runs the backend again, and that one's daemon writes here.
    const [later] = (await readFile(pidfile, 'utf8').catch(() => '')).split(' ').map(Number);
    const cmdline = later ? await readFile(`/proc/${later}/cmdline`, 'utf8').catch(() => '') : '';
    if (later && cmdline.includes(pidfile)) process.kill(later, 'SIGKILL');
  });
  return daemon;
}

test(
  'SIGTERM to berth serve stops a double-forked daemon, whether its backend still runs or not',
  {
    skip: onLinux,
  },
  async (t) => {
    const berthd = await serve(t);
    const port = await freePort();
    const stays = await addDaemon(t, berthd, 'stays', 'stay');
    const exits = await addDaemon(t, berthd, 'exits', 'exit', port);
    const leader = await until(() => backendPid(berthd, 'stays'), 'the backend that stays');
    assert.notEqual(stays.sid, (await proc(leader))?.sid, "the daemon left its backend's session");
    assert.ok(await running(exits), 'the daemon of a backend that exited at once runs on');
    assert.equal(await canBind(port), false, 'its daemon holds the port');

    assert.equal(await berthd.stop(), 0);
    const left = [];
    for (const daemon of [stays, exits]) if (await running(daemon)) left.push(daemon.pid);
    assert.deepEqual(left, [], 'no daemon outlives Berth');
    assert.equal(await canBind(port), true, "the daemon's port is free again");
  },
);

test(
  'after SIGKILL, the next start stops the daemon the killed Berth left and says so',
  {
    skip: onLinux,
  },
  async (t) => {
    const first = await serve(t);
    const daemon = await addDaemon(t, first, 'svc', 'stay');
    first.child.kill('SIGKILL');
    await new Promise((resolve) => first.child.once('exit', resolve));
    assert.ok(await running(daemon), 'SIGKILL left the daemon running (the situation under test)');

    const second = await serve(t, first.dir);
    await until(async () => !(await running(daemon)), 'the daemon to be stopped', 15_000);
    assert.match(second.output(), new RegExp(`"svc".*pid ${daemon.pid}\\b`));
  },
);

test(
  'a daemon is recorded with its start time and session, so a later Berth can tell it is the same',
  {
    skip: onLinux,
  },
  async (t) => {
    const berthd = await serve(t);
    const daemon = await addDaemon(t, berthd, 'svc', 'stay');
    await until(async () => {
      const records = JSON.parse(await readFile(join(berthd.dir, 'run', 'backends.json'), 'utf8')) as {
        forwardId: string;
        daemons?: { pid: number; startTime: string; sid: number }[];
      }[];
      const recorded = records.find((r) => r.forwardId === 'svc')?.daemons ?? [];
      return recorded.some(
        (d) => d.pid === daemon.pid && d.startTime === daemon.startTime && d.sid === daemon.sid,
      );
    }, 'the daemon in the records file');
  },
);

test("disabling a forward stops its backend's daemon too", { skip: onLinux }, async (t) => {
  const berthd = await serve(t);
  const daemon = await addDaemon(t, berthd, 'svc', 'exit');
  const disabled = await berthd.cli('disable', 'svc');
  assert.equal(disabled.code, 0, disabled.stderr);
  assert.equal(await running(daemon), false, 'the daemon stopped with its backend');
});

test(
  'Berth adopts a daemon (child subreaper) and reaps it when it exits: no zombie is left',
  {
    skip: onLinux ?? (addonPath() ? undefined : 'needs the native addon (npm run build:native) for prctl'),
  },
  async (t) => {
    const berthd = await serve(t);
    const daemon = await addDaemon(t, berthd, 'svc', 'stay');
    const berthPid = berthd.child.pid as number;
    await until(
      async () => (await proc(daemon.pid))?.ppid === berthPid,
      "Berth to become the daemon's parent",
    );
    process.kill(daemon.pid, 'SIGTERM');
    await until(async () => (await proc(daemon.pid)) === undefined, 'the exited daemon to be reaped', 15_000);
  },
);
