/** The Electronegativity gate (scripts/electronegativity.ts): clean on main/, and able to fail. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const gate = (input?: string) =>
  run(process.execPath, ['--import', 'tsx', 'scripts/electronegativity.ts', ...(input ? [input] : [])], {
    maxBuffer: 16 * 1024 * 1024,
  });

test('main/ has no high-severity Electronegativity finding', async () => {
  const { stdout } = await gate();
  assert.match(stdout, /electronegativity: \d+ finding\(s\), 0 high or critical/);
});

test('the gate fails on a window without context isolation', async () => {
  await assert.rejects(gate('test/fixtures/insecure-electron'), (err: { code: number; stdout: string }) => {
    assert.equal(err.code, 1);
    assert.match(err.stdout, /HIGH FIRM CONTEXT_ISOLATION_JS_CHECK "main.js"/);
    return true;
  });
});
