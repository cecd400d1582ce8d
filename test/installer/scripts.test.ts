/**
 * build/linux/berth-helper-setup (install / allow / remove) run against a temporary system root (DESTDIR), never
 * against this machine: the root's etc/passwd and etc/group get the system user and group "berth", the helper,
 * the units and the allow-list appear with exactly the expected modes and owners, a second install changes
 * nothing, a package upgrade's remove step leaves everything alone, and the real remove puts the root back
 * exactly as it was. Also: the deb/rpm maintainer-script templates are valid shell that calls the setup script.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  BUILD_LINUX,
  type Entry,
  HELPER_BUILD,
  RELEASE,
  SETUP,
  diffSnapshots,
  isRoot,
  makeSystemRoot,
  noNativeBuild,
  runSetup,
  sha256,
  snapshot,
  tempDir,
} from '../support/installer.js';

const skip =
  noNativeBuild() ||
  (process.platform !== 'linux' && 'needs Linux') ||
  (!isRoot &&
    'needs root: the script chowns what it installs to root and edits the temporary root with useradd --prefix');

/** The shadow tools' backups (etc/passwd- ...): every real system has them; they are not ours to remove. */
const shadowBackup = (path: string) => /^etc\/(passwd|group|shadow|gshadow)-$/.test(path);
/** The four account files, whose changes are checked by content below. */
const accountFile = (path: string) => /^etc\/(passwd|group|shadow|gshadow)$/.test(path);

const dirEntry: Entry = { type: 'dir', mode: '0755', owner: '0:0' };
const file = (mode: string, path?: string): Entry => ({
  type: 'file',
  mode,
  owner: '0:0',
  ...(path ? { content: sha256(path) } : {}),
});

function expectedAfterInstall(): Map<string, Entry> {
  return new Map<string, Entry>([
    ['etc/berth', dirEntry],
    ['etc/berth/helper.env', file('0644')],
    ['etc/systemd/system/sockets.target.wants', dirEntry],
    [
      'etc/systemd/system/sockets.target.wants/berth-helper.socket',
      { type: 'link', mode: '0777', owner: '0:0', content: '/usr/lib/systemd/system/berth-helper.socket' },
    ],
    ['usr/lib/systemd/system/berth-helper.service', file('0644', join(BUILD_LINUX, 'berth-helper.service'))],
    ['usr/lib/systemd/system/berth-helper.socket', file('0644', join(BUILD_LINUX, 'berth-helper.socket'))],
    ['usr/libexec/berth', dirEntry],
    ['usr/libexec/berth/berth-helper', file('0755', HELPER_BUILD)],
    ['usr/libexec/berth/berth-helper-setup', file('0755', SETUP)],
  ]);
}

function lines(path: string): string[] {
  return readFileSync(path, 'utf8').split('\n').filter(Boolean);
}

