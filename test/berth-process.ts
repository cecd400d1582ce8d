/** Runs the real `berth` CLI and `berth serve` as child processes for tests. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { stopOnCleanup, tempDir } from './support.js';

const cli = new URL('../app/cli.ts', import.meta.url).pathname;
const run = promisify(execFile);

/** What a finished `berth` command printed, and its exit code. */
export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `berth ARGS` to completion. */
export async function berth(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', cli, ...args], {
      env: { ...process.env, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A running `berth serve` and a `berth` CLI bound to its control socket. */
export interface Instance {
  child: ChildProcess;
  dir: string;
  config: string;
  control: string;
  output: () => string;
  cli: (...args: string[]) => Promise<Result>;
}

/** Starts `berth serve --no-ui` on a temp config and control socket; killed at the end of the test. */
export async function serve(t: TestContext, dir?: string): Promise<Instance> {
  const home = dir ?? (await tempDir(t));
  const config = join(home, 'config.json');
  const control = join(home, 'run', 'control.sock');
  const args = ['--import', 'tsx', cli, 'serve', '--no-ui', '--config', config, '--control', control];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  // Before the temp folder goes: Berth writes its backend records there as it stops.
  stopOnCleanup(t, child);
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + 15_000;
  while (!output.includes('Berth is running')) {
    if (child.exitCode !== null) throw new Error(`berth serve exited ${child.exitCode}:\n${output}`);
    if (Date.now() > deadline) throw new Error(`berth serve did not start:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return {
    child,
    dir: home,
    config,
    control,
    output: () => output,
    // The control flag goes right after the command: anything after `--` belongs to a backend.
    cli: (command, ...args) => berth([command, '--control', control, ...args]),
  };
}
