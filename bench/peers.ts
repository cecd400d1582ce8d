/**
 * The forwarders under test, each started on loopback in front of the same targets: Berth (its engine in a
 * child process), socat and haproxy (Debian packages, skipped when absent). Each gets fresh ports.
 */
import { existsSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Forward } from '../app/config/schema.js';
import type { BerthChildSpec } from './berth-child.js';
import {
  cpuSeconds,
  fileLimits,
  firstLine,
  forwarder,
  groupCpuSeconds,
  freePort,
  start,
  stop,
  waitForPort,
  which,
} from './procs.js';
import { sleep } from './stats.js';

/** Where a figure's traffic goes: one port per kind of target. */
export interface Route {
  stream: number;
  echo: number;
  http: number;
  udp: number | undefined;
}

/** What a forwarder forwards to: the target ports. */
export type Targets = Route;

/** A running forwarder (or the direct connection, which has none). */
export interface Peer {
  name: string;
  route: Route;
  /** The process whose memory is measured; undefined for the direct connection. */
  pid: number | undefined;
  /** CPU seconds the forwarder has used so far (undefined for the direct connection). */
  cpu?: () => number;
  /** The control socket, for Berth. */
  control?: string;
  /** haproxy's admin socket (`show info`), the nearest thing it has to Berth's status request. */
  adminSocket?: string;
  stop(): Promise<void>;
}

type Kind = keyof Route;
const KINDS: Kind[] = ['stream', 'echo', 'http', 'udp'];

async function freshRoute(targets: Targets, only: Kind[]): Promise<Route> {
  const route: Route = { stream: 0, echo: 0, http: 0, udp: undefined };
  for (const kind of only) {
    if (targets[kind] !== undefined) route[kind] = await freePort();
  }
  return route;
}

const HERE = import.meta.dirname;

/** Starts Berth's engine in its own process with one forward per target kind. */
export async function startBerth(
  targets: Targets,
  options: {
    dir: string;
    name?: string;
    only?: Kind[];
    /** The bundled Berth child to run (see bundle.ts). */
    bundle: string;
    nofile?: number;
    nodeArgs?: string[];
    /** 'node' runs Berth on its JavaScript data planes (the fallback where the addon lacks the relays). */
    dataPlane?: 'native' | 'node';
    /** The repo whose built addon the bundle loads (the bundle runs from a temp folder). */
    root?: string;
  },
): Promise<Peer> {
  const route = await freshRoute(targets, options.only ?? KINDS);
  const forwards: Forward[] = [];
  for (const kind of options.only ?? KINDS) {
    const target = targets[kind];
    const port = route[kind];
    if (target === undefined || !port) continue;
    forwards.push({
      id: `bench-${kind}`,
      enabled: true,
      protocol: kind === 'udp' ? 'udp' : 'tcp',
      listen: { address: '127.0.0.1', port },
      target: { host: '127.0.0.1', port: target },
    });
  }
  const control = join(options.dir, `control-${forwards.length}-${route.echo}.sock`);
  const spec: BerthChildSpec = {
    dir: options.dir,
    control,
    forwards,
    maxConnections: 65_536,
    dataPlane: options.dataPlane ?? 'native',
  };
  const node = [...(options.nodeArgs ?? []), options.bundle, JSON.stringify(spec)];
  const { soft, hard } = fileLimits();
  // The child needs two fds per forwarded connection: prlimit raises its soft limit up to the hard one.
  const nofile = Math.min(options.nofile ?? 0, hard);
  const [command, args] = forwarder(process.execPath, node);
  // A candidate copy without its own addon build uses this repo's.
  const built = (root: string): string => join(root, 'native', 'build', 'Release', 'berth_native.node');
  const addon = options.root && existsSync(built(options.root)) ? built(options.root) : built(REPO);
  const env = { ...process.env, BERTH_NATIVE_ADDON: addon };
  const child: ChildProcess =
    nofile > soft && which('prlimit')
      ? start('prlimit', [`--nofile=${nofile}:${hard}`, '--', command, ...args], { env })
      : start(command, args, { env });
  const { pid } = await firstLine<{ pid: number }>(child, 'Berth');
  return {
    name: options.name ?? 'berth',
    route,
    pid,
    cpu: () => cpuSeconds(pid),
    control,
    stop: () => stop(child),
  };
}

