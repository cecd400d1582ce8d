/**
 * The README's helper command, as written: `berth-helper --socket /run/berth/helper.sock --allow-uid $(id -u)`,
 * run as root with `--allow-uid 65534` and nothing else, with Berth (the real Engine and helper binder) as
 * `nobody`. Issue 19: the helper printed "allowed: root, uid 65534" over a 0660 root:root socket, so nobody got
 * EHELPERDENIED. The socket goes under a fresh root-owned 0755 folder in /tmp instead of /run, which other
 * software owns: every folder above it is root's or sticky, as the helper requires.
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { EngineDriver } from '../support/engine-driver.js';
import { helperAsRootSkip, NOBODY, randomPort, startHelper, tempDir } from '../support/helper-harness.js';

const PORTS = { lo: 600, hi: 999 };

test(
  "the README's `berth-helper --socket .../berth/helper.sock --allow-uid UID` serves UID",
  { skip: helperAsRootSkip(PORTS) },
  async () => {
    const dir = tempDir();
    chmodSync(dir.path, 0o755);
    const stateDir = join(dir.path, 'state');
    mkdirSync(stateDir, { mode: 0o700 });
    chownSync(stateDir, NOBODY, NOBODY);
    // As in the README: a folder the helper creates, and no flag but --socket and --allow-uid.
    const socketPath = join(dir.path, 'berth', 'helper.sock');
    const helper = await startHelper(socketPath, ['--allow-uid', String(NOBODY)]);
    const driver = new EngineDriver([`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'], {
      socketPath,
      stateDir,
      protocol: 'tcp',
      receivePath: 'msg-cmsg-cloexec',
      leaveCloexecOff: false,
    });
    try {
      assert.match(helper.stderr(), /allowed: root, uid 65534;/);
      let status: { state: string; via?: string; error: { code: string; message: string } | null };
      let attempts = 0;
      do {
        // A random privileged port; another suite may hold one, so try others on EADDRINUSE.
        status = (await driver.send('add', randomPort(PORTS.lo, PORTS.hi))) as typeof status;
        attempts += 1;
      } while (status.error?.code === 'EADDRINUSE' && attempts < 20);
      assert.equal(status.state, 'listening', JSON.stringify(status));
      assert.equal(status.via, 'helper');
      await driver.send('traffic');
      assert.equal(statSync(socketPath).mode & 0o777, 0o666, 'every peer is checked at accept instead');
    } finally {
      await driver.close();
      await helper.stop();
      dir.remove();
    }
  },
);
