/** Runs the real `berth` CLI and `berth serve` as child processes for tests: the one launcher of them all. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { stopOnCleanup, tempDir } from './index.js';

const ROOT = join(import.meta.dirname, '..', '..');
const cli = join(ROOT, 'app', 'cli.ts');
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
  /** With `ui`: the printed `http://127.0.0.1:PORT/#token=TOKEN` and its token; else empty strings. */
  url: string;
  token: string;
  output: () => string;
  cli: (...args: string[]) => Promise<Result>;
  /** SIGTERM, then the exit code once it has exited (its code if it already had). */
  stop: () => Promise<number | null>;
}

/** How to start `berth serve`. */
export interface ServeOptions {
  /** The folder for config.json and the control socket; a temp folder of the test by default. */
  dir?: string;
  /** Serve the UI on a random loopback port and wait for its line (else `--no-ui`). */
  ui?: boolean;
  timeoutMs?: number;
}

/**
 * Starts `berth serve` on `dir`'s config and control socket and waits until it runs. With a test context it
 * is stopped when the test ends (before its temp folder goes: Berth writes its backend records there as it
 * stops); without one the caller stops it.
 */
export async function serve(
  t: TestContext | undefined,
  options: ServeOptions | string = {},
): Promise<Instance> {
  const { dir, ui = false, timeoutMs = 20_000 } = typeof options === 'string' ? { dir: options } : options;
  if (!dir && !t) throw new Error('serve() needs a test context or a folder');
  const home = dir ?? (await tempDir(t!));
  const config = join(home, 'config.json');
  const control = join(home, 'run', 'control.sock');
  const args = ['--import', 'tsx', cli, 'serve', '--config', config, '--control', control];
  args.push(...(ui ? ['--ui', '127.0.0.1:0'] : ['--no-ui']));
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, HOME: home, XDG_CONFIG_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (t) stopOnCleanup(t, child);
  const exited = once(child, 'exit');
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const ready = ui ? /^Berth UI: (\S+)$/m : /Berth is running/;
  const deadline = Date.now() + timeoutMs;
  let match: RegExpExecArray | null;
  while (!(match = ready.exec(output))) {
    if (child.exitCode !== null) throw new Error(`berth serve exited ${child.exitCode}:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`berth serve did not start in ${timeoutMs} ms:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const url = ui ? (match[1] ?? '') : '';
  return {
    child,
    dir: home,
    config,
    control,
    url,
    token: url.split('#token=')[1] ?? '',
    output: () => output,
    // The control flag goes right after the command: anything after `--` belongs to a backend.
    cli: (command, ...rest) => berth([command, '--control', control, ...rest]),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      return code;
    },
  };
}