/** Starts one socat per forward (fork per connection, socat's usual way), or undefined if not installed. */
export async function startSocat(targets: Targets, only: Kind[] = KINDS): Promise<Peer | undefined> {
  const socat = which('socat');
  if (!socat) return undefined;
  const route = await freshRoute(targets, only);
  const children: ChildProcess[] = [];
  for (const kind of only) {
    const target = targets[kind];
    const port = route[kind];
    if (target === undefined || !port) continue;
    const args =
      kind === 'udp'
        ? [`UDP4-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, `UDP4:127.0.0.1:${target}`]
        : [`TCP4-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork,backlog=4096`, `TCP4:127.0.0.1:${target}`];
    // Its own process group: socat forks a child per connection, stopped with it.
    const [command, pinned] = forwarder(socat, args);
    children.push(start(command, pinned, { stdio: ['ignore', 'ignore', 'ignore'], detached: true }));
  }
  for (const kind of only) if (kind !== 'udp' && route[kind]) await waitForPort(route[kind]);
  await sleep(100);
  return {
    name: 'socat',
    route,
    pid: children[0]?.pid,
    // Each socat is its own process group: the forked per-connection children are counted with it.
    cpu: () => groupCpuSeconds(children.flatMap((child) => (child.pid === undefined ? [] : [child.pid]))),
    async stop() {
      for (const child of children) {
        if (child.pid !== undefined && child.exitCode === null) {
          try {
            process.kill(-child.pid, 'SIGTERM');
          } catch {
            // Already gone.
          }
        }
      }
      await Promise.all(children.map((child) => stop(child)));
    },
  };
}

/** Starts haproxy in TCP mode (its defaults otherwise), or undefined if not installed. UDP is not offered. */
export async function startHaproxy(
  targets: Targets,
  dir: string,
  only: Kind[] = KINDS,
): Promise<Peer | undefined> {
  const haproxy = which('haproxy');
  if (!haproxy) return undefined;
  const tcpKinds = only.filter((kind) => kind !== 'udp');
  const route = await freshRoute(targets, tcpKinds);
  const adminSocket = join(dir, `haproxy-${process.pid}-${Date.now() % 100000}.sock`);
  const lines = [
    'global',
    `  stats socket ${adminSocket} mode 600 level user`,
    // haproxy sizes its fd limit from maxconn (two per connection) and refuses to start above the hard limit.
    `  maxconn ${Math.min(40_000, Math.floor((fileLimits().hard - 200) / 2))}`,
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 5m',
    '  timeout server 5m',
  ];
  for (const kind of tcpKinds) {
    lines.push(
      `frontend f_${kind}`,
      `  bind 127.0.0.1:${route[kind]}`,
      `  default_backend b_${kind}`,
      `backend b_${kind}`,
      `  server s_${kind} 127.0.0.1:${targets[kind]}`,
    );
  }
  const config = join(dir, `haproxy-${route.echo}.cfg`);
  await writeFile(config, `${lines.join('\n')}\n`);
  const [command, args] = forwarder(haproxy, ['-db', '-f', config]);
  const child = start(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  try {
    for (const kind of tcpKinds) await waitForPort(route[kind], '127.0.0.1', 5000);
  } catch (err) {
    await stop(child);
    throw new Error(`haproxy did not start: ${stderr.trim().slice(0, 500) || String(err)}`);
  }
  const pid = child.pid!;
  return { name: 'haproxy', route, pid, cpu: () => cpuSeconds(pid), adminSocket, stop: () => stop(child) };
}

/** The repo root, for resolving the candidate engine given on the command line. */
export const REPO = resolve(HERE, '..');
