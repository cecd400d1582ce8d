/**
 * The fd-receive addon against a fake helper over a real Unix socket: every malformed answer (two fds, no fd,
 * a socket of the wrong type or address, a pipe, a truncated control message, garbage) is rejected with a
 * clear error and leaves no fd open, over 1,000 requests, on both receive paths (Linux MSG_CMSG_CLOEXEC and the
 * macOS fcntl path). Also: argument checks, error shape, the caller's stack, and the test-only switch.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createHelperBinder, HelperError, type HelperBinder } from '../../app/helper/helper-binder.js';
import { loadBerthNative } from '../../app/native/addon.js';
import { requestHelper, type HelperRequest, type ReceivePath } from '../../app/native/helper-request.js';
import {
  openFds,
  missingBuild,
  onFreePort,
  ROOT,
  tempDir,
  waitListening,
  type RunningHelper,
} from '../support/helper-harness.js';
import { onCleanup } from '../support/index.js';

const skip = missingBuild();
const FAKE = join(ROOT, 'test', 'fixtures', 'helper', 'fake-helper.py');
const PATHS: ReceivePath[] = ['msg-cmsg-cloexec', 'fcntl'];

/** What each misbehaviour must be rejected with. */
const BAD: Record<string, { code: string; message: RegExp }> = {
  'two-fds': { code: 'EHELPERBADREPLY', message: /sent 2 fds where exactly one was expected/ },
  'no-fd': { code: 'EHELPERBADREPLY', message: /replied OK but sent no socket/ },
  'wrong-type': { code: 'EHELPERBADREPLY', message: /not the TCP socket requested/ },
  'wrong-address': { code: 'EHELPERBADREPLY', message: /not bound to the requested address and port/ },
  'not-listening': { code: 'EHELPERBADREPLY', message: /is not listening/ },
  'not-socket': { code: 'EHELPERBADREPLY', message: /is not a socket/ },
  'many-fds': { code: 'EHELPERBADREPLY', message: /MSG_CTRUNC/ },
  'fd-on-error': { code: 'EHELPERDENIED', message: /refused: user 1 is not allowed/ },
  garbage: { code: 'EHELPERBADREPLY', message: /not a berth-helper protocol 1 frame/ },
  short: { code: 'EHELPERBADREPLY', message: /not a berth-helper protocol 1 frame \(10 bytes\)/ },
  close: { code: 'EHELPERBADREPLY', message: /closed the connection without replying/ },
};

// The error a bind through `binder` fails with, on a port nobody else holds (the fakes bind what they are asked).
async function rejection(binder: HelperBinder, protocol: 'tcp' | 'udp'): Promise<HelperError> {
  return onFreePort(10000, 32000, async (port) => {
    const err = await binder.bind(protocol, '127.0.0.1', port).then(
      (fd) => {
        closeSync(fd);
        throw new Error(`port ${port}: the addon accepted a bad answer`);
      },
      (e: HelperError) => e,
    );
    if (err.code === 'EADDRINUSE') throw err;
    return err;
  });
}

const O_CLOEXEC = 0o2000000;
const fdFlags = (fd: number): number =>
  parseInt(/flags:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8);

// The other suites skip without the build; this one fails, so a broken `npm ci` build cannot pass unnoticed.
test('native/ is built (npm ci runs node-gyp for it)', () => {
  assert.equal(missingBuild(), undefined);
});

