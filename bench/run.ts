/**
 * `npm run bench`: Berth against a direct connection, socat and haproxy in one run, on loopback.
 * Rounds are interleaved (each round runs every peer on every figure, in a rotated order) so background
 * noise hits all peers alike; figures are medians over rounds, printed with their ratio to direct.
 *
 * Options: --smoke (a few seconds, built-in generators), --rounds N, --node-only (no iperf3/wrk),
 * --peers direct,berth,berth-node,socat,haproxy (berth-node: Berth on its JavaScript data planes), --figures tcp1,tcp8,conns,rtt,udp,idle,api, --idle N,
 * --samples (print every round's value), --pin (forwarders on the last CPU, everything else on CPU 0), --candidate DIR (also run the engine of a repo copy, as column "berth*"), --profile DIR (Berth runs with
 * --cpu-prof into DIR), --markdown FILE (also write the table as Markdown).
 */
import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ControlClient } from '../app/control/client.js';
import { closeIdle, openIdle, pingPong, shortConnections, udpRoundTrips } from './load.js';
import { bundle, bundleBerth } from './bundle.js';
import { REPO, startBerth, startHaproxy, startSocat, type Peer, type Targets } from './peers.js';
import {
  atExit,
  fileLimits,
  firstLine,
  freePort,
  pin,
  memory,
  run,
  start,
  stop,
  waitForPort,
  which,
} from './procs.js';
import { median, percentile, sleep } from './stats.js';
import { iperf3Throughput, wrkConnections } from './tools.js';
import type { TargetPorts } from './targets.js';

const { values: args } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    'node-only': { type: 'boolean', default: false },
    peers: { type: 'string', default: 'direct,berth,berth-node,socat,haproxy' },
    figures: { type: 'string', default: 'tcp1,tcp8,conns,rtt,udp,idle,api' },
    idle: { type: 'string' },
    candidate: { type: 'string' },
    profile: { type: 'string' },
    markdown: { type: 'string' },
    samples: { type: 'boolean', default: false },
    pin: { type: 'boolean', default: false },
  },
});

// The columns that run Berth: the engine as built, on its JavaScript data planes, and a candidate's.
const BERTHS = new Set(['berth', 'berth-node', 'berth*']);

const smoke = args.smoke;
const settings = {
  rounds: Number(args.rounds ?? (smoke ? 1 : 5)),
  streamSeconds: smoke ? 0.2 : 2,
  connSeconds: smoke ? 0.2 : 2,
  rttCount: smoke ? 300 : 10_000,
  rttTimeMs: smoke ? 300 : 2000,
  udpTimeMs: smoke ? 200 : 1500,
  udpWindow: 16,
  idle: idleCount(Number(args.idle ?? (smoke ? 200 : 10_000))),
  apiSeconds: smoke ? 0.3 : 3,
  apiRounds: smoke ? 1 : 3,
};
// A forwarder holds two fds per connection: above the hard open-file limit no forwarder can hold them all.
function idleCount(wanted: number): number {
  const { hard } = fileLimits();
  const most = Math.floor((hard - 400) / 2 / 100) * 100;
  if (wanted <= most) return wanted;
  process.stderr.write(
    `bench: ${wanted} idle connections need ${2 * wanted + 400} fds in the forwarder; the hard limit is ${hard}: measuring ${most}\n`,
  );
  return most;
}

const useTools = !smoke && !args['node-only'];
const iperf3 = useTools && which('iperf3') !== undefined;
const wrk = useTools && which('wrk') !== undefined;
const wanted = new Set(args.peers.split(','));
const figures = new Set(args.figures.split(','));
for (const [option, given, known] of [
  ['--peers', wanted, ['direct', 'berth', 'berth-node', 'socat', 'haproxy']],
  ['--figures', figures, ['tcp1', 'tcp8', 'conns', 'rtt', 'udp', 'idle', 'api']],
] as const) {
  const unknown = [...given].filter((name) => !(known as readonly string[]).includes(name));
  if (unknown.length > 0) {
    process.stderr.write(`bench: ${option}: unknown ${unknown.join(', ')} (known: ${known.join(', ')})\n`);
    process.exit(2);
  }
}
const notes: string[] = [];
const note = (line: string): void => {
  notes.push(line);
  process.stderr.write(`bench: ${line}\n`);
};