describe('berth-helper-setup against a temporary root', () => {
  test(
    'install, install again, allow, a package upgrade, remove, remove again',
    { skip, timeout: 60_000 },
    () => {
      const dir = tempDir();
      const realAccounts = ['/etc/passwd', '/etc/group'].map((path) => sha256(path));
      try {
        const root = join(dir.path, 'root');
        makeSystemRoot(root);
        const pristine = snapshot(root);
        const pristineAccounts = Object.fromEntries(
          ['passwd', 'group', 'shadow', 'gshadow'].map((name) => [
            name,
            readFileSync(join(root, 'etc', name), 'utf8'),
          ]),
        );
        // As `sudo apt install ./berth.deb` by alice (uid 1000) would run it.
        const env = { DESTDIR: root, BERTH_RESOURCES: RELEASE, SUDO_UID: '1000' };

        const first = runSetup(['install', 'configure'], env);
        assert.equal(first.status, 0, first.stderr + first.stdout);
        assert.match(first.stdout, /created the system group berth/);
        assert.match(first.stdout, /created the system user berth/);
        assert.match(first.stdout, /nothing started/);
        const installed = snapshot(root);
        const changes = diffSnapshots(pristine, installed, (path) => shadowBackup(path) || accountFile(path));
        const want = new Map([...pristine, ...expectedAfterInstall()]);
        // The allow-list's content is checked below: here its type, mode and owner.
        want.set('etc/berth/helper.env', {
          ...file('0644'),
          content: installed.get('etc/berth/helper.env')?.content,
        });
        assert.deepEqual(changes, diffSnapshots(pristine, want));
        for (const name of ['passwd', 'group', 'shadow', 'gshadow']) {
          const entry = installed.get(`etc/${name}`);
          assert.equal(entry?.mode, name.endsWith('shadow') ? '0640' : '0644', `etc/${name} keeps its mode`);
        }

        // The accounts: a system user and group "berth" (ids below 1000), no login, no home; alice is a member.
        const user = lines(join(root, 'etc', 'passwd')).find((l) => l.startsWith('berth:'));
        assert.ok(user, 'no user berth in the root');
        const [, , uid, gid, , home, shell] = user.split(':');
        assert.ok(Number(uid) > 0 && Number(uid) < 1000, `uid ${uid} is not a system uid`);
        assert.equal(home, '/nonexistent');
        assert.equal(shell, '/usr/sbin/nologin');
        const group = lines(join(root, 'etc', 'group')).find((l) => l.startsWith('berth:'));
        assert.equal(group, `berth:x:${gid}:alice`);
        assert.ok(
          lines(join(root, 'etc', 'shadow')).some((l) => /^berth:[!*]/.test(l)),
          'berth has a locked password',
        );
        assert.ok(lines(join(root, 'etc', 'gshadow')).some((l) => l.startsWith('berth:')));
        for (const name of ['passwd', 'group', 'shadow', 'gshadow']) {
          const added = diffLines(pristineAccounts[name]!, readFileSync(join(root, 'etc', name), 'utf8'));
          assert.ok(
            added.every((l) => l.startsWith('berth:')),
            `etc/${name}: unexpected changes ${added.join(' | ')}`,
          );
          const lost = diffLines(readFileSync(join(root, 'etc', name), 'utf8'), pristineAccounts[name]!);
          assert.deepEqual(lost, [], `etc/${name} lost lines`);
        }
        // The allow-list serves alice.
        assert.deepEqual(
          lines(join(root, 'etc', 'berth', 'helper.env')).filter((l) => !l.startsWith('#')),
          ['BERTH_HELPER_ARGS=--allow-uid 1000'],
        );
        // This machine's own accounts were never touched.
        assert.deepEqual(
          ['/etc/passwd', '/etc/group'].map((path) => sha256(path)),
          realAccounts,
        );

        // Installing twice is harmless: same files, modes, owners and contents; no second user or allow entry.
        const second = runSetup(['install', 'configure', '0.1.0'], env);
        assert.equal(second.status, 0, second.stderr + second.stdout);
        assert.doesNotMatch(second.stdout, /created/);
        assert.deepEqual(diffSnapshots(installed, snapshot(root), shadowBackup), []);

        // allow: nobody joins; asking again changes nothing.
        const allow = runSetup(['allow', 'nobody'], env);
        assert.equal(allow.status, 0, allow.stderr);
        assert.equal(
          lines(join(root, 'etc', 'group')).find((l) => l.startsWith('berth:')),
          `berth:x:${gid}:alice,nobody`,
        );
        assert.ok(
          lines(join(root, 'etc', 'berth', 'helper.env')).includes(
            'BERTH_HELPER_ARGS=--allow-uid 1000 --allow-uid 65534',
          ),
        );
        const allowed = snapshot(root);
        const again = runSetup(['allow', '65534', 'nosuchuser'], env);
        assert.equal(again.status, 0, again.stderr);
        assert.match(again.stdout, /no user 'nosuchuser' here; skipped/);
        assert.deepEqual(diffSnapshots(allowed, snapshot(root), shadowBackup), []);

        // A package upgrade runs the old package's remove step (deb postrm "upgrade", rpm %postun "1"): no-op.
        for (const arg of ['upgrade', '1', 'failed-upgrade']) {
          const upgrade = runSetup(['remove', arg], env);
          assert.equal(upgrade.status, 0, upgrade.stderr);
          assert.deepEqual(
            diffSnapshots(allowed, snapshot(root), shadowBackup),
            [],
            `remove ${arg} changed the root`,
          );
        }

        // Removal (deb "remove", then "purge"; rpm "0") leaves the root exactly as it was.
        const removed = runSetup(['remove', 'remove'], env);
        assert.equal(removed.status, 0, removed.stderr + removed.stdout);
        assert.deepEqual(diffSnapshots(pristine, snapshot(root), shadowBackup), []);
        for (const name of ['passwd', 'group', 'shadow', 'gshadow']) {
          assert.equal(
            readFileSync(join(root, 'etc', name), 'utf8'),
            pristineAccounts[name],
            `etc/${name} is back`,
          );
        }
        for (const arg of ['purge', '0']) {
          const twice = runSetup(['remove', arg], env);
          assert.equal(twice.status, 0, twice.stderr);
          assert.deepEqual(diffSnapshots(pristine, snapshot(root), shadowBackup), []);
        }
      } finally {
        dir.remove();
      }
    },
  );

  test(
    'the installed copy of the setup script removes everything, as the package postrm calls it',
    { skip, timeout: 60_000 },
    () => {
      const dir = tempDir();
      try {
        const root = join(dir.path, 'root');
        makeSystemRoot(root);
        const pristine = snapshot(root);
        const env = { DESTDIR: root, BERTH_RESOURCES: RELEASE };
        assert.equal(runSetup(['install'], env).status, 0);
        // No SUDO_UID: nobody is allowed yet, and the allow-list says so.
        assert.deepEqual(
          lines(join(root, 'etc', 'berth', 'helper.env')).filter((l) => !l.startsWith('#')),
          ['BERTH_HELPER_ARGS='],
        );
        // The package's own files are gone when postrm runs: only the copy in usr/libexec/berth is left to run.
        const removed = runSetup(
          ['remove', 'remove'],
          env,
          join(root, 'usr', 'libexec', 'berth', 'berth-helper-setup'),
        );
        assert.equal(removed.status, 0, removed.stderr + removed.stdout);
        assert.deepEqual(diffSnapshots(pristine, snapshot(root), shadowBackup), []);
      } finally {
        dir.remove();
      }
    },
  );

  test('an admin edit of the allow-list survives an upgrade', { skip, timeout: 60_000 }, () => {
    const dir = tempDir();
    try {
      const root = join(dir.path, 'root');
      makeSystemRoot(root);
      const env = { DESTDIR: root, BERTH_RESOURCES: RELEASE, SUDO_UID: '1000' };
      assert.equal(runSetup(['install'], env).status, 0);
      const envFile = join(root, 'etc', 'berth', 'helper.env');
      writeFileSync(envFile, 'BERTH_HELPER_ARGS=--allow-uid 1000 --ports 80-443\n');
      assert.equal(runSetup(['install', 'configure', '0.1.0'], env).status, 0);
      assert.equal(readFileSync(envFile, 'utf8'), 'BERTH_HELPER_ARGS=--allow-uid 1000 --ports 80-443\n');
      assert.equal(runSetup(['remove'], env).status, 0);
    } finally {
      dir.remove();
    }
  });

  test('bad use: an unknown command and a root without accounts are refused', { skip }, () => {
    const dir = tempDir();
    try {
      const unknown = runSetup(['frobnicate'], {});
      assert.equal(unknown.status, 1);
      assert.match(unknown.stderr, /usage: .* install \| remove \| allow USER/);
      const empty = runSetup(['install'], { DESTDIR: dir.path, BERTH_RESOURCES: RELEASE });
      assert.equal(empty.status, 1);
      assert.match(empty.stderr, /etc is missing: is .* a system root\?/);
      const noHelper = runSetup(['install'], { DESTDIR: dir.path, BERTH_RESOURCES: dir.path });
      assert.equal(noHelper.status, 1);
      assert.match(noHelper.stderr, /no berth-helper in /);
    } finally {
      dir.remove();
    }
  });
});

