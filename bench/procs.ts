/**
 * Child processes of a bench run: every one is tracked by pid and killed on every exit path (normal end,
 * error, Ctrl+C, SIGTERM), so a run never leaves a forwarder or target behind.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';

const children = new Set<ChildProcess>();
/** Children started in a process group of their own (socat and its per-connection forks). */
const groups = new WeakSet<ChildProcess>();
const cleanups: (() => void)[] = [];
let hooked = false;

function killAll(signal: NodeJS.Signals): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(groups.has(child) ? -child.pid : child.pid, signal);
      } catch {
        // Already gone.
      }
    }
  }
}

/** Runs `cleanup` (synchronous) when the bench exits, however it exits. */
export function atExit(cleanup: () => void): void {
  hookExit();
  cleanups.push(cleanup);
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    killAll('SIGKILL');
    for (const cleanup of cleanups) {
      try {
        cleanup();
      } catch {
        // Best effort on the way out.
      }
    }
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      killAll('SIGTERM');
      process.stderr.write(`\nbench: ${signal}, children stopped\n`);
      process.exit(130);
    });
  }
}

let forwarderCpus: string | undefined;

/**
 * Pins this process (and so every child started afterwards) to `loadCpus`, and the forwarders started
 * through `forwarder()` to `cpus`: each forwarder under test then runs in the same place, which removes
 * the scheduler's placement from A/B comparisons.
 */
export async function pin(loadCpus: string, cpus: string): Promise<void> {
  await run('taskset', ['-a', '-p', '-c', loadCpus, String(process.pid)], 5000);
  forwarderCpus = cpus;
}

/** `command args`, prefixed with taskset when forwarders are pinned (see `pin`). */
export function forwarder(command: string, args: string[]): [string, string[]] {
  return forwarderCpus ? ['taskset', ['-c', forwarderCpus, command, ...args]] : [command, args];
}

/** Starts a tracked child; it is killed when the bench exits, whatever the reason. */
export function start(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  hookExit();
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options });
  children.add(child);
  if (options.detached) groups.add(child);
  child.once('exit', () => children.delete(child));
  child.once('error', () => children.delete(child));
  return child;
}

/** Stops a child we started: SIGTERM, then SIGKILL after `graceMs`. */
export async function stop(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = once(child, 'exit');
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(timer);
}

/** Runs a command to completion with a time bound; resolves to its stdout (rejects on failure). */
export async function run(command: string, args: string[], timeoutMs: number): Promise<string> {
  const child = start(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const timer = setTimeout(() => {
    if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }, timeoutMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${command} exited ${code}: ${(err || out).trim().slice(0, 400)}`);
  return out;
}

/** The first line a child prints on stdout, parsed as JSON (children announce their ports this way). */
export async function firstLine<T>(child: ChildProcess, what: string, timeoutMs = 15_000): Promise<T> {
  if (!child.stdout) throw new Error(`${what} has no stdout`);
  const lines = createInterface({ input: child.stdout });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    if (stderr.length > 4000) stderr = stderr.slice(-4000);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    for await (const line of lines) {
      if (line.startsWith('{')) return JSON.parse(line) as T;
    }
  } finally {
    clearTimeout(timer);
  }
  throw new Error(`${what} exited before it was ready: ${stderr.trim().slice(-1000)}`);
}

/** Resolves when host:port accepts a connection; bounded by `timeoutMs`. */
export async function waitForPort(port: number, host = '127.0.0.1', timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; attempt < 1000 && Date.now() < deadline; attempt++) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
}

/** A port that was free a moment ago (the kernel picks it). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = net.createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resident memory of a process in bytes: current (VmRSS) and peak (VmHWM), from /proc. */
export function memory(pid: number): { rss: number; hwm: number } {
  if (!existsSync(`/proc/${pid}/status`)) return { rss: NaN, hwm: NaN };
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    return match?.[1] ? Number(match[1]) * 1024 : NaN;
  };
  return { rss: field('VmRSS'), hwm: field('VmHWM') };
}

/**
 * CPU seconds a process has used (user + system), its reaped children included (socat forks one per
 * connection). From /proc/PID/stat, in clock ticks of 10 ms.
 */
export function cpuSeconds(pid: number): number {
  if (!existsSync(`/proc/${pid}/stat`)) return NaN; // not Linux: the CPU rows stay empty
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i] ?? 0), 0);
  return ticks / 100;
}

/** CPU seconds of every live process in the process groups `pgids`, their reaped children included. */
export function groupCpuSeconds(pgids: number[]): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (pgids.includes(Number(fields[2]))) total += cpuSeconds(Number(entry));
    } catch {
      // The process ended meanwhile.
    }
  }
  return total;
}

/** Soft and hard open-file limits of this process. */
export function fileLimits(): { soft: number; hard: number } {
  // Linux only: elsewhere the limits are unknown and the bench does not cap anything.
  if (!existsSync('/proc/self/limits')) return { soft: Infinity, hard: Infinity };
  const text = readFileSync('/proc/self/limits', 'utf8');
  const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  const value = (s: string | undefined): number =>
    s === undefined || s === 'unlimited' ? Infinity : Number(s);
  return { soft: value(match?.[1]), hard: value(match?.[2]) };
}

/** Absolute path of a program on PATH, or undefined when it is not installed. */
export function which(program: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, program);
    if (dir && existsSync(candidate)) return candidate;
  }
  for (const dir of ['/usr/sbin', '/sbin']) {
    if (existsSync(join(dir, program))) return join(dir, program);
  }
  return undefined;
}
