/** The shared test helpers themselves: cleanups that fail must not leave the file's process running. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

test('a cleanup that throws (rm: ENOTEMPTY) still lets the others run, so the file fails and exits', async () => {
  const fixture = fileURLToPath(new URL('./fixtures/cleanup-fails.ts', import.meta.url));
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
