/**
 * The addon's process calls (native/src/process_napi.cc through app/native/process.ts), on this test's own
 * process: as a child subreaper it adopts an orphaned grandchild, and reapChild reaps that one pid and never
 * waits for "any child" (pid 0 or below), which would take the statuses libuv waits for.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { addonPath, loadBerthNative } from '../../app/native/addon.js';
import { reapChild, setChildSubreaper } from '../../app/native/process.js';
import { onCleanup, until } from '../support/index.js';

const skip =
  process.platform !== 'linux'
    ? 'needs Linux: PR_SET_CHILD_SUBREAPER'
    : addonPath()
      ? undefined
      : 'needs the native addon (npm run build:native)';

const ppidOf = async (pid: number) => {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat ? Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) : undefined;
};

test('reapChild refuses 0, negative and fractional pids, in TypeScript and in C++', { skip }, () => {
  const native = loadBerthNative();
  for (const pid of [0, -1, 1.5, Number.NaN, 2 ** 31]) {
    assert.throws(() => reapChild(native, pid), TypeError, String(pid));
    assert.throws(() => native.reapChild?.(pid), TypeError, String(pid));
  }
  assert.equal(reapChild(native, 1), false, 'init is not our child: nothing to reap');
});

test(
  'a subreaper adopts an orphaned grandchild and reaps it, and only it, when it exits',
  { skip },
  async (t) => {
    const native = loadBerthNative();
    assert.equal(setChildSubreaper(native), true);
    // The child forks a grandchild and exits; the grandchild sleeps (at most 60 s) until the test stops it.
    // (Not a wait on stdin: Node closes a child's stdin when the child exits.)
    const child = spawn(
      'python3',
      ['-c', 'import os,time\npid=os.fork()\nif pid:\n  print(pid,flush=True); os._exit(0)\ntime.sleep(60)'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const [line] = (await once(child.stdout, 'data')) as [Buffer];
    const grandchild = Number(line.toString().trim());
    onCleanup(t, async () => {
      if ((await ppidOf(grandchild)) === process.pid) process.kill(grandchild, 'SIGKILL');
      reapChild(native, grandchild);
    });
    await once(child, 'exit');
    await until(async () => (await ppidOf(grandchild)) === process.pid, 'the grandchild to be adopted');
    assert.equal(reapChild(native, grandchild), false, 'it still runs');

    process.kill(grandchild, 'SIGTERM');
    await until(async () => {
      const stat = await readFile(`/proc/${grandchild}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
    }, 'the grandchild to exit (a zombie until reaped)');
    assert.equal(reapChild(native, grandchild), true);
    assert.equal(await ppidOf(grandchild), undefined, 'reaped: gone from /proc');
    assert.equal(reapChild(native, grandchild), false, 'reaped once only');
  },
);
