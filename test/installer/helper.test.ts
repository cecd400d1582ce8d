/**
 * berth-helper started the way berth-helper.socket + berth-helper.service start it hands a port below 1024 to
 * Berth running as another user. berth-helper-setup installs the helper and its units into a temporary root
 * (allowing `nobody`); the test reads User=, Group=, the capabilities, NoNewPrivileges=, SecureBits=,
 * EnvironmentFile= and ExecStart= from the installed service and ListenStream=, SocketMode=, SocketGroup= from
 * the installed socket, and replays them without systemd (not PID 1 here):
 *   - test/fixtures/installer/socket-activate.py creates the socket as root (mode, group) and passes it as fd 3
 *     with LISTEN_FDS/LISTEN_PID, like systemd;
 *   - setpriv drops to the service's user and group (uid 64000 / gid 64001 stand in for "berth", which exists
 *     only in the temporary root), no supplementary groups, CAP_NET_BIND_SERVICE as the only capability
 *     (bounding, inheritable, ambient), no new privileges; then runs ExecStart= with the EnvironmentFile= args;
 *   - Berth (the real Engine and helper binder with the real addon: test/fixtures/helper/engine-as-nobody.ts)
 *     runs as nobody with the "berth" group as its supplementary group, as `berth-helper-setup allow nobody`
 *     made it, and gets 127.0.0.1:<port below 1024> "via helper", with traffic through it.
 * The negative twins: nobody without the group is kept out by the socket's mode (EHELPERDENIED), and the
 * helper's /proc status shows exactly the uid, gid and capabilities the unit names.
 */
import assert from 'node:assert/strict';
import { EngineDriver } from '../support/engine-driver.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  REPO,
  RELEASE,
  isRoot,
  makeSystemRoot,
  noNativeBuild,
  one,
  parseUnit,
  runSetup,
  tempDir,
} from '../support/installer.js';

const NOBODY = 65534;
/** Stand-ins on this machine for the user and group "berth" of the temporary root (checked unused below). */
const HELPER_UID = 64000;
const BERTH_GID = 64001;
const PORTS = { lo: 600, hi: 1023 };
const ACTIVATE = join(REPO, 'test', 'fixtures', 'installer', 'socket-activate.py');
/** CAP_NET_BIND_SERVICE is capability 10. */
const ONLY_NET_BIND_SERVICE = (1n << 10n).toString(16).padStart(16, '0');

function whyNot(): string | false {
  const built = noNativeBuild();
  if (built) return built;
  if (process.platform !== 'linux') return 'needs Linux: setpriv, /proc and systemd units';
  if (!isRoot)
    return 'needs root: runs the helper as its own system user and Berth as nobody via setpriv (CI runs as root)';
  for (const tool of ['setpriv', 'python3']) {
    if (spawnSync(tool, ['--version']).error) return `needs ${tool}`;
  }
  const start = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
  if (start <= PORTS.lo) {
    return `needs net.ipv4.ip_unprivileged_port_start > ${PORTS.lo} (it is ${start}): nobody could bind the port itself`;
  }
  const taken = (file: string, id: number) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .some((l) => l.split(':')[2] === String(id));
  if (taken('/etc/passwd', HELPER_UID) || taken('/etc/group', BERTH_GID)) {
    return `uid ${HELPER_UID} or gid ${BERTH_GID} is in use on this machine; the test needs them free`;
  }
  return false;
}

const skip = whyNot();

