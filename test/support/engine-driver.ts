/**
 * The test side of engine-as-nobody.ts: runs the real Engine under `setpriv` as another user and sends it one
 * JSON command per line. Shared by the close-on-exec regression and the installer's helper test.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from './helper-harness.js';

const DRIVER = join(ROOT, 'test', 'fixtures', 'helper', 'engine-as-nobody.ts');

/** A running engine-as-nobody.ts, as the user `setprivArgs` names (e.g. `--reuid=65534 --regid=65534 ...`). */
export class EngineDriver {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;
  private stderr = '';

  constructor(setprivArgs: string[], options: { stateDir: string } & Record<string, unknown>) {
    this.child = spawn(
      'setpriv',
      [...setprivArgs, process.execPath, '--import', 'tsx', DRIVER, JSON.stringify(options)],
      {
        cwd: ROOT,
        env: { PATH: process.env.PATH, HOME: options.stateDir },
      },
    );
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (chunk: string) => (this.stderr += chunk));
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  /** Sends one command and resolves to its result; rejects with the driver's error or stderr. */
  async send(op: string, arg?: number): Promise<unknown> {
    this.child.stdin.write(`${JSON.stringify({ op, arg })}\n`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new Error(`Berth gave no answer to ${op}: ${this.stderr}`)), 30_000);
    });
    try {
      const next = await Promise.race([this.lines.next(), timeout]);
      if (next.done) throw new Error(`Berth exited during ${op}: ${this.stderr}`);
      const answer = JSON.parse(next.value) as { ok: boolean; result?: unknown; error?: { message: string } };
      if (!answer.ok) throw new Error(`${op} failed in Berth: ${answer.error?.message}`);
      return answer.result;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes the engine (releasing its ports) and waits for the process to exit. */
  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((res) => this.child.once('exit', res));
    await this.send('close').catch(() => this.child.kill('SIGKILL'));
    await exited;
  }
}
