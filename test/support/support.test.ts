/** The shared test helpers themselves: cleanups that fail must not leave the file's process running. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { until } from './index.js';

test('a cleanup that throws (rm: ENOTEMPTY) still lets the others run, so the file fails and exits', async () => {
  const fixture = fileURLToPath(new URL('../fixtures/cleanup-fails.ts', import.meta.url));
  // Run directly (not under --test), so killing it kills the process that holds the server.
  const child = spawn(process.execPath, ['--import', 'tsx', fixture], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  // Without the fix the echo server's cleanup is skipped and the process never exits on its own.
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearTimeout(killer);
  assert.equal(signal, null, `the fixture hung and was killed:\n${output}`);
  assert.equal(code, 1, output);
  assert.match(output, /ENOTEMPTY/);
});

test('until() returns the value it waited for, and on a timeout names the last value or error it saw', async () => {
  let n = 0;
  assert.equal(await until(() => (++n >= 3 ? `value ${n}` : null), 'the third poll'), 'value 3');
  await assert.rejects(
    until(() => (n > 100 ? 'never' : 0), 'listening', 50),
    /timed out after 50 ms waiting for listening; the last value was 0/,
  );
  await assert.rejects(
    until(() => undefined, 'a status', 50),
    /the last value was undefined/,
  );
  await assert.rejects(
    until(
      () => {
        throw new Error('ECONNREFUSED 127.0.0.1:9');
      },
      'a connection',
      50,
    ),
    /waiting for a connection; it last threw ECONNREFUSED 127\.0\.0\.1:9/,
  );
});