describe('berth-helper as the units start it (system user, CAP_NET_BIND_SERVICE only) serves Berth as nobody', () => {
  test(
    'Berth as nobody, in group berth, gets a port below 1024 via the helper; without the group it is kept out',
    { skip, timeout: 90_000 },
    async () => {
      const dir = tempDir();
      chmodSync(dir.path, 0o755);
      let helper: ChildProcess | undefined;
      const drivers: EngineDriver[] = [];
      try {
        // Install into a temporary root, allowing nobody (group berth + --allow-uid 65534), as an admin would.
        const root = join(dir.path, 'root');
        makeSystemRoot(root);
        const installed = runSetup(['install'], {
          DESTDIR: root,
          BERTH_RESOURCES: RELEASE,
          BERTH_ALLOW_USERS: 'nobody',
        });
        assert.equal(installed.status, 0, installed.stderr + installed.stdout);

        const service = parseUnit(join(root, 'usr', 'lib', 'systemd', 'system', 'berth-helper.service'));
        const socket = parseUnit(join(root, 'usr', 'lib', 'systemd', 'system', 'berth-helper.socket'));
        assert.equal(one(service, 'User'), 'berth');
        assert.equal(one(service, 'Group'), 'berth');
        assert.equal(one(socket, 'SocketGroup'), 'berth');
        const socketPath = join(dir.path, one(socket, 'ListenStream')!.replace(/^\//, ''));
        const mode = one(socket, 'SocketMode')!;

        // The capabilities, as setpriv spells them.
        const caps = one(service, 'CapabilityBoundingSet')!
          .split(/\s+/)
          .map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`)
          .join(',');
        assert.equal(one(service, 'AmbientCapabilities'), one(service, 'CapabilityBoundingSet'));
        const setpriv = [
          'setpriv',
          `--reuid=${HELPER_UID}`,
          `--regid=${BERTH_GID}`,
          '--clear-groups',
          `--inh-caps=-all,${caps}`,
          `--ambient-caps=-all,${caps}`,
          `--bounding-set=-all,${caps}`,
        ];
        if (one(service, 'NoNewPrivileges') === 'yes') setpriv.push('--no-new-privs');
        for (const bits of service.get('SecureBits') ?? []) {
          setpriv.push(
            `--securebits=${bits
              .split(/\s+/)
              .map((b) => `+${b.replace(/-/g, '_')}`)
              .join(',')}`,
          );
        }

        // ExecStart= with $BERTH_HELPER_ARGS from the EnvironmentFile= (unbraced: split on whitespace, as systemd does).
        const environment = readEnvironment(
          join(root, one(service, 'EnvironmentFile')!.replace(/^-?\//, '')),
        );
        assert.equal(environment.BERTH_HELPER_ARGS, `--allow-uid ${NOBODY}`);
        const execStart = one(service, 'ExecStart')!
          .split(/\s+/)
          .flatMap((word) =>
            word.startsWith('$') ? (environment[word.slice(1)] ?? '').split(/\s+/).filter(Boolean) : [word],
          );
        execStart[0] = join(root, execStart[0]!.replace(/^\//, ''));
        assert.ok(existsSync(execStart[0]), 'the installed helper');

        const started = await activate([...setpriv, ...execStart], socketPath, mode);
        helper = started.process;
        assert.match(
          started.stderr(),
          /listening on the activated socket \(allowed: root, uid 65534; ports 1-1023\)/,
        );

        // The helper runs as the unit says: its user and group, no other groups, CAP_NET_BIND_SERVICE only.
        const status = procStatus(helper.pid!);
        assert.deepEqual(status.Uid, [HELPER_UID, HELPER_UID, HELPER_UID, HELPER_UID].join('\t'));
        assert.deepEqual(status.Gid, [BERTH_GID, BERTH_GID, BERTH_GID, BERTH_GID].join('\t'));
        assert.equal(status.Groups, '');
        for (const set of ['CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'CapInh']) {
          assert.equal(status[set], ONLY_NET_BIND_SERVICE, `${set} of the helper`);
        }
        assert.equal(status.NoNewPrivs, '1');

        const stateDir = join(dir.path, 'state');
        mkdirSync(stateDir, { mode: 0o700 });
        chownSync(stateDir, NOBODY, NOBODY);
        const options = {
          socketPath,
          stateDir,
          protocol: 'tcp',
          receivePath: 'msg-cmsg-cloexec',
          leaveCloexecOff: false,
        };

        // Berth as nobody, a member of group berth: the port comes from the helper and carries traffic.
        const member = new EngineDriver(
          ['--reuid', String(NOBODY), '--regid', String(NOBODY), `--groups=${BERTH_GID}`],
          options,
        );
        drivers.push(member);
        let port = 0;
        let forward: ForwardStatus | undefined;
        for (let attempt = 0; attempt < 20; attempt += 1) {
          port = PORTS.lo + Math.floor(Math.random() * (PORTS.hi - PORTS.lo + 1));
          forward = (await member.send('add', port)) as ForwardStatus;
          if (forward.error?.code !== 'EADDRINUSE') break;
        }
        assert.equal(forward?.state, 'listening', JSON.stringify(forward));
        assert.equal(forward?.via, 'helper');
        await member.send('traffic');
        assert.match(
          started.stderr(),
          new RegExp(`uid ${NOBODY} pid \\d+: tcp 127\\.0\\.0\\.1:${port}: sent`),
        );

        // nobody outside group berth: the socket's mode 0660 keeps it out before the helper sees it.
        const outsider = new EngineDriver(
          ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups'],
          options,
        );
        drivers.push(outsider);
        const refused = (await outsider.send(
          'add',
          port === PORTS.hi ? port - 1 : port + 1,
        )) as ForwardStatus;
        assert.equal(refused.state, 'error');
        assert.equal(refused.error?.code, 'EHELPERDENIED', JSON.stringify(refused));
        assert.match(refused.error?.message ?? '', /may not connect to/);
      } finally {
        for (const driver of drivers) await driver.close();
        if (helper && helper.exitCode === null) {
          const exited = new Promise((res) => helper!.once('exit', res));
          helper.kill('SIGTERM');
          await exited;
        }
        dir.remove();
      }
    },
  );
});

interface ForwardStatus {
  state: string;
  via?: string;
  error: { code: string; message: string } | null;
}

/** `KEY=value` lines of an environment file. */
function readEnvironment(path: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) env[match[1]!] = match[2]!.trim();
  }
  return env;
}

/** /proc/PID/status as key -> value. */
function procStatus(pid: number): Record<string, string> {
  const status: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) status[line.slice(0, colon)] = line.slice(colon + 1).trim();
  }
  return status;
}

/** Starts `command` socket-activated on `socketPath` and waits for the helper's "listening" line. */
function activate(
  command: string[],
  socketPath: string,
  mode: string,
): Promise<{ process: ChildProcess; stderr(): string }> {
  const child = spawn('python3', [ACTIVATE, socketPath, mode, String(BERTH_GID), '--', ...command], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { PATH: process.env.PATH },
  });
  let output = '';
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`berth-helper did not start: ${output}`)), 10_000);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      output += chunk;
      if (output.includes('listening on')) {
        clearTimeout(timer);
        res({ process: child, stderr: () => output });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`berth-helper exited with ${code}: ${output}`));
    });
  });
}
