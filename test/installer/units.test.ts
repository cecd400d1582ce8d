/**
 * berth-helper's systemd units (build/linux/berth-helper.{socket,service}): the settings the installer promises,
 * `systemd-analyze verify` on the units as installed (into a temporary root holding the real helper binary and
 * a copy of this machine's stock units, which verify resolves dependencies against), and
 * `systemd-analyze security --offline=yes` with an overall exposure of 2.0 or lower.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  BUILD_LINUX,
  RELEASE,
  isRoot,
  makeSystemRoot,
  noNativeBuild,
  noSystemdAnalyze,
  one,
  parseUnit,
  runSetup,
  tempDir,
} from '../support/installer.js';

const SOCKET_UNIT = join(BUILD_LINUX, 'berth-helper.socket');
const SERVICE_UNIT = join(BUILD_LINUX, 'berth-helper.service');
const MAX_EXPOSURE = 2.0;

describe('berth-helper units: what they promise', () => {
  test('the socket: /run/berth/helper.sock, mode 0660, group berth, enabled by sockets.target', () => {
    const socket = parseUnit(SOCKET_UNIT);
    assert.equal(one(socket, 'ListenStream'), '/run/berth/helper.sock');
    assert.equal(one(socket, 'SocketMode'), '0660');
    assert.equal(one(socket, 'SocketGroup'), 'berth');
    assert.equal(one(socket, 'SocketUser'), 'root');
    assert.equal(one(socket, 'Accept'), 'no', 'one helper serves every connection');
    assert.equal(one(socket, 'WantedBy'), 'sockets.target');
  });

  test('the service: user berth, only CAP_NET_BIND_SERVICE, no new privileges, a sandbox and a syscall filter', () => {
    const service = parseUnit(SERVICE_UNIT);
    assert.equal(one(service, 'User'), 'berth');
    assert.equal(one(service, 'Group'), 'berth');
    assert.equal(one(service, 'CapabilityBoundingSet'), 'CAP_NET_BIND_SERVICE');
    assert.equal(one(service, 'AmbientCapabilities'), 'CAP_NET_BIND_SERVICE');
    assert.equal(one(service, 'NoNewPrivileges'), 'yes');
    assert.equal(one(service, 'ProtectSystem'), 'strict');
    assert.equal(one(service, 'ProtectHome'), 'yes');
    assert.equal(one(service, 'PrivateTmp'), 'yes');
    assert.equal(one(service, 'RestrictAddressFamilies'), 'AF_UNIX AF_INET AF_INET6 AF_NETLINK');
    assert.deepEqual(service.get('SystemCallFilter')?.[0], '@system-service');
    assert.equal(one(service, 'Requires'), 'berth-helper.socket');
    assert.equal(one(service, 'ExecStart'), '/usr/libexec/berth/berth-helper $BERTH_HELPER_ARGS');
    assert.equal(one(service, 'EnvironmentFile'), '-/etc/berth/helper.env');
    // Settings that would break the helper (see the comment at the top of the unit) must stay out.
    for (const key of [
      'PrivateNetwork',
      'PrivateUsers',
      'IPAddressDeny',
      'RestrictNetworkInterfaces',
      'SocketBindDeny',
      'DynamicUser',
    ]) {
      assert.equal(service.has(key), false, `${key}= would stop the helper from doing its job`);
    }
  });
});

const whyNoRoot =
  noSystemdAnalyze() ||
  noNativeBuild() ||
  (!isRoot && 'needs root: installs the units into a temporary root with files owned by root');

describe('berth-helper units: systemd-analyze', () => {
  test(
    'systemd-analyze verify accepts the installed units, and fails once the helper binary is missing',
    { skip: whyNoRoot, timeout: 60_000 },
    () => {
      const dir = tempDir();
      try {
        const root = join(dir.path, 'root');
        makeSystemRoot(root);
        // verify resolves sysinit.target, sockets.target, ... in the root: give it this machine's stock units.
        cpSync('/usr/lib/systemd/system', join(root, 'usr', 'lib', 'systemd', 'system'), { recursive: true });
        const installed = runSetup(['install'], { DESTDIR: root, BERTH_RESOURCES: RELEASE });
        assert.equal(installed.status, 0, installed.stderr + installed.stdout);

        const verify = () =>
          spawnSync(
            'systemd-analyze',
            ['verify', '--man=no', `--root=${root}`, 'berth-helper.socket', 'berth-helper.service'],
            {
              encoding: 'utf8',
              timeout: 30_000,
              cwd: dir.path,
            },
          );
        const ok = verify();
        assert.equal(ok.status, 0, ok.stderr);
        assert.equal(ok.stderr.trim(), '', 'verify printed warnings');

        // The negative twin proves verify looks at the root: without the binary ExecStart= is refused.
        rmSync(join(root, 'usr', 'libexec', 'berth', 'berth-helper'));
        const broken = verify();
        assert.notEqual(broken.status, 0);
        assert.match(broken.stderr, /berth-helper is not executable/);
      } finally {
        dir.remove();
      }
    },
  );

  test(
    `systemd-analyze security --offline=yes: overall exposure ${MAX_EXPOSURE.toFixed(1)} or lower`,
    { skip: noSystemdAnalyze(), timeout: 60_000 },
    (t) => {
      const result = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', SERVICE_UNIT], {
        encoding: 'utf8',
        timeout: 30_000,
        cwd: BUILD_LINUX,
      });
      assert.equal(result.status, 0, result.stderr);
      const match = /Overall exposure level for berth-helper\.service: (\d+(?:\.\d+)?)/.exec(result.stdout);
      assert.ok(match, `no exposure level in:\n${result.stdout}`);
      const exposure = Number(match[1]);
      t.diagnostic(`berth-helper.service exposure: ${exposure} (systemd-analyze security --offline=yes)`);
      assert.ok(
        exposure <= MAX_EXPOSURE,
        `exposure ${exposure} is above ${MAX_EXPOSURE.toFixed(1)}:\n${result.stdout}`,
      );
      // The checks the issue names pass individually too.
      for (const check of [
        'NoNewPrivileges=',
        'ProtectSystem=',
        'ProtectHome=',
        'PrivateTmp=',
        'User=/DynamicUser=',
        'CapabilityBoundingSet=~CAP_SYS_ADMIN',
        'SystemCallFilter=~@privileged',
        'RestrictAddressFamilies=~AF_PACKET',
      ]) {
        const line = result.stdout
          .split('\n')
          .find((l) => l.includes(` ${check} `) || l.includes(`${check} `));
        assert.ok(line?.trimStart().startsWith('✓'), `${check} does not pass: ${line}`);
      }
    },
  );
});