/** One row of the table: how to format it and whether lower is better. */
interface Figure {
  key: string;
  label: string;
  unit: string;
  format: (value: number) => string;
  /** Show the difference to direct as well (latencies). */
  added?: boolean;
  /** A cost of the forwarder itself: direct has none, so the ratio is to the first Berth column. */
  cost?: boolean;
}

const FIGURES: Figure[] = [
  { key: 'tcp1', label: '1 TCP stream', unit: 'Gbit/s', format: (v) => (v / 1e9).toFixed(2) },
  { key: 'tcp8', label: '8 TCP streams', unit: 'Gbit/s', format: (v) => (v / 1e9).toFixed(2) },
  { key: 'conns', label: 'short connections, concurrency 32', unit: 'conn/s', format: (v) => v.toFixed(0) },
  { key: 'rtt50', label: '64-byte ping-pong p50', unit: 'µs', format: (v) => v.toFixed(1), added: true },
  { key: 'rtt99', label: '64-byte ping-pong p99', unit: 'µs', format: (v) => v.toFixed(1), added: true },
  { key: 'udp', label: 'UDP 64-byte round trips (16 in flight)', unit: '/s', format: (v) => v.toFixed(0) },
  { key: 'udploss', label: 'UDP loss', unit: '%', format: (v) => (v * 100).toFixed(2) },
  {
    key: 'cpuGB',
    label: 'forwarder CPU per GB, 8 streams',
    unit: 'ms',
    format: (v) => v.toFixed(0),
    cost: true,
  },
  {
    key: 'cpuConn',
    label: 'forwarder CPU per connection',
    unit: 'µs',
    format: (v) => v.toFixed(1),
    cost: true,
  },
  {
    key: 'cpuUdp',
    label: 'forwarder CPU per UDP round trip',
    unit: 'µs',
    format: (v) => v.toFixed(2),
    cost: true,
  },
  { key: 'idle', label: `peak RSS, ${settings.idle} idle connections`, unit: 'MiB', format: mib },
  { key: 'idlePer', label: 'RSS per idle connection', unit: 'KiB', format: (v) => (v / 1024).toFixed(1) },
  { key: 'api50', label: 'API status p50 during bulk transfer', unit: 'ms', format: (v) => v.toFixed(2) },
  { key: 'api99', label: 'API status p99 during bulk transfer', unit: 'ms', format: (v) => v.toFixed(2) },
];

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

const results = new Map<string, Map<string, number[]>>();
function record(figure: string, peer: string, value: number): void {
  let byPeer = results.get(figure);
  if (!byPeer) results.set(figure, (byPeer = new Map<string, number[]>()));
  let values = byPeer.get(peer);
  if (!values) byPeer.set(peer, (values = []));
  values.push(value);
}

async function measureRound(peer: Peer): Promise<void> {
  const { route } = peer;
  const label = peer.name;
  if (figures.has('tcp1') || figures.has('tcp8')) {
    for (const streams of [1, 8]) {
      const key = streams === 1 ? 'tcp1' : 'tcp8';
      if (!figures.has(key)) continue;
      const cpu0 = peer.cpu?.() ?? 0;
      const bps = iperf3
        ? await iperf3Throughput(route.stream, streams, settings.streamSeconds)
        : await nodeStreams(route.stream, streams, settings.streamSeconds);
      record(key, label, bps);
      if (streams === 8 && peer.cpu) {
        await sleep(100); // socat's children are reaped (and counted) once their connections close
        const gigabytes = (bps / 8) * settings.streamSeconds * 1e-9;
        record('cpuGB', label, ((peer.cpu() - cpu0) * 1000) / gigabytes);
      }
    }
  }
  if (figures.has('conns')) {
    const cpu0 = peer.cpu?.() ?? 0;
    const result = wrk
      ? await wrkConnections(route.http, 32, settings.connSeconds)
      : await shortConnections(route.http, {
          concurrency: 32,
          timeMs: settings.connSeconds * 1000,
          maxCount: 1_000_000,
        });
    if (result.errors > 0) note(`${label}: ${result.errors} socket errors in the short-connection test`);
    record('conns', label, result.perSecond);
    if (peer.cpu) {
      await sleep(100);
      const count = result.perSecond * settings.connSeconds;
      record('cpuConn', label, ((peer.cpu() - cpu0) * 1e6) / count);
    }
  }
  if (figures.has('rtt')) {
    const rtt = await pingPong(route.echo, {
      count: settings.rttCount,
      timeMs: settings.rttTimeMs,
      warmup: smoke ? 20 : 500,
    });
    record('rtt50', label, rtt.p50);
    record('rtt99', label, rtt.p99);
  }
  if (figures.has('udp') && route.udp !== undefined) {
    const cpu0 = peer.cpu?.() ?? 0;
    const udp = await udpRoundTrips(route.udp, {
      timeMs: settings.udpTimeMs,
      window: settings.udpWindow,
      maxCount: 5_000_000,
      lostAfterMs: smoke ? 100 : 200,
    });
    record('udp', label, udp.perSecond);
    record('udploss', label, udp.loss);
    if (peer.cpu) {
      const count = (udp.perSecond * settings.udpTimeMs) / 1000;
      record('cpuUdp', label, ((peer.cpu() - cpu0) * 1e6) / count);
    }
  }
}

