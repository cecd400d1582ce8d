/**
 * Issue 19, item 4 ("any local user can starve Berth of fds"): with Berth at `ulimit -n 1024`, another user
 * (nobody) opening 3,000 idle connections to the UI port must leave the forwards and `berth status` working.
 * Before the fix the UI server accepted every one and held it until Node's header timeout, so accept() on
 * the forwards and the control socket failed with EMFILE for as long as the flood lasted.
 */
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { serve } from '../support/berth-process.js';
import { connect, echo, freePort, onCleanup, readAll, tcpServer } from '../support/index.js';

const run = promisify(execFile);
const FLOODER = new URL('../fixtures/web/idle-flood.py', import.meta.url).pathname;
const NOBODY = '65534';
const FLOOD = 3000;
const BERTH_FDS = 1024;
// The UI server's cap on connections without a valid token or cookie (app/web/server.ts).
const UNAUTHENTICATED_CAP = 32;

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux: /proc, prlimit and setpriv';
  if (process.getuid?.() !== 0) return 'needs root: the flood comes from another user (nobody, via setpriv)';
  return undefined;
}

const openFds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

/** Echoes through the forward on `port`: the reply, or the error that ended it, within `limitMs`. */
async function echoThrough(port: number, limitMs = 10_000): Promise<string> {
  const attempt = (async () => {
    const socket = await connect(port);
    const reply = readAll(socket);
    socket.end('ping');
    return (await reply).toString();
  })();
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer within ${limitMs} ms`), limitMs);
  });
  try {
    return await Promise.race([attempt.catch((err: Error) => `failed: ${err.message}`), limit]);
  } finally {
    clearTimeout(timer);
  }
}

test(
  'a flood of idle connections to the UI from another user leaves forwards and berth status working',
  { skip: skipReason() },
  async (t) => {
    const target = await tcpServer(t, echo);
    const berthd = await serve(t, { ui: true });
    const pid = berthd.child.pid as number;
    // As if started under `ulimit -n 1024`: soft and hard, so nothing in Berth can raise it again.
    await run('prlimit', ['--pid', String(pid), `--nofile=${BERTH_FDS}:${BERTH_FDS}`]);
    const limits = await readFile(`/proc/${pid}/limits`, 'utf8');
    assert.match(limits, new RegExp(`Max open files\\s+${BERTH_FDS}\\s+${BERTH_FDS}`));

    const port = await freePort();
    const added = await berthd.cli('add', 'echo', '--listen', String(port), '--target', String(target.port));
    assert.equal(added.code, 0, added.stderr);
    assert.equal(await echoThrough(port), 'ping', 'the forward works before the flood');
    const baseline = openFds(pid);

    const uiPort = new URL(berthd.url).port;
    const flooder = spawn(
      'prlimit',
      [
        `--nofile=${FLOOD + 1000}:${FLOOD + 1000}`,
        'setpriv',
        `--reuid=${NOBODY}`,
        `--regid=${NOBODY}`,
        '--clear-groups',
        '/usr/bin/python3',
        '-c',
        await readFile(FLOODER, 'utf8'),
        uiPort,
        String(FLOOD),
        '3', // seconds for the connects to settle
        '60', // seconds to hold them at most
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    onCleanup(t, () => {
      if (flooder.exitCode === null && flooder.signalCode === null) flooder.kill('SIGKILL');
    });
    // Berth's fds, sampled while the flood runs.
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, openFds(pid))), 20);
    onCleanup(t, () => clearInterval(sampler));
    const [line] = (await once(flooder.stdout, 'data')) as [Buffer];
    const flood = JSON.parse(line.toString()) as { connected: number; refused: number; open: number };
    assert.ok(flood.connected > BERTH_FDS, `the flood got through: ${JSON.stringify(flood)}`);

    // While the flooder still holds its sockets:
    const echoed = await echoThrough(port);
    const status = await berthd.cli('status', '--json');
    clearInterval(sampler);
    assert.deepEqual(
      { echoed, status: status.code, stderr: status.stderr },
      { echoed: 'ping', status: 0, stderr: '' },
      `the forward and berth status work during the flood (${JSON.stringify(flood)})`,
    );
    assert.match(status.stdout, /"id": ?"echo"/);
    assert.ok(
      most <= baseline + UNAUTHENTICATED_CAP + 16,
      `Berth held at most ${most} fds (baseline ${baseline}, cap ${UNAUTHENTICATED_CAP})`,
    );
    flooder.stdin.end();
  },
);