describe('addon against a fake helper', { skip }, () => {
  let dir: ReturnType<typeof tempDir>;
  const fakes = new Map<string, RunningHelper>();
  const socketOf = (mode: string) => fakes.get(mode)!.socketPath;

  before(async () => {
    dir = tempDir();
    const modes = [...Object.keys(BAD), 'ok', 'split', 'silent', 'eaddrinuse'];
    await Promise.all(
      modes.map(async (mode) => {
        const socketPath = join(dir.path, `${mode}.sock`);
        const child = spawn('python3', [FAKE, socketPath, mode], { stdio: ['ignore', 'ignore', 'pipe'] });
        fakes.set(mode, await waitListening(child, socketPath));
      }),
    );
  });

  after(async () => {
    await Promise.all([...fakes.values()].map((fake) => fake.stop()));
    dir.remove();
  });

  for (const receivePath of PATHS) {
    describe(`receive path ${receivePath}`, () => {
      test('accepts a correct socket, close-on-exec and verified', async () => {
        for (const protocol of ['tcp', 'udp'] as const) {
          const binder = createHelperBinder(socketOf('ok'), { receivePath });
          const fd = await onFreePort(10000, 32000, (port) => binder.bind(protocol, '127.0.0.1', port));
          try {
            assert.ok(fdFlags(fd) & O_CLOEXEC, 'the received fd is close-on-exec');
            assert.match(readlinkSync(`/proc/self/fd/${fd}`), /^socket:/);
          } finally {
            closeSync(fd);
          }
        }
      });

      test('reads a reply whose fd came with its first byte and the rest later', async () => {
        const binder = createHelperBinder(socketOf('split'), { receivePath });
        const fd = await onFreePort(10000, 32000, (port) => binder.bind('tcp', '127.0.0.1', port));
        assert.ok(fdFlags(fd) & O_CLOEXEC);
        closeSync(fd);
      });

      for (const [mode, expected] of Object.entries(BAD)) {
        test(`rejects ${mode} and keeps no fd`, async () => {
          const before = openFds();
          const binder = createHelperBinder(socketOf(mode), { receivePath });
          const err = await rejection(binder, 'tcp');
          assert.ok(err instanceof HelperError);
          assert.equal(err.code, expected.code);
          assert.match(err.message, expected.message);
          assert.deepEqual(openFds(), before);
        });
      }

      test('1,000 bad and good answers leave /proc/self/fd exactly as it was', async () => {
        const modes = [...Object.keys(BAD), 'ok'];
        const before = openFds();
        const binders = new Map(modes.map((m) => [m, createHelperBinder(socketOf(m), { receivePath })]));
        // Eight at a time: concurrency is where a forgotten close or a mixed-up fd would show.
        let next = 0;
        const worker = async () => {
          while (next < 1000) {
            const mode = modes[next % modes.length]!;
            next += 1;
            const binder = binders.get(mode)!;
            if (mode === 'ok') {
              closeSync(await onFreePort(10000, 32000, (port) => binder.bind('udp', '127.0.0.1', port)));
            } else {
              assert.equal((await rejection(binder, 'tcp')).code, BAD[mode]!.code);
            }
          }
        };
        await Promise.all(Array.from({ length: 8 }, worker));
        assert.deepEqual(openFds(), before);
      });
    });
  }

  test('a helper that never answers times out with a sentence, and leaks nothing', async () => {
    const before = openFds();
    const binder = createHelperBinder(socketOf('silent'), { timeoutMs: 300 });
    const started = Date.now();
    await assert.rejects(binder.bind('tcp', '127.0.0.1', 443), {
      code: 'EHELPERTIMEOUT',
      message: /TCP 127\.0\.0\.1:443 needs privileges.*did not answer within 0\.3 s.*berth-helper --socket/,
    });
    assert.ok(Date.now() - started < 2000);
    assert.deepEqual(openFds(), before);
  });

  test("the helper's own bind error keeps its Node errno code for the engine", async () => {
    await assert.rejects(createHelperBinder(socketOf('eaddrinuse')).bind('tcp', '127.0.0.1', 80), {
      code: 'EADDRINUSE',
      errno: -98,
      syscall: 'bind',
    });
  });

  test('async errors carry the stack of the caller', async () => {
    const err = await createHelperBinder(socketOf('no-fd'))
      .bind('tcp', '127.0.0.1', 80)
      .then(
        () => new Error('accepted'),
        (e: Error) => e,
      );
    assert.match(err.stack ?? '', /helper\/addon\.test\.ts/);
  });
});

