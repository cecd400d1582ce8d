/** Shared pieces of the helper tests: starting a real berth-helper, raw protocol frames, ports, fd counts. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The helper under test: the release build, or another build (the ASan one) named by BERTH_HELPER_BIN. */
export const HELPER_BIN = process.env.BERTH_HELPER_BIN
  ? resolve(process.env.BERTH_HELPER_BIN)
  : join(ROOT, 'native', 'build', 'Release', 'berth-helper');

/** Why the native tests cannot run, or undefined when the build is there. */
export function missingBuild(): string | undefined {
  for (const file of [
    HELPER_BIN,
    join(ROOT, 'native', 'build', 'Release', 'berth_native.node'),
    join(ROOT, 'native', 'build', 'Release', 'berth_native_test.node'),
  ]) {
    if (!existsSync(file)) return `${file} is not built: run npm ci (or npm run build:native)`;
  }
  return undefined;
}

/** True when this process runs as root. */
export const isRoot = process.getuid?.() === 0;

/**
 * Why a test that runs berth-helper as root and Berth as nobody on a port in `ports` cannot run here, or false.
 * `linuxNeeds` says what it uses of Linux (setpriv, /proc).
 */
export function helperAsRootSkip(ports: { lo: number }, linuxNeeds = 'uses setpriv'): string | false {
  const built = missingBuild();
  if (built) return built;
  if (!isRoot) return 'needs root: runs berth-helper as root and Berth as nobody (CI runs as root)';
  if (process.platform !== 'linux') return `needs Linux: ${linuxNeeds}`;
  const start = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
  if (start <= ports.lo) {
    return `needs net.ipv4.ip_unprivileged_port_start > ${ports.lo} (it is ${start}): nobody could bind the port directly and never ask the helper`;
  }
  return false;
}

/** The uid and gid of `nobody` on Debian. */
export const NOBODY = 65534;

/** A fresh temporary folder, removed by the returned function. */
export function tempDir(prefix = 'berth-helper-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A running berth-helper and what it printed. */
export interface RunningHelper {
  process: ChildProcess;
  socketPath: string;
  stderr(): string;
  stop(): Promise<number | null>;
}

/** Starts berth-helper with `args` (plus --socket unless given) and waits until it listens. */
export async function startHelper(
  socketPath: string,
  args: string[] = [],
  options: { command?: string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<RunningHelper> {
  const argv = [...(options.command ?? [HELPER_BIN]), '--socket', socketPath, ...args];
  const child = spawn(argv[0]!, argv.slice(1), {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: options.env ?? process.env,
  });
  return waitListening(child, socketPath);
}

/** Waits for a spawned helper's "listening" line; rejects with its stderr if it exits first. */
export function waitListening(child: ChildProcess, socketPath: string): Promise<RunningHelper> {
  let output = '';
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const running: RunningHelper = {
    process: child,
    socketPath,
    stderr: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`berth-helper did not start: ${output}`)), 10_000);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      output += chunk;
      if (output.includes('listening on')) {
        clearTimeout(timer);
        res(running);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`berth-helper exited with ${code}: ${output}`));
    });
  });
}

/** Runs berth-helper to completion (for flag checks). */
export function runHelper(args: string[]): { status: number | null; stderr: string; stdout: string } {
  const result = spawnSync(HELPER_BIN, args, { encoding: 'utf8', timeout: 10_000 });
  return { status: result.status, stderr: result.stderr, stdout: result.stdout };
}

/** Request frame fields (docs/helper-protocol.md); anything left out is zero. */
export interface FrameFields {
  magic?: string;
  version?: number;
  op?: number;
  protocol?: number;
  family?: number;
  address?: number[];
  port?: number;
  reserved?: number[];
}

/** Encodes a request frame by hand, so tests can also build frames the addon never would. */
export function encodeRequest(fields: FrameFields): Buffer {
  const frame = Buffer.alloc(32);
  frame.write(fields.magic ?? 'BRTH', 0, 'latin1');
  frame[4] = fields.version ?? 1;
  frame[5] = fields.op ?? 0;
  frame[6] = fields.protocol ?? 0;
  frame[7] = fields.family ?? 0;
  Buffer.from(fields.address ?? []).copy(frame, 8);
  frame.writeUInt16BE(fields.port ?? 0, 24);
  Buffer.from(fields.reserved ?? []).copy(frame, 26);
  return frame;
}

/** A ping frame. */
export const PING = encodeRequest({ op: 1 });

/** A TCP bind frame for 127.0.0.1:port. */
export function bindFrame(port: number, protocol: 'tcp' | 'udp' = 'tcp'): Buffer {
  return encodeRequest({
    op: 2,
    protocol: protocol === 'tcp' ? 1 : 2,
    family: 4,
    address: [127, 0, 0, 1],
    port,
  });
}

/** A decoded reply frame (fds are not visible to a Node client: it only reads the bytes). */
export interface RawReply {
  length: number;
  op: number;
  status: number;
  errno: number;
  version: number;
  syscall: string;
  message: string;
}

/** Sends raw bytes as one request (ending with EOF unless `end` is false) and reads the reply. */
export function rawRequest(
  socketPath: string,
  bytes: Buffer,
  end = true,
  timeoutMs = 10_000,
): Promise<RawReply> {
  return new Promise((res, rej) => {
    const socket = net.connect(socketPath);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      rej(new Error('no reply from berth-helper'));
    }, timeoutMs);
    socket.on('connect', () => {
      if (end) socket.end(bytes);
      else socket.write(bytes);
    });
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', (err) => {
      clearTimeout(timer);
      rej(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      res(decodeReply(Buffer.concat(chunks)));
    });
  });
}

/** Decodes a reply frame. */
export function decodeReply(frame: Buffer): RawReply {
  const text = (start: number, size: number) =>
    frame
      .subarray(start, start + size)
      .toString('utf8')
      .replace(/\0+$/, '');
  if (frame.length !== 160 || frame.toString('latin1', 0, 4) !== 'BRTH') {
    return { length: frame.length, op: -1, status: -1, errno: 0, version: 0, syscall: '', message: '' };
  }
  return {
    length: frame.length,
    op: frame[5]!,
    status: frame[6]!,
    errno: frame.readInt32BE(8),
    version: frame.readUInt32BE(12),
    syscall: text(16, 16),
    message: text(32, 128),
  };
}

/** Reply status values. */
export const Status = { ok: 0, denied: 1, badRequest: 2, failed: 3 } as const;

/** The fds this process has open now, with what each points at (compare two of them with deepEqual). */
export function openFds(): Record<string, string> {
  const fds: Record<string, string> = {};
  for (const name of readdirSync('/proc/self/fd')) {
    try {
      fds[name] = readlinkSync(`/proc/self/fd/${name}`);
    } catch {
      // The fd used to read the folder itself is gone by now.
    }
  }
  return fds;
}

/** How many fds this process has open now. */
export function fdCount(): number {
  return Object.keys(openFds()).length;
}

/** A random port in [lo, hi]. */
export function randomPort(lo: number, hi: number): number {
  return lo + Math.floor(Math.random() * (hi - lo + 1));
}

/** Tries `attempt` on random ports of [lo, hi] until it does not fail with EADDRINUSE (other suites run concurrently). */
export async function onFreePort<T>(
  lo: number,
  hi: number,
  attempt: (port: number) => Promise<T>,
): Promise<T> {
  let last: unknown;
  for (let i = 0; i < 20; i += 1) {
    try {
      return await attempt(randomPort(lo, hi));
    } catch (err) {
      last = err;
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
  throw last;
}

export { socketInodes } from './fds.js';
