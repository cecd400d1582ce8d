/** What the app tells a user of the packaged helper service who cannot use it yet (issue 7). */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  INSTALLED_SOCKET,
  installedHelperAccessHint,
  installedHelperStartHint,
} from '../../app/helper/installed.js';
import { tempDir } from '../support/index.js';

async function packagedRoot(t: Parameters<typeof tempDir>[0], groupLine: string): Promise<string> {
  const root = await tempDir(t);
  await mkdir(join(root, 'usr/libexec/berth'), { recursive: true });
  await writeFile(join(root, 'usr/libexec/berth/berth-helper-setup'), '#!/bin/sh\n');
  await mkdir(join(root, 'etc'));
  await writeFile(join(root, 'etc/group'), `root:x:0:\n${groupLine}\nusers:x:100:\n`);
  return root;
}

test('a user not in the group "berth" is told the exact command to run', async (t) => {
  const root = await packagedRoot(t, 'berth:x:998:alice');
  const hint = installedHelperAccessHint(INSTALLED_SOCKET, { root, user: 'bob' });
  assert.equal(
    hint,
    'This user (bob) may not use berth-helper yet. Run `sudo /usr/libexec/berth/berth-helper-setup allow bob`, then log out and back in (or run `newgrp berth`).',
  );
});

test('a user already in the group is told to log in again', async (t) => {
  const root = await packagedRoot(t, 'berth:x:998:alice,bob');
  assert.match(
    installedHelperAccessHint(INSTALLED_SOCKET, { root, user: 'bob' }) ?? '',
    /takes effect at the next login/,
  );
});

test('an installed helper whose socket is down: how to start it', async (t) => {
  const root = await packagedRoot(t, 'berth:x:998:');
  assert.match(
    installedHelperStartHint(INSTALLED_SOCKET, { root }) ?? '',
    /systemctl enable --now berth-helper\.socket/,
  );
});

test('no hint without the package, or for a helper on another socket', async (t) => {
  const bare = await tempDir(t);
  assert.equal(installedHelperAccessHint(INSTALLED_SOCKET, { root: bare, user: 'bob' }), undefined);
  const root = await packagedRoot(t, 'berth:x:998:');
  assert.equal(installedHelperAccessHint('/tmp/my-helper.sock', { root, user: 'bob' }), undefined);
  assert.equal(installedHelperStartHint('/tmp/my-helper.sock', { root }), undefined);
});