describe('addon without a helper', { skip }, () => {
  test('says which port needs the helper, where it looked, and how to start it', async () => {
    const binder = createHelperBinder('/nonexistent/berth/helper.sock');
    await assert.rejects(binder.bind('tcp', '127.0.0.1', 80), (err: HelperError) => {
      assert.equal(err.code, 'EHELPERUNAVAILABLE');
      assert.equal(err.syscall, 'connect');
      assert.match(err.message, /^TCP 127\.0\.0\.1:80 needs privileges/);
      assert.match(err.message, /no berth-helper answers at \/nonexistent\/berth\/helper\.sock/);
      assert.match(
        err.message,
        /sudo native\/build\/Release\/berth-helper --socket \/nonexistent\/berth\/helper\.sock --allow-uid \d+/,
      );
      return true;
    });
  });

  test('the socket path may be resolved at each request', async () => {
    let path = '/nonexistent/first.sock';
    const binder = createHelperBinder(() => path);
    await assert.rejects(binder.ping(), { message: /\/nonexistent\/first\.sock/ });
    path = '/nonexistent/second.sock';
    await assert.rejects(binder.ping(), { message: /\/nonexistent\/second\.sock/ });
    path = 'relative.sock';
    await assert.rejects(binder.ping(), TypeError);
  });

  test('a file that is not a socket is reported the same way', async (t) => {
    const dir = tempDir();
    onCleanup(t, () => dir.remove());
    const path = join(dir.path, 'not-a-socket');
    writeFileSync(path, '');
    await assert.rejects(createHelperBinder(path).bind('udp', '::1', 53), {
      code: 'EHELPERUNAVAILABLE',
      message: /UDP \[::1\]:53 needs privileges/,
    });
  });

  test('bad arguments are TypeErrors, in TypeScript and again in C++', async () => {
    const binder = createHelperBinder('/run/berth/helper.sock');
    await assert.rejects(binder.bind('sctp' as 'tcp', '127.0.0.1', 80), TypeError);
    await assert.rejects(binder.bind('tcp', 'localhost', 80), TypeError);
    await assert.rejects(binder.bind('tcp', 'fe80::1%eth0', 80), TypeError);
    for (const port of [0, 65536, 1.5, NaN])
      await assert.rejects(binder.bind('tcp', '127.0.0.1', port), TypeError);
    assert.throws(() => createHelperBinder('relative.sock'), TypeError);
    const native = loadBerthNative();
    const call = (...args: unknown[]) => (native.request as (...a: unknown[]) => Promise<unknown>)(...args);
    const bind = {
      socketPath: '/x',
      op: 'bind',
      protocol: 'tcp',
      address: '127.0.0.1',
      port: 80,
      timeoutMs: 1000,
      receivePath: 'fcntl',
    };
    const ping = { socketPath: '/x', op: 'ping', timeoutMs: 1000, receivePath: 'fcntl' };
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ ...bind, address: 'localhost' }, /IPv4 or IPv6 literal/],
      [{ ...bind, port: 0 }, /port must be/],
      [{ ...bind, receivePath: 'magic' }, /receivePath/],
      [{ ...ping, socketPath: '/x'.repeat(100) }, /fits a Unix socket/],
      [{ ...bind, op: 'launch' }, /op must be/],
      [{ ...bind, protocol: 'sctp' }, /protocol must be/],
      [{ ...bind, timeoutMs: 0 }, /timeoutMs must be/],
    ];
    assert.throws(() => call(), TypeError);
    assert.throws(() => call('/x', 'bind', 'tcp', '127.0.0.1', 80, 1000, 'fcntl'), TypeError);
    assert.throws(() => call({ ...ping, port: 80 }), /a ping takes no port/);
    for (const [options, message] of bad) {
      assert.throws(
        () => call(options),
        (err: Error) => err instanceof TypeError && message.test(err.message),
      );
      // The TypeScript wrapper refuses the same request before the addon sees it.
      const refused = { request: () => assert.fail(`the addon saw ${JSON.stringify(options)}`) };
      const wrapper = refused as unknown as Parameters<typeof requestHelper>[0];
      assert.throws(() => requestHelper(wrapper, options as unknown as HelperRequest), TypeError);
    }
  });

  test('only the test build can leave close-on-exec off', () => {
    assert.equal(loadBerthNative().testLeaveCloexecOff, undefined, 'the production addon has no such switch');
    assert.equal(typeof loadBerthNative('berth_native_test').testLeaveCloexecOff, 'function');
  });
});
