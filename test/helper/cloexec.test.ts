/**
 * The seed's regression (docker/for-mac#5649, fixed in vpnkit PR #537): a listener received from the helper
 * without close-on-exec is inherited by every child spawned afterwards, which keeps the port bound after Berth
 * closes it. Here berth-helper runs as root and Berth (the real Engine and the real helper binder) as `nobody`;
 * Berth gets 127.0.0.1:<port below 1024>, serves traffic, spawns `sleep 300`, and then:
 *   - that child holds no socket of the listener (/proc/CHILD/fd, compared by socket inode);
 *   - after the forward is disabled, a fresh process binds the same port at once; re-enabling works again.
 * The negative twin leaves close-on-exec off (the test build of the addon) and must see the leak and the failed
 * re-bind, which proves the test can fail. Both run for TCP and UDP, on the Linux (MSG_CMSG_CLOEXEC) and the
 * macOS (fcntl after recvmsg) receive paths.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  helperAsRootSkip,
  NOBODY,
  randomPort,
  ROOT,
  socketInodes,
  startHelper,
  tempDir,
} from '../support/helper-harness.js';
import { EngineDriver } from '../support/engine-driver.js';

const DRIVER = join(ROOT, 'test', 'fixtures', 'helper', 'engine-as-nobody.ts');
const PORTS = { lo: 600, hi: 999 };

const skip = helperAsRootSkip(PORTS, 'reads /proc/PID/fd and uses setpriv');

/** `setpriv` prefix that runs a command as nobody:nogroup with no supplementary groups. */
const AS_NOBODY = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];

// Each test carries the skip (not the suite), so a run without root counts every one of them as skipped.
describe('close-on-exec regression: berth-helper as root, Berth as nobody', () => {
  for (const protocol of ['tcp', 'udp'] as const) {
    for (const receivePath of ['msg-cmsg-cloexec', 'fcntl'] as const) {
      test(
        `${protocol}, ${receivePath}: a spawned child holds no listener; the port rebinds at once after disable`,
        { skip },
        () => scenario(protocol, receivePath, false),
      );
      test(
        `${protocol}, ${receivePath}, close-on-exec deliberately off: the test sees the leak and the failed rebind`,
        { skip },
        () => scenario(protocol, receivePath, true),
      );
    }
  }
});

describe('a privileged port without berth-helper, Berth as nobody', () => {
  test(
    "the forward's error names the port, the socket tried and how to start the helper",
    { skip },
    async () => {
      const { dir, stateDir } = nobodyFolders();
      const socketPath = join(dir.path, 'no-helper-here.sock');
      const driver = new EngineDriver(AS_NOBODY.slice(1), {
        socketPath,
        stateDir,
        protocol: 'tcp',
        receivePath: 'msg-cmsg-cloexec',
        leaveCloexecOff: false,
      });
      try {
        const port = randomPort(PORTS.lo, PORTS.hi);
        const status = (await driver.send('add', port)) as ForwardStatus;
        assert.equal(status.state, 'error');
        assert.equal(status.error?.code, 'EHELPERUNAVAILABLE');
        const message = status.error?.message ?? '';
        assert.match(message, new RegExp(`TCP 127\\.0\\.0\\.1:${port} needs privileges`));
        assert.ok(message.includes(`no berth-helper answers at ${socketPath}`), message);
        assert.ok(
          message.includes(
            `sudo native/build/Release/berth-helper --socket ${socketPath} --allow-uid ${NOBODY}`,
          ),
          message,
        );
      } finally {
        await driver.close();
        dir.remove();
      }
    },
  );
});

/** A temp folder anyone may enter, holding `state`: Berth's private state folder, owned by nobody (0700). */
function nobodyFolders(): { dir: ReturnType<typeof tempDir>; stateDir: string } {
  const dir = tempDir();
  chmodSync(dir.path, 0o755);
  const stateDir = join(dir.path, 'state');
  mkdirSync(stateDir, { mode: 0o700 });
  chownSync(stateDir, NOBODY, NOBODY);
  return { dir, stateDir };
}

