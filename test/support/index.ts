/** Shared pieces of the tests: temp dirs, engines on temp configs, real targets and clients. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { inspect } from 'node:util';
import type { ForwardStatus } from '../../app/api/contract.js';
import type { ForwardInput } from '../../app/config/schema.js';
import { ConfigStore } from '../../app/config/store.js';
import { Engine, type EngineOptions } from '../../app/engine/engine.js';
import { nativeTcp } from '../../app/engine/tcp-forwarder.js';
import { nativeUdp } from '../../app/engine/udp-forwarder.js';

const cleanups = new WeakMap<TestContext, (() => unknown)[]>();

/**
 * Runs `cleanup` when the test ends, last registered first (a temp folder goes after whatever writes in it
 * has closed), and every one runs even if another throws; the errors are rethrown at the end. Plain
 * `t.after` hooks run first registered first and node:test skips the rest after one throws: a server left
 * listening then keeps the file's process alive until --test-timeout.
 */
export function onCleanup(t: TestContext, cleanup: () => unknown): void {
  let stack = cleanups.get(t);
  if (!stack) {
    const own: (() => unknown)[] = [];
    cleanups.set(t, (stack = own));
    t.after(async () => {
      const errors: unknown[] = [];
      for (const run of own.splice(0).reverse()) {
        try {
          await run();
        } catch (err) {
          errors.push(err);
        }
      }
      if (errors.length === 1) throw errors[0];
      if (errors.length > 1) throw new AggregateError(errors, `${errors.length} cleanups failed`);
    });
  }
  stack.push(cleanup);
}

/** A temp folder removed when the test ends. */
export async function tempDir(t: TestContext, prefix = 'berth-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  onCleanup(t, () => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A started engine on a temp config, closed when the test ends. */
export async function startEngine(
  t: TestContext,
  options: Omit<EngineOptions, 'store'> = {},
): Promise<{ engine: Engine; dir: string; configFile: string }> {
  const dir = await tempDir(t);
  const configFile = join(dir, 'config.json');
  const engine = new Engine({ store: new ConfigStore(configFile), ...options });
  await engine.start();
  onCleanup(t, () => engine.close());
  return { engine, dir, configFile };
}

/** A port that was free a moment ago on `host` (the kernel picks it). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = net.createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A TCP server closed when the test ends; `handler` gets each connection. */
export async function tcpServer(
  t: TestContext,
  handler: (socket: net.Socket) => void,
  host = '127.0.0.1',
  options: net.ServerOpts = { allowHalfOpen: true },
  port = 0,
): Promise<{ server: net.Server; port: number }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer(options, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    handler(socket);
  });
  server.listen(port, host);
  await once(server, 'listening');
  onCleanup(t, async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return { server, port: (server.address() as net.AddressInfo).port };
}

/** An echo target: everything received is sent back; the FIN is echoed too (half-close aware). */
export function echo(socket: net.Socket): void {
  socket.pipe(socket);
}

/** Adds a TCP forward from a free local port to `target` and returns the listen port. */
export async function addForward(
  engine: Engine,
  id: string,
  target: ForwardInput['target'],
  extra: Partial<ForwardInput> = {},
): Promise<number> {
  const address = extra.listen?.address ?? '127.0.0.1';
  const port = extra.listen?.port ?? (await freePort(address));
  // Off unless asked for: these tests count what their targets see, and a health check would be one more
  // connection. The checks have tests of their own (test/engine/health.test.ts).
  const health = extra.health ?? { check: 'off' as const };
  const forward = { id, target, ...extra, health, listen: { address, port } };
  const status = await engine.call('add', { forward });
  if (extra.enabled !== false && status.state !== 'listening') {
    throw new Error(`forward ${id} did not start: ${JSON.stringify(status.error)}`);
  }
  return port;
}

/** Connects to host:port; resolves once connected. */
export async function connect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  const socket = net.connect({ port, host, allowHalfOpen: true });
  await once(socket, 'connect');
  return socket;
}

/** Everything a socket sends until it ends, as one buffer. */
export async function readAll(socket: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  await once(socket, 'end');
  return Buffer.concat(chunks);
}