describe('berth-helper-setup where systemd runs (a stand-in systemctl: systemd is not PID 1 here)', () => {
  test(
    'install enables and starts the socket; an upgrade replaces a running helper; allow restarts it; remove stops and disables',
    { skip, timeout: 60_000 },
    async () => {
      const dir = tempDir();
      let running: ChildProcess | undefined;
      try {
        const root = join(dir.path, 'root');
        makeSystemRoot(root);
        const pristine = snapshot(root);
        const log = join(dir.path, 'systemctl.log');
        const pidFile = join(dir.path, 'helper.pid');
        // Logs its arguments; "stop berth-helper.service" stops the helper this test started, as systemd would.
        const systemctl = join(dir.path, 'systemctl');
        writeFileSync(
          systemctl,
          `#!/bin/sh\necho "$*" >> '${log}'\nif [ "$*" = "stop berth-helper.service" ] && [ -f '${pidFile}' ]; then kill "$(cat '${pidFile}')"; rm -f '${pidFile}'; fi\n`,
          { mode: 0o755 },
        );
        const env = {
          DESTDIR: root,
          BERTH_RESOURCES: RELEASE,
          BERTH_SYSTEMD: 'yes',
          BERTH_SYSTEMCTL: systemctl,
        };
        const calls = () => {
          const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
          rmSync(log, { force: true });
          return text.split('\n').filter(Boolean);
        };

        const first = runSetup(['install'], env);
        assert.equal(first.status, 0, first.stderr + first.stdout);
        assert.deepEqual(calls(), [
          'daemon-reload',
          'stop berth-helper.service',
          'enable berth-helper.socket',
          'restart berth-helper.socket',
        ]);
        assert.match(
          first.stdout,
          /berth-helper\.socket is enabled and listening on \/run\/berth\/helper\.sock/,
        );

        // The installed helper runs (as the service would) while a newer version is installed over it.
        const installedHelper = join(root, 'usr', 'libexec', 'berth', 'berth-helper');
        const oldInode = statSync(installedHelper).ino;
        running = spawn(installedHelper, ['--socket', join(dir.path, 'helper.sock')], {
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        const exited = new Promise((res) => running!.once('exit', res));
        await new Promise<void>((res, rej) => {
          let out = '';
          running!.stderr!.setEncoding('utf8');
          running!.stderr!.on(
            'data',
            (chunk: string) => ((out += chunk), out.includes('listening on') && res()),
          );
          running!.once('exit', () => rej(new Error(`helper exited: ${out}`)));
        });
        writeFileSync(pidFile, String(running.pid));
        const newer = join(dir.path, 'newer');
        mkdirSync(newer);
        // A "new version": the same program with other bytes (trailing data does not change what an ELF runs).
        writeFileSync(
          join(newer, 'berth-helper'),
          Buffer.concat([readFileSync(HELPER_BUILD), Buffer.from('\nv2\n')]),
        );

        const upgrade = runSetup(['install', 'configure', '0.1.0'], { ...env, BERTH_RESOURCES: newer });
        assert.equal(upgrade.status, 0, upgrade.stderr + upgrade.stdout);
        assert.deepEqual(calls(), [
          'daemon-reload',
          'stop berth-helper.service',
          'enable berth-helper.socket',
          'restart berth-helper.socket',
        ]);
        await exited;
        assert.equal(
          sha256(installedHelper),
          sha256(join(newer, 'berth-helper')),
          'the new helper is installed',
        );
        assert.notEqual(
          statSync(installedHelper).ino,
          oldInode,
          'replaced by rename, not overwritten in place',
        );

        const allow = runSetup(['allow', 'alice'], env);
        assert.equal(allow.status, 0, allow.stderr);
        assert.deepEqual(
          calls(),
          ['stop berth-helper.service'],
          'the helper restarts with the new allow-list',
        );
        assert.equal(runSetup(['allow', 'alice'], env).status, 0);
        assert.deepEqual(calls(), [], 'nothing changed, nothing restarted');

        assert.equal(runSetup(['remove', '1'], env).status, 0);
        assert.deepEqual(calls(), [], 'an rpm upgrade leaves the service alone');
        const removed = runSetup(['remove', '0'], env);
        assert.equal(removed.status, 0, removed.stderr);
        assert.deepEqual(calls(), [
          'disable --now berth-helper.socket',
          'stop berth-helper.service',
          'daemon-reload',
        ]);
        assert.deepEqual(diffSnapshots(pristine, snapshot(root), shadowBackup), []);
      } finally {
        if (running && running.exitCode === null && running.signalCode === null) running.kill('SIGKILL');
        dir.remove();
      }
    },
  );
});

describe('the scripts are valid POSIX sh / bash', () => {
  test('berth-helper-setup parses with dash (Debian /bin/sh) and sh', () => {
    for (const shell of ['dash', 'sh']) {
      const found = spawnSync(shell, ['-n', SETUP], { encoding: 'utf8' });
      if (found.error) continue;
      assert.equal(found.status, 0, `${shell}: ${found.stderr}`);
    }
  });

  test("the deb/rpm templates, with electron-builder's macros filled in, are valid bash that run the setup script", () => {
    for (const [name, call] of [
      ['after-install.tpl', /sh '\/opt\/Berth\/resources\/linux\/berth-helper-setup' install "\$@"/],
      ['after-remove.tpl', /\/usr\/libexec\/berth\/berth-helper-setup remove "\$@"/],
    ] as const) {
      // The same substitution as electron-builder's FpmTarget (only ${letters} macros; unknown ones fail there).
      const text = readFileSync(join(BUILD_LINUX, name), 'utf8').replace(
        /\$\{([a-zA-Z]+)\}/g,
        (_, macro: string) => {
          const value = {
            executable: 'berth-desktop',
            sanitizedProductName: 'Berth',
            productFilename: 'Berth',
          }[macro];
          assert.ok(value, `${name} uses the macro \${${macro}}, which electron-builder does not define`);
          return value;
        },
      );
      assert.match(text, call);
      const parsed = spawnSync('bash', ['-n'], { input: text, encoding: 'utf8' });
      assert.equal(parsed.status, 0, `${name}: ${parsed.stderr}`);
    }
  });
});

/** Lines of `after` that are not in `before`. */
function diffLines(before: string, after: string): string[] {
  const old = new Set(before.split('\n'));
  return after.split('\n').filter((l) => l && !old.has(l));
}