let streamClient = '';

async function nodeStreams(port: number, streams: number, seconds: number): Promise<number> {
  const out = await run(
    process.execPath,
    [streamClient, String(port), String(streams), String(seconds)],
    (seconds + 15) * 1000,
  );
  return (JSON.parse(out) as { bitsPerSecond: number }).bitsPerSecond;
}

// Peak RSS of a fresh forwarder process holding `count` idle forwarded connections.
async function measureIdle(peer: Peer): Promise<void> {
  const before = peer.pid === undefined ? undefined : memory(peer.pid);
  const opened = await openIdle(peer.route.echo, {
    count: settings.idle,
    concurrency: 256,
    timeMs: smoke ? 5000 : 60_000,
  });
  await sleep(smoke ? 100 : 1000);
  const after = peer.pid === undefined ? undefined : memory(peer.pid);
  await closeIdle(opened.sockets);
  if (opened.error !== undefined)
    note(`${peer.name}: only ${opened.sockets.length} of ${settings.idle} idle connections: ${opened.error}`);
  if (!before || !after) return;
  record('idle', peer.name, after.hwm);
  record('idlePer', peer.name, (after.rss - before.rss) / Math.max(1, opened.sockets.length));
}

// haproxy's admin socket answers one command per connection, then closes.
function haproxyInfo(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(path, () => socket.end('show info\n'));
    socket.on('data', () => undefined);
    socket.once('end', () => resolve());
    socket.once('error', reject);
  });
}

// p50/p99 of status requests to the forwarder's API, with or without a bulk transfer through it: Berth's
// control socket (one connection, many requests), haproxy's admin socket (a connection per request).
async function statusLatency(peer: Peer, bulk: boolean): Promise<{ p50: number; p99: number }> {
  const client = peer.control ? await ControlClient.connect(peer.control) : undefined;
  const request = client ? () => client.call('status', {}) : () => haproxyInfo(peer.adminSocket!);
  let transfer: Promise<unknown> = Promise.resolve();
  try {
    if (bulk) {
      const seconds = iperf3 ? Math.ceil(settings.apiSeconds) + 1 : settings.apiSeconds + 0.3;
      transfer = iperf3
        ? iperf3Throughput(peer.route.stream, 1, seconds)
        : nodeStreams(peer.route.stream, 1, seconds);
      await sleep(smoke ? 150 : 500);
    }
    const samples: number[] = [];
    const deadline = Date.now() + settings.apiSeconds * 1000;
    for (let i = 0; i < 5000 && Date.now() < deadline; i++) {
      const t0 = process.hrtime.bigint();
      await request();
      samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
      await sleep(5);
    }
    samples.sort((a, b) => a - b);
    return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
  } finally {
    await transfer;
    client?.close();
  }
}

// Other work on the machine shows here: the figures are only as quiet as the machine was.
function loadAverage(): string {
  return loadavg()
    .map((n) => n.toFixed(2))
    .join(' ');
}