async function scenario(
  protocol: 'tcp' | 'udp',
  receivePath: 'msg-cmsg-cloexec' | 'fcntl',
  leaveCloexecOff: boolean,
): Promise<void> {
  const { dir, stateDir } = nobodyFolders();
  const socketPath = join(dir.path, 'helper.sock');
  const helper = await startHelper(socketPath, [
    '--socket-mode',
    '0660',
    '--socket-group',
    'nogroup',
    '--allow-uid',
    String(NOBODY),
    '--ports',
    `${PORTS.lo}-${PORTS.hi}`,
  ]);
  let driver: EngineDriver | undefined;
  let childPid: number | undefined;
  try {
    assertNobodyCanRead([
      DRIVER,
      join(ROOT, 'app', 'engine', 'engine.ts'),
      join(ROOT, 'native', 'build', 'Release', 'berth_native.node'),
      join(ROOT, 'node_modules', 'tsx', 'package.json'),
    ]);
    driver = new EngineDriver(AS_NOBODY.slice(1), {
      socketPath,
      stateDir,
      protocol,
      receivePath,
      leaveCloexecOff,
    });

    // A random privileged port; another suite may hold one, so try others on EADDRINUSE.
    let port = 0;
    let status: ForwardStatus | undefined;
    for (let attempt = 0; attempt < 20; attempt += 1) {
      port = randomPort(PORTS.lo, PORTS.hi);
      status = (await driver.send('add', port)) as ForwardStatus;
      if (status.error?.code !== 'EADDRINUSE') break;
    }
    assert.equal(status!.state, 'listening', JSON.stringify(status));
    assert.equal(status!.via, 'helper', 'nobody got the port from berth-helper');
    // The helper's fd went to the addon's relay (Linux), not to a libuv handle: only the echo target has one.
    assert.equal(await driver.send('handles'), 1, 'the forward runs on the native relay');
    const listener = listenerInode(protocol, port);
    assert.ok(listener, `no ${protocol} socket on 127.0.0.1:${port} in /proc/net`);

    await driver.send('traffic');
    // The engine's own supervised backend, started while the listener is open, reports the truth.
    const backend = (await driver.send('backend')) as { fdCheck: string; state: string };
    assert.equal(backend.state, 'running');
    assert.equal(backend.fdCheck, leaveCloexecOff ? 'leak' : 'clean', 'the backend fdCheck');
    childPid = ((await driver.send('spawn')) as { pid: number }).pid;
    const held = socketInodes(childPid);
    const rebindAfterDisable = async () => {
      const disabled = (await driver!.send('disable')) as ForwardStatus;
      assert.equal(disabled.state, 'stopped');
      return freshBind(protocol, port);
    };

    if (!leaveCloexecOff) {
      assert.ok(!held.has(listener), `the child ${childPid} inherited the listener (socket:[${listener}])`);
      assert.equal(held.size, 0, `the child holds sockets: ${[...held].join(', ')}`);
      assert.equal(await rebindAfterDisable(), 'ok', 'a fresh process binds the port at once after disable');
      const enabled = (await driver.send('enable')) as ForwardStatus;
      assert.equal(enabled.state, 'listening', JSON.stringify(enabled));
      assert.equal(enabled.via, 'helper');
      await driver.send('traffic');
    } else {
      assert.ok(
        held.has(listener),
        `the leak was not observed: child ${childPid} holds ${[...held].join(', ') || 'no socket'}`,
      );
      assert.equal(
        await rebindAfterDisable(),
        'EADDRINUSE',
        'the leaked listener keeps the port after disable',
      );
      await driver.send('kill');
      await waitGone(childPid);
      assert.equal(
        await freshBind(protocol, port),
        'ok',
        'the port frees once the child that held it is gone',
      );
      const enabled = (await driver.send('enable')) as ForwardStatus;
      assert.equal(enabled.state, 'listening', JSON.stringify(enabled));
    }
  } finally {
    if (childPid) killQuietly(childPid);
    await driver?.close();
    await helper.stop();
    dir.remove();
  }
}

interface ForwardStatus {
  state: string;
  via?: string;
  error: { code: string; message: string } | null;
}

// Fails (rather than skips) when nobody cannot read what it must run: as root in CI this is a broken setup.
function assertNobodyCanRead(files: string[]): void {
  const script = `for (const f of process.argv.slice(1)) require('fs').accessSync(f, require('fs').constants.R_OK)`;
  const result = spawnSync(AS_NOBODY[0]!, [...AS_NOBODY.slice(1), process.execPath, '-e', script, ...files], {
    encoding: 'utf8',
    cwd: '/',
  });
  assert.equal(
    result.status,
    0,
    `nobody cannot read the files the test runs (make the checkout world-readable): ${result.stderr}`,
  );
}

// The socket inode of whatever is bound to 127.0.0.1:port, from /proc/net/{tcp,udp} (TCP: the listener).
function listenerInode(protocol: 'tcp' | 'udp', port: number): string | undefined {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync(`/proc/net/${protocol}`, 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] === local && (protocol === 'udp' || fields[3] === '0A')) return fields[9];
  }
  return undefined;
}

// A fresh process (root, so the port's privilege is no obstacle) binds the port exclusively and exits.
async function freshBind(protocol: 'tcp' | 'udp', port: number): Promise<string> {
  const script =
    protocol === 'tcp'
      ? `const s = require('net').createServer(); s.on('error', (e) => { console.log(e.code); process.exit(0) });
         s.listen({ host: '127.0.0.1', port: ${port}, exclusive: true }, () => { console.log('ok'); s.close() })`
      : `const s = require('dgram').createSocket('udp4'); s.on('error', (e) => { console.log(e.code); process.exit(0) });
         s.bind({ address: '127.0.0.1', port: ${port}, exclusive: true }, () => { console.log('ok'); s.close() })`;
  const child = spawn(process.execPath, ['-e', script]);
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => (out += chunk));
  await new Promise((res) => child.once('exit', res));
  return out.trim();
}

async function waitGone(pid: number): Promise<void> {
  for (let i = 0; i < 200; i += 1) {
    try {
      // A zombie still counts as there, but it holds no fds; the fd folder empties when it dies.
      if (socketInodes(pid).size === 0) return;
    } catch {
      return;
    }
    await new Promise((res) => setTimeout(res, 10));
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