/**
 * Waits until `check` returns a truthy value (and returns it), polling every 10 ms; after `limitMs` it fails
 * saying what it waited for and the last value `check` returned, or the last error it threw (a check that
 * throws is tried again: a page or a socket may simply not be there yet).
 */
export async function until<T>(
  check: () => T | Promise<T>,
  what: string,
  limitMs = 5000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + limitMs;
  let last: { value: unknown } | { error: unknown } = { value: undefined };
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
      last = { value };
    } catch (error) {
      last = { error };
    }
    if (Date.now() > deadline) {
      const seen =
        'error' in last
          ? `it last threw ${last.error instanceof Error ? last.error.message : inspect(last.error)}`
          : `the last value was ${inspect(last.value, { depth: 4, breakLength: Infinity })}`;
      throw new Error(`timed out after ${limitMs} ms waiting for ${what}; ${seen}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Resolves to true when a fresh listener can bind host:port right now. */
export async function canBind(port: number, host = '127.0.0.1'): Promise<boolean> {
  const server = net.createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Resolves when the socket has closed, whether cleanly or by an error (returned, if any). */
export function closed(socket: net.Socket): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    let error: NodeJS.ErrnoException | undefined;
    socket.on('error', (err) => (error = err));
    // Read (and drop) to see the FIN, and answer it, or a half-open socket never closes.
    socket.resume();
    socket.on('end', () => socket.end());
    socket.once('close', () => resolve(error));
  });
}

/** A ForwardStatus as the engine reports it, listening with zero counters; `extra` overrides fields. */
export function forwardStatus(id: string, extra: Partial<ForwardStatus> = {}): ForwardStatus {
  return {
    id,
    enabled: true,
    protocol: 'tcp',
    listen: { address: '127.0.0.1', port: 8000 },
    target: { host: '127.0.0.1', port: 9000 },
    state: 'listening',
    error: null,
    health: { state: 'unknown', checkedAt: null, failures: 0, message: null },
    lastError: null,
    connections: { active: 0, total: 0 },
    bytes: { toTarget: 0, fromTarget: 0 },
    errors: 0,
    ...extra,
  };
}

/**
 * Stops `child` when the test ends: SIGTERM first, so a Berth stops its backends (a SIGKILL would orphan them),
 * then SIGKILL if it has not exited after 10 s. Registered after the temp folder, so it runs before it goes.
 */
export function stopOnCleanup(t: TestContext, child: ChildProcess): void {
  onCleanup(t, async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  });
}

/**
 * A port on `host` where connection attempts go unanswered: a listener (python3) that never accepts, with its
 * queue filled, so the kernel drops further SYNs. Stopped when the test ends.
 */
export async function silentListener(t: TestContext, host = '127.0.0.1', port = 0): Promise<number> {
  const python = spawn('python3', [
    '-c',
    'import socket,sys,time\ns=socket.socket();s.bind((sys.argv[1],int(sys.argv[2])));s.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(120)',
    host,
    String(port),
  ]);
  onCleanup(t, () => python.kill('SIGKILL'));
  const [line] = (await once(python.stdout, 'data')) as [Buffer];
  const silent = Number(line.toString().trim());
  const fillers: net.Socket[] = [];
  onCleanup(t, () => fillers.forEach((s) => s.destroy()));
  for (let i = 0; i < 4; i++) {
    const filler = net.connect(silent, host);
    filler.on('error', () => undefined);
    fillers.push(filler);
  }
  // The fillers' handshakes complete (the first) or stall (the rest) in the kernel, without the listener.
  await new Promise((resolve) => setTimeout(resolve, 200));
  return silent;
}

/** The data planes a forwarding suite runs on, each with why it cannot run here (its relay missing), or false. */
export function dataPlanes(
  protocol: 'tcp' | 'udp',
): { dataPlane: 'native' | 'node'; skip: string | false }[] {
  const relay = protocol === 'tcp' ? nativeTcp() : nativeUdp();
  const missing = `the addon with the ${protocol.toUpperCase()} relay is not built (npm run build:native)`;
  return [
    { dataPlane: 'native', skip: relay ? false : missing },
    { dataPlane: 'node', skip: false },
  ];
}