function rotate<T>(items: T[], by: number): T[] {
  const n = items.length;
  return items.map((_, i) => items[(i + by) % n]!);
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const loadBefore = loadAverage();
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-'));
  atExit(() => rmSync(dir, { recursive: true, force: true }));
  const running: { stop(): Promise<void> }[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(running.splice(0).map((peer) => peer.stop()));
  };
  try {
    if (args.pin) {
      if (cpus().length < 2 || !which('taskset')) throw new Error('--pin needs taskset and two CPUs');
      await pin('0', String(cpus().length - 1));
      note(`pinned: forwarders on CPU ${cpus().length - 1}, targets and load generators on CPU 0`);
    }
    streamClient = await bundle(join(import.meta.dirname, 'stream-client.ts'), dir);
    const targetsChild = start(process.execPath, [
      await bundle(join(import.meta.dirname, 'targets.ts'), dir),
    ]);
    const ports = await firstLine<TargetPorts>(targetsChild, 'targets');
    running.push({ stop: () => stop(targetsChild) });
    let stream = ports.source;
    if (iperf3) {
      stream = await freePort();
      const server = start(which('iperf3')!, ['-s', '-B', '127.0.0.1', '-p', String(stream)], {
        stdio: ['ignore', 'ignore', 'ignore'],
      });
      await waitForPort(stream);
      running.push({ stop: () => stop(server) });
    }
    const targets: Targets = { stream, echo: ports.echo, http: ports.http, udp: ports.udp };
    const profileArgs = args.profile
      ? ['--cpu-prof', '--cpu-prof-dir', resolve(args.profile)]
      : ([] as string[]);

    const berthBundle = await bundleBerth(REPO, dir);
    const candidateBundle = args.candidate ? await bundleBerth(resolve(args.candidate), dir) : '';
    const peers: Peer[] = [];
    const stopPeer = async (peer: Peer): Promise<void> => {
      running.splice(running.indexOf(peer), 1);
      await peer.stop();
    };
    const add = (peer: Peer | undefined, why: string): void => {
      if (peer) {
        peers.push(peer);
        running.push(peer);
      } else note(why);
    };
    if (wanted.has('direct'))
      peers.push({ name: 'direct', route: targets, pid: undefined, stop: async () => {} });
    if (wanted.has('berth'))
      add(await startBerth(targets, { dir, bundle: berthBundle, nodeArgs: profileArgs }), '');
    if (wanted.has('berth-node'))
      add(
        await startBerth(targets, {
          dir,
          name: 'berth-node',
          bundle: berthBundle,
          nodeArgs: profileArgs,
          dataPlane: 'node',
        }),
        '',
      );
    if (args.candidate)
      add(
        await startBerth(targets, {
          dir,
          name: 'berth*',
          bundle: candidateBundle,
          nodeArgs: profileArgs,
          root: resolve(args.candidate),
        }),
        '',
      );
    if (wanted.has('socat')) add(await startSocat(targets), 'socat is not installed: its column is skipped');
    if (wanted.has('haproxy'))
      add(await startHaproxy(targets, dir), 'haproxy is not installed: its column is skipped');
    if (!useTools) note('built-in Node load generators only' + (smoke ? ' (smoke run)' : ''));
    else {
      if (!iperf3) note('iperf3 is not installed: throughput uses the built-in Node generator');
      if (!wrk) note('wrk is not installed: connection rate uses the built-in Node generator');
    }

    const main = ['tcp1', 'tcp8', 'conns', 'rtt', 'udp'].some((f) => figures.has(f));
    for (let round = 0; main && round < settings.rounds; round++) {
      process.stderr.write(`bench: round ${round + 1}/${settings.rounds}\n`);
      for (const peer of rotate(peers, round)) await measureRound(peer);
    }

    if (figures.has('api')) {
      for (const peer of peers.filter((p) => p.control ?? p.adminSocket)) {
        for (let round = 0; round < settings.apiRounds; round++) {
          const idle = await statusLatency(peer, false);
          if (peer.name === 'berth') {
            record('api50', 'direct', idle.p50);
            record('api99', 'direct', idle.p99);
          }
          const busy = await statusLatency(peer, true);
          record('api50', peer.name, busy.p50);
          record('api99', peer.name, busy.p99);
        }
      }
      note(
        "API status: Berth's status request on its control socket; haproxy: `show info` on its admin socket " +
          '(a connection per request); the "direct" column is Berth\'s request with no traffic flowing',
      );
    }

    // Idle connections last, each forwarder fresh, so the peak is theirs alone.
    for (const peer of peers.filter((p) => !BERTHS.has(p.name))) {
      if (peer.name !== 'direct' && peer.name !== 'haproxy') await stopPeer(peer);
    }
    if (figures.has('idle')) {
      const { soft } = fileLimits();
      const need = settings.idle + 256;
      if (soft < need) note(`open-file limit ${soft} is below ${need}: idle connections will stop short`);
      for (const peer of [...peers]) {
        if (peer.name === 'direct') {
          await measureIdle(peer);
          continue;
        }
        if (peer.name === 'socat') {
          note('socat forks a process per connection: its idle-connection memory is not measured');
          continue;
        }
        await stopPeer(peer);
        const only = ['echo' as const];
        const fresh =
          peer.name === 'haproxy'
            ? await startHaproxy(targets, dir, only)
            : await startBerth(targets, {
                dir,
                name: peer.name,
                only,
                nofile: 2 * settings.idle + 512,
                bundle: peer.name === 'berth*' ? candidateBundle : berthBundle,
                root: peer.name === 'berth*' && args.candidate ? resolve(args.candidate) : undefined,
                dataPlane: peer.name === 'berth-node' ? 'node' : 'native',
              });
        if (!fresh) continue;
        running.push(fresh);
        await measureIdle(fresh);
        await stopPeer(fresh);
      }
      const { soft: nowSoft, hard } = fileLimits();
      note(`idle connections: ${settings.idle}; open-file limit soft ${nowSoft}, hard ${hard}`);
    }

    const table = render(peers.map((p) => p.name));
    process.stdout.write(`\n${table}\n`);
    for (const line of notes) process.stdout.write(`- ${line}\n`);
    if (args.samples) {
      for (const [figure, byPeer] of results) {
        for (const [peer, values] of byPeer) {
          process.stdout.write(`${figure} ${peer}: ${values.map((v) => v.toPrecision(4)).join(' ')}\n`);
        }
      }
    }
    const took = ((Date.now() - t0) / 1000).toFixed(0);
    const machine =
      `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${mib(totalmem())} MiB, Node ${process.version}, ` +
      `load average ${loadBefore} before, ${loadAverage()} after`;
    process.stdout.write(`\n${machine}; ${settings.rounds} round(s), medians; took ${took} s\n`);
    if (args.markdown) {
      const extra = notes.map((line) => `- ${line}`).join('\n');
      await writeFile(
        args.markdown,
        `${table}\n\n${extra}\n\n${machine}; ${settings.rounds} rounds, ${took} s\n`,
      );
    }
  } finally {
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  }
}

// Each round measures every peer back to back, so a ratio is taken within a round and then the median over
// rounds: background load that hits one round hits all peers in it.
function compare(values: number[], base: number[], how: (value: number, base: number) => number): number {
  if (values.length === base.length) return median(values.map((value, i) => how(value, base[i]!)));
  return how(median(values), median(base));
}

function render(columns: string[]): string {
  const header = ['figure', ...columns];
  const rows: string[][] = [];
  for (const figure of FIGURES) {
    const byPeer = results.get(figure.key);
    if (!byPeer) continue;
    const baseName = figure.cost ? 'berth' : 'direct';
    const base = byPeer.get(baseName) ?? [];
    const cells = columns.map((peer) => {
      const values = byPeer.get(peer) ?? [];
      const value = median(values);
      if (!Number.isFinite(value)) return '–';
      const text = figure.format(value);
      if (peer === baseName || base.length === 0 || figure.key === 'udploss') return text;
      if (figure.added) {
        const delta = compare(values, base, (v, b) => v - b);
        return `${text} (${delta >= 0 ? '+' : ''}${delta.toFixed(1)})`;
      }
      return `${text} (${compare(values, base, (v, b) => v / b).toFixed(2)}×)`;
    });
    rows.push([`${figure.label}, ${figure.unit}`, ...cells]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

await main();
process.exit(0);
