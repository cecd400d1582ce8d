/**
 * Chaos over the addon's relays (native/src/tcp_relay.cc, native/src/udp_relay.cc), bounded in count and in
 * time so it runs in every `npm run test:node` and, above all, under AddressSanitizer (scripts/native-asan.sh).
 *
 * TCP: eight relays, thirty clients each. Each target connection echoes, echoes a prefix then half-closes,
 * resets (at once or after some bytes), stalls then goes, or closes; each client sends a random payload and
 * reads, pauses its reading, resets mid-transfer, or gives up before it is connected. Some relays wait for a
 * refusing target (retryRefusedMs), some change target mid-run, some are closed mid-transfer. Every client
 * whose target echoed, with nobody resetting and its relay still open, gets exactly the bytes it sent (or the
 * prefix the target echoed); afterwards every relay is closed with its counters consistent and this process
 * holds the same fds as before.
 *
 * UDP: four relays; echoing, dropping and restarting targets (ECONNREFUSED while down), sessions expiring
 * mid-run, a small session cap, a relay closed mid-run. Every reply that arrives is intact, comes from the
 * relay and reaches the client that sent it; the fds come back to where they were.
 *
 * Every choice comes from one seed, shown with any failure; BERTH_STRESS_SEED=<seed> replays the same plan
 * (not the same interleaving: the timing is the machine's).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { closeSync } from 'node:fs';
import net from 'node:net';
import type { TestContext } from 'node:test';
import { describe, test } from 'node:test';
import {
  type BerthNative,
  loadBerthNative,
  type TcpRelay,
  type TcpRelayTarget,
  type UdpRelay,
} from '../app/helper/helper-binder.js';
import { freePort, onCleanup, until } from './support.js';
import { fds } from './fixtures/fds.js';

function load(): { native?: BerthNative; tcpSkip: string | false; udpSkip: string | false } {
  if (process.platform !== 'linux') {
    const skip = 'the native relays are Linux only';
    return { tcpSkip: skip, udpSkip: skip };
  }
  let native: BerthNative;
  try {
    native = loadBerthNative('berth_native');
  } catch (err) {
    const skip = `the addon is not built (npm run build:native): ${(err as Error).message}`;
    return { tcpSkip: skip, udpSkip: skip };
  }
  return {
    native,
    tcpSkip: native.tcpRelayAvailable ? false : 'this build of the addon has no TCP relay',
    udpSkip: native.udpRelayAvailable ? false : 'this build of the addon has no UDP relay',
  };
}

const { native: loaded, tcpSkip, udpSkip } = load();
const native = loaded!;

const SEED = process.env.BERTH_STRESS_SEED
  ? Number(process.env.BERTH_STRESS_SEED) >>> 0
  : Math.floor(Math.random() * 2 ** 32);

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rand = () => number;
/** An integer in [lo, hi]. */
const int = (rand: Rand, lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
const pick = <T>(rand: Rand, items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;

/** `size` bytes of the PRNG's output. */
function noise(rand: Rand, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i + 4 <= size; i += 4) out.writeUInt32LE(Math.floor(rand() * 2 ** 32), i);
  return out;
}

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The run's timers and the failures seen in callbacks (thrown there, they would crash the file rather than fail
 * the test). `at` starts something new and is skipped past the deadline; `later` winds something down and always
 * runs. `stop` clears whatever has not fired.
 */
class Chaos {
  readonly failures: string[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  constructor(readonly deadline: number) {}

  guard(what: string, run: () => void): void {
    try {
      run();
    } catch (err) {
      this.failures.push(`${what}: ${(err as Error).stack ?? String(err)}`);
    }
  }

  at(ms: number, what: string, run: () => void): void {
    this.later(ms, what, () => {
      if (Date.now() < this.deadline) run();
    });
  }

  later(ms: number, what: string, run: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.guard(what, run);
    }, ms);
    this.timers.add(timer);
  }

  every(ms: number, what: string, run: () => void): void {
    const timer = setInterval(() => this.guard(what, run), ms);
    this.timers.add(timer);
  }

  stop(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }
}

/** Runs `body` with the test's own PRNG; any failure names the seed that replays it. */
async function seeded(t: TestContext, salt: number, body: (rand: Rand) => Promise<void>): Promise<void> {
  t.diagnostic(`seed ${SEED} (BERTH_STRESS_SEED=${SEED} replays this plan)`);
  try {
    await body(prng(SEED ^ salt));
  } catch (err) {
    if (err instanceof Error) {
      err.message += `\n    seed ${SEED}: rerun with BERTH_STRESS_SEED=${SEED}`;
    }
    throw err;
  }
}

/** Waits for an fd count back at `baseline`, naming what is still open if it does not come back. */
async function fdsBackTo(baseline: Map<string, string>): Promise<void> {
  try {
    await until(() => fds().size === baseline.size, 'the fd count to come back to its baseline', 5000);
  } catch {
    const extra = [...fds()].filter(([fd, link]) => baseline.get(fd) !== link);
    assert.fail(`fds left open (baseline ${baseline.size}): ${JSON.stringify(extra)}`);
  }
}

// ---- TCP ----

type ClientMode = 'send' | 'pause' | 'reset' | 'early';
type TargetMode = 'echo' | 'halfclose' | 'reset' | 'stall' | 'close';

/** One client connection and what its target connection is to do once it reads the client's id. */
interface TcpPlan {
  id: number;
  relay: number;
  startMs: number;
  client: ClientMode;
  target: TargetMode;
  /** Payload bytes after the 4-byte id, and where in the pool they start. */
  size: number;
  offset: number;
  /** 'pause': how long reading stops. 'reset': when, or after how many bytes back. */
  pauseMs: number;
  resetMs: number;
  resetAfter: number;
  /** 'early': destroyed in the same tick as connect, or one turn later. */
  sameTick: boolean;
  /** 'halfclose': bytes echoed before the FIN; target 'reset': bytes read before the reset. */
  targetBytes: number;
  stallMs: number;
}

/** What a target did with a client it identified. */
interface TargetRecord {
  mode: TargetMode;
  echoed: number;
}

interface TcpClient {
  plan: TcpPlan;
  sent: Buffer;
  socket: net.Socket;
  chunks: Buffer[];
  received: number;
  error?: NodeJS.ErrnoException;
  connected: boolean;
  closed: boolean;
  /** Closed while its relay was still open, so nothing but the target and the client cut it short. */
  relayOpenAtClose: boolean;
}

/** A target server of one relay: its connections and the bytes they read. */
interface TargetServer {
  server: net.Server;
  port: number;
  connections: number;
  bytesIn: number;
  sockets: Set<net.Socket>;
}

interface TcpSlot {
  index: number;
  role: string;
  relay: TcpRelay;
  port: number;
  closed: boolean;
  maxConnections: number;
  servers: TargetServer[];
  bytesToClients: number;
}

const TCP_RELAYS = 8;
const TCP_CLIENTS_PER_RELAY = 30;
const TCP_MAX_PAYLOAD = 512 * 1024;
const TCP_LAUNCH_WINDOW_MS = 1400;
const TCP_DEADLINE_MS = 4000;

describe('relay stress', () => {
  test(
    'TCP chaos: relays under resets, stalls, half-closes, retries, setTarget and close()',
    { skip: tcpSkip },
    (t) =>
      seeded(t, 0, async (rand) => {
        const live = prng(Math.floor(rand() * 2 ** 32)); // choices made as connections arrive
        const baseline = fds();
        const started = Date.now();
        const chaos = new Chaos(started + TCP_DEADLINE_MS);
        const pool = noise(rand, TCP_MAX_PAYLOAD * 2);
        const plans: TcpPlan[] = [];
        const records = new Map<number, TargetRecord>();
        const clients: TcpClient[] = [];
        const servers: TargetServer[] = [];
        const slots: TcpSlot[] = [];
        onCleanup(t, () => {
          // Only does anything when the test failed half-way.
          chaos.stop();
          for (const slot of slots) slot.relay.close();
          for (const c of clients) c.socket.destroy();
          for (const s of servers) {
            for (const socket of s.sockets) socket.destroy();
            s.server.close();
          }
        });

        /** A target that reads the client's id (the first 4 bytes) and then does what the plan says. */
        async function targetServer(slot: number, port = 0): Promise<TargetServer | undefined> {
          const server = net.createServer({ allowHalfOpen: true });
          const target: TargetServer = { server, port: 0, connections: 0, bytesIn: 0, sockets: new Set() };
          server.on('connection', (socket) =>
            chaos.guard('target connection', () => serve(slot, target, socket)),
          );
          const listening = once(server, 'listening');
          server.listen(port, '127.0.0.1');
          try {
            await Promise.race([
              listening,
              once(server, 'error').then(([err]) => Promise.reject(err as Error)),
            ]);
          } catch (err) {
            if (port !== 0 && (err as NodeJS.ErrnoException).code === 'EADDRINUSE') return undefined;
            throw err;
          }
          target.port = (server.address() as net.AddressInfo).port;
          servers.push(target);
          return target;
        }

        function serve(slot: number, target: TargetServer, socket: net.Socket): void {
          target.connections += 1;
          target.sockets.add(socket);
          socket.on('close', () => target.sockets.delete(socket));
          socket.on('error', () => undefined);
          // Some connections go at once, before the client's id is known: nothing is checked for those.
          const roll = live();
          if (roll < 0.04) return void socket.resetAndDestroy();
          if (roll < 0.08) return void socket.destroy();
          if (roll < 0.12) {
            socket.pause();
            chaos.later(int(live, 50, 600), 'stalled target', () => socket.destroy());
            return;
          }
          let head = Buffer.alloc(0);
          const onHead = (chunk: Buffer) => {
            target.bytesIn += chunk.length;
            head = Buffer.concat([head, chunk]);
            if (head.length < 4) return;
            socket.off('data', onHead);
            socket.off('end', onEarlyEnd);
            socket.pause();
            const id = head.readUInt32BE(0);
            const plan = plans[id];
            if (!plan || plan.relay !== slot || records.has(id)) {
              chaos.failures.push(
                `target of relay ${slot} read id ${id}: ${!plan ? 'no such client' : records.has(id) ? 'seen before' : `a client of relay ${plan.relay}`}`,
              );
              socket.destroy();
              return;
            }
            const record: TargetRecord = { mode: plan.target, echoed: 0 };
            records.set(id, record);
            act(plan, record, target, socket, head);
          };
          // The client went before sending its id (or the relay closed): nothing to do but close.
          const onEarlyEnd = () => socket.destroy();
          socket.on('data', onHead);
          socket.on('end', onEarlyEnd);
        }

        function act(
          plan: TcpPlan,
          record: TargetRecord,
          target: TargetServer,
          socket: net.Socket,
          head: Buffer,
        ) {
          switch (plan.target) {
            case 'echo': {
              let waiting = false;
              const echo = (chunk: Buffer) => {
                record.echoed += chunk.length;
                if (!socket.write(chunk) && !waiting) {
                  waiting = true;
                  socket.pause();
                  socket.once('drain', () => {
                    waiting = false;
                    socket.resume();
                  });
                }
              };
              echo(head);
              socket.on('data', (chunk: Buffer) => {
                target.bytesIn += chunk.length;
                echo(chunk);
              });
              socket.on('end', () => socket.end());
              if (!waiting) socket.resume();
              return;
            }
            case 'halfclose': {
              // Echoes the first targetBytes bytes, then FIN; reads (and drops) the rest until the client's FIN.
              let ended = false;
              const take = (chunk: Buffer) => {
                if (ended) return;
                const part = chunk.subarray(0, plan.targetBytes - record.echoed);
                record.echoed += part.length;
                socket.write(part);
                if (record.echoed >= plan.targetBytes) {
                  ended = true;
                  socket.end();
                }
              };
              take(head);
              socket.on('data', (chunk: Buffer) => {
                target.bytesIn += chunk.length;
                take(chunk);
              });
              socket.on('end', () => {
                if (!ended) {
                  ended = true;
                  socket.end();
                }
              });
              socket.resume();
              return;
            }
            case 'reset': {
              let read = head.length;
              if (read >= plan.targetBytes) return void socket.resetAndDestroy();
              socket.on('data', (chunk: Buffer) => {
                target.bytesIn += chunk.length;
                read += chunk.length;
                if (read >= plan.targetBytes) socket.resetAndDestroy();
              });
              socket.on('end', () => socket.resetAndDestroy());
              socket.resume();
              return;
            }
            case 'stall':
              chaos.later(plan.stallMs, 'stalled target', () => socket.destroy());
              return;
            case 'close':
              socket.destroy();
              return;
          }
        }

        function launch(slot: TcpSlot, plan: TcpPlan): void {
          const sent = Buffer.alloc(4 + plan.size);
          sent.writeUInt32BE(plan.id, 0);
          pool.copy(sent, 4, plan.offset, plan.offset + plan.size);
          const socket = net.connect({ port: slot.port, host: '127.0.0.1', allowHalfOpen: true });
          const c: TcpClient = {
            plan,
            sent,
            socket,
            chunks: [],
            received: 0,
            connected: false,
            closed: false,
            relayOpenAtClose: false,
          };
          clients.push(c);
          socket.on('error', (err) => (c.error ??= err));
          socket.on('connect', () => (c.connected = true));
          socket.on('close', () => {
            c.closed = true;
            c.relayOpenAtClose = !slot.closed;
          });
          socket.on('data', (chunk: Buffer) => {
            c.chunks.push(chunk);
            c.received += chunk.length;
            slot.bytesToClients += chunk.length;
            if (plan.client === 'reset' && c.received >= plan.resetAfter && !socket.destroyed) {
              socket.resetAndDestroy();
            }
          });
          // Answer the FIN, or a half-open connection never closes.
          socket.on('end', () => socket.end());
          switch (plan.client) {
            case 'early':
              if (plan.sameTick) socket.destroy();
              else setImmediate(() => socket.destroy());
              return;
            case 'send':
              socket.end(sent);
              return;
            case 'pause':
              socket.end(sent);
              socket.pause();
              chaos.later(plan.pauseMs, 'paused client', () => socket.resume());
              return;
            case 'reset':
              socket.write(sent);
              chaos.later(plan.resetMs, 'resetting client', () => {
                if (!socket.destroyed) socket.resetAndDestroy();
              });
              return;
          }
        }

        async function openRelay(
          target: TcpRelayTarget,
          options: { max: number; retry: number; timeout: number },
        ) {
          for (let attempt = 0; ; attempt += 1) {
            const port = await freePort();
            let fd: number;
            try {
              fd = native.bindTcp('127.0.0.1', port);
            } catch (err) {
              // Taken by someone else since freePort() looked.
              if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < 5) continue;
              throw err;
            }
            try {
              const relay = new native.TcpRelay(fd, target, {
                connectTimeoutMs: options.timeout,
                maxConnections: options.max,
                retryRefusedMs: options.retry,
              });
              return { relay, port };
            } catch (err) {
              closeSync(fd);
              throw err;
            }
          }
        }

        // The relays and their parts. Refusing ports are free ports nothing listens on (until a late server does).
        const roles = ['plain', 'plain', 'closed', 'setTarget', 'cap', 'late', 'retry', 'closed'];
        for (let i = 0; i < TCP_RELAYS; i += 1) {
          const role = roles[i]!;
          const a = (await targetServer(i))!;
          const mine = [a];
          let target: TcpRelayTarget = { addresses: ['127.0.0.1'], port: a.port };
          let options = { max: 1000, retry: 0, timeout: 2000 };
          if (role === 'cap') options.max = int(rand, 2, 5);
          if (role === 'late' || role === 'retry') {
            const refusing = await freePort();
            target = { addresses: ['127.0.0.1'], port: refusing };
            options = { max: 1000, retry: int(rand, 10, 60), timeout: int(rand, 100, 400) };
            if (role === 'late') {
              chaos.at(int(rand, 200, 900), `late target of relay ${i}`, () => {
                void targetServer(i, refusing).then(
                  (late) => late && mine.push(late),
                  (err: Error) => chaos.failures.push(`late target: ${err.stack}`),
                );
              });
            } else {
              chaos.at(int(rand, 400, 1100), `setTarget of relay ${i}`, () =>
                slot.relay.setTarget({ addresses: ['127.0.0.1'], port: a.port }),
              );
            }
          }
          const { relay, port } = await openRelay(target, options);
          const slot: TcpSlot = {
            index: i,
            role,
            relay,
            port,
            closed: false,
            maxConnections: options.max,
            servers: mine,
            bytesToClients: 0,
          };
          slots.push(slot);
          if (role === 'setTarget') {
            const b = (await targetServer(i))!;
            mine.push(b);
            const refusing = await freePort();
            const first = int(rand, 200, 700);
            const second = first + int(rand, 100, 400);
            chaos.at(first, `setTarget of relay ${i}`, () =>
              relay.setTarget({ addresses: ['127.0.0.1'], port: refusing }),
            );
            chaos.at(second, `setTarget of relay ${i}`, () =>
              relay.setTarget({ addresses: ['127.0.0.1'], port: b.port }),
            );
          }
          if (role === 'closed') {
            chaos.at(int(rand, 300, 1300), `close of relay ${i}`, () => {
              relay.close();
              slot.closed = true;
            });
          }
        }

        // The clients: a fixed number per relay, started at random times in the launch window.
        let skipped = 0;
        for (const slot of slots) {
          for (let k = 0; k < TCP_CLIENTS_PER_RELAY; k += 1) {
            const size = Math.floor(TCP_MAX_PAYLOAD * rand() ** 3);
            const plan: TcpPlan = {
              id: plans.length,
              relay: slot.index,
              startMs: int(rand, 0, TCP_LAUNCH_WINDOW_MS),
              client: pick(rand, ['send', 'send', 'pause', 'reset', 'early'] as const),
              target: pick(rand, ['echo', 'echo', 'halfclose', 'reset', 'stall', 'close'] as const),
              size,
              offset: int(rand, 0, pool.length - size),
              pauseMs: int(rand, 20, 400),
              resetMs: int(rand, 0, 150),
              resetAfter: int(rand, 1, 4 + size),
              sameTick: rand() < 0.5,
              targetBytes: int(rand, 0, 4 + size),
              stallMs: int(rand, 50, 600),
            };
            plans.push(plan);
            // A closed relay's port is no longer its own: nothing is started there.
            chaos.at(plan.startMs, `client ${plan.id}`, () => {
              if (slot.closed) skipped += 1;
              else launch(slot, plan);
            });
          }
        }

        // Invariants while it runs.
        chaos.every(20, 'stats sampling', () => {
          for (const slot of slots) {
            if (slot.closed) continue;
            const s = slot.relay.stats();
            if (s.active > slot.maxConnections || s.active > s.total) {
              chaos.failures.push(
                `relay ${slot.index}: active ${s.active}, total ${s.total}, cap ${slot.maxConnections}`,
              );
            }
          }
        });

        // Every client and target connection ends by itself: stalls and pauses are timed, retries give up at the
        // connect timeout, closed relays close theirs.
        await sleep(TCP_LAUNCH_WINDOW_MS);
        const targetSockets = () => servers.reduce((n, s) => n + s.sockets.size, 0);
        const launched = () => clients.length + skipped;
        await until(
          () => (launched() >= plans.length || Date.now() > chaos.deadline) && clients.every((c) => c.closed),
          'every client to finish',
          Math.max(0, chaos.deadline - Date.now()) + 5000,
        ).catch((err: Error) => {
          const open = clients.filter((c) => !c.closed).map((c) => ({ ...c.plan, received: c.received }));
          throw new Error(`${err.message}: ${JSON.stringify(open.slice(0, 10))}`);
        });
        await until(() => targetSockets() === 0, 'every target connection to finish');
        for (const slot of slots) {
          if (slot.closed) continue;
          await until(() => slot.relay.stats().active === 0, `relay ${slot.index} (${slot.role}) to drain`);
        }
        chaos.stop();

        // Everything that reached a relay is counted; then each is closed.
        for (const slot of slots) {
          slot.relay.close();
          slot.closed = true;
          const s = slot.relay.stats();
          const what = `relay ${slot.index} (${slot.role}): ${JSON.stringify(s)}`;
          assert.equal(s.active, 0, what);
          const reached = slot.servers.reduce((n, server) => n + server.connections, 0);
          assert.ok(s.total >= reached, `${what}: ${reached} connections reached its targets`);
          const bytesIn = slot.servers.reduce((n, server) => n + server.bytesIn, 0);
          assert.ok(s.toTarget >= bytesIn, `${what}: its targets read ${bytesIn} bytes`);
          assert.ok(
            s.fromTarget >= slot.bytesToClients,
            `${what}: its clients read ${slot.bytesToClients} bytes`,
          );
          slot.relay.close();
        }

        // Every client whose target echoed, with nobody resetting and its relay open, got exactly what it sent.
        let verified = 0;
        for (const c of clients) {
          const record = records.get(c.plan.id);
          if (!record || (record.mode !== 'echo' && record.mode !== 'halfclose')) continue;
          if (c.plan.client !== 'send' && c.plan.client !== 'pause') continue;
          if (!c.relayOpenAtClose) continue;
          verified += 1;
          const what = `client ${c.plan.id} (${JSON.stringify(c.plan)})`;
          if (c.error) {
            chaos.failures.push(`${what}: ${c.error.code ?? c.error.message} although its target echoed`);
            continue;
          }
          const expected = record.mode === 'echo' ? c.sent : c.sent.subarray(0, record.echoed);
          const got = Buffer.concat(c.chunks);
          if (sha(got) !== sha(expected)) {
            let at = 0;
            while (at < got.length && at < expected.length && got[at] === expected[at]) at += 1;
            chaos.failures.push(
              `${what}: got ${got.length} bytes, expected ${expected.length} (target ${record.mode}), first difference at ${at}`,
            );
          }
        }
        t.diagnostic(
          `${clients.length} clients, ${verified} echoes verified, ${records.size} identified by their targets`,
        );
        assert.deepEqual(chaos.failures, []);
        assert.ok(verified > 0, 'no client had an echo to check');

        assert.ok(
          clients.every((c) => c.socket.destroyed),
          'every client socket is destroyed',
        );
        for (const s of servers) {
          assert.equal(s.sockets.size, 0, 'every target socket is destroyed');
          await new Promise((resolve) => s.server.close(resolve));
        }
        await fdsBackTo(baseline);
      }),
  );

  // ---- UDP ----

  test(
    'UDP chaos: dropping and restarting targets, expiring sessions, a session cap, close()',
    { skip: udpSkip },
    (t) =>
      seeded(t, 0x5bd1e995, async (rand) => {
        const live = prng(Math.floor(rand() * 2 ** 32));
        const baseline = fds();
        const started = Date.now();
        const SEND_WINDOW_MS = 2000;
        const chaos = new Chaos(started + SEND_WINDOW_MS);
        const pool = noise(rand, 128 * 1024);

        interface Target {
          mode: 'echo' | 'drop' | 'flap';
          port: number;
          socket?: dgram.Socket;
          received: number;
          restarts: number;
        }
        interface Client {
          id: number;
          relay: number;
          socket: dgram.Socket;
          sent: Map<number, string>;
          tiny: Set<string>;
          datagrams: number;
          bytes: number;
          replies: number;
          replyBytes: number;
        }
        interface Slot {
          index: number;
          relay: UdpRelay;
          port: number;
          closed: boolean;
          maxSessions: number;
          clients: Client[];
        }
        const targets: Target[] = [];
        const clients: Client[] = [];
        const slots: Slot[] = [];
        onCleanup(t, () => {
          chaos.stop();
          for (const slot of slots) slot.relay.close();
          for (const c of clients) c.socket.close();
          for (const target of targets) target.socket?.close();
        });

        /** Binds the target's socket (again, on its port once it has one); false when the port was taken. */
        async function up(target: Target): Promise<boolean> {
          const socket = dgram.createSocket('udp4');
          socket.on('message', (data, from) => {
            target.received += 1;
            if (target.mode === 'drop' && live() < 0.5) return;
            if (target.socket !== socket) return;
            socket.send(data, from.port, from.address, () => undefined);
          });
          const bound = new Promise<boolean>((resolve) => {
            socket.once('listening', () => resolve(true));
            socket.once('error', () => resolve(false));
          });
          socket.bind(target.port, '127.0.0.1');
          if (!(await bound)) {
            socket.close();
            return false;
          }
          socket.on('error', () => undefined);
          target.port = socket.address().port;
          target.socket = socket;
          return true;
        }

        async function newTarget(mode: Target['mode']): Promise<Target> {
          const target: Target = { mode, port: 0, received: 0, restarts: 0 };
          targets.push(target);
          assert.ok(await up(target));
          return target;
        }

        /** Down for a moment (the relay's sessions get ECONNREFUSED), then up again on the same port; 20 times at most. */
        function flap(target: Target): void {
          chaos.at(int(rand, 50, 250), 'target down', () => {
            target.socket?.close();
            target.socket = undefined;
            chaos.at(int(rand, 50, 250), 'target up', () => {
              void up(target).then((ok) => {
                target.restarts += 1;
                if (ok && target.restarts < 20) flap(target);
              });
            });
          });
        }

        async function client(slot: Slot): Promise<Client> {
          const socket = dgram.createSocket('udp4');
          const c: Client = {
            id: clients.length,
            relay: slot.index,
            socket,
            sent: new Map(),
            tiny: new Set(),
            datagrams: 0,
            bytes: 0,
            replies: 0,
            replyBytes: 0,
          };
          clients.push(c);
          slot.clients.push(c);
          socket.on('error', () => undefined);
          socket.on('message', (data, from) => {
            c.replies += 1;
            c.replyBytes += data.length;
            const what = `client ${c.id} of relay ${slot.index}`;
            if (from.address !== '127.0.0.1' || from.port !== slot.port) {
              chaos.failures.push(`${what}: a reply from ${from.address}:${from.port}, not the relay`);
            } else if (data.length >= 8) {
              const id = data.readUInt32BE(0);
              const seq = data.readUInt32BE(4);
              if (id !== c.id)
                chaos.failures.push(`${what}: got a reply meant for client ${id} (seq ${seq})`);
              else if (c.sent.get(seq) !== sha(data)) {
                chaos.failures.push(`${what}: reply ${seq} (${data.length} bytes) is not what was sent`);
              }
            } else if (!c.tiny.has(data.toString('hex'))) {
              chaos.failures.push(`${what}: a ${data.length}-byte reply it never sent`);
            }
          });
          socket.bind(0, '127.0.0.1');
          await once(socket, 'listening');
          return c;
        }

        /** A datagram of 1 B to 60 KB; from 8 bytes up it starts with the client's id and its sequence number. */
        function datagram(c: Client): Buffer {
          const kind = rand();
          const size =
            kind < 0.25 ? int(rand, 1, 7) : kind < 0.7 ? int(rand, 8, 1500) : int(rand, 1501, 60_000);
          const offset = int(rand, 0, pool.length - size);
          const data = Buffer.from(pool.subarray(offset, offset + size));
          if (size >= 8) {
            const seq = c.datagrams;
            data.writeUInt32BE(c.id, 0);
            data.writeUInt32BE(seq, 4);
            c.sent.set(seq, sha(data));
          } else {
            c.tiny.add(data.toString('hex'));
          }
          return data;
        }

        /** Sends bursts at random intervals, up to `left` datagrams and the deadline. */
        function send(c: Client, slot: Slot, left: number): void {
          if (left <= 0 || slot.closed) return;
          chaos.at(int(rand, 0, 40), 'client send', () => {
            const burst = Math.min(left, rand() < 0.2 ? int(rand, 5, 20) : 1);
            for (let i = 0; i < burst; i += 1) {
              const data = datagram(c);
              c.datagrams += 1;
              c.bytes += data.length;
              c.socket.send(data, slot.port, '127.0.0.1', () => undefined);
            }
            send(c, slot, left - burst);
          });
        }

        const echo = await newTarget('echo');
        const echoToo = await newTarget('echo');
        const dropping = await newTarget('drop');
        const flapping = await newTarget('flap');
        const configs = [
          { target: echo, idleMs: 30_000, max: 100, clients: 4 },
          { target: dropping, idleMs: int(rand, 15, 40), max: 100, clients: 4 },
          { target: flapping, idleMs: int(rand, 50, 200), max: 2, clients: 5 },
          { target: echoToo, idleMs: int(rand, 40, 100), max: 100, clients: 4 },
        ];
        for (const [index, config] of configs.entries()) {
          const fd = native.bindUdp('127.0.0.1', 0);
          let relay: UdpRelay;
          try {
            relay = new native.UdpRelay(fd, '127.0.0.1', config.target.port, config.idleMs, config.max);
          } catch (err) {
            closeSync(fd);
            throw err;
          }
          const slot: Slot = {
            index,
            relay,
            port: native.udpLocalPort(fd),
            closed: false,
            maxSessions: config.max,
            clients: [],
          };
          slots.push(slot);
          for (let k = 0; k < config.clients; k += 1) await client(slot);
        }
        // Relay 0 moves to another target mid-run; relay 3 is closed mid-run.
        chaos.at(int(rand, 300, 1200), 'setTarget', () =>
          slots[0]!.relay.setTarget('127.0.0.1', echoToo.port),
        );
        chaos.at(int(rand, 400, 1400), 'close', () => {
          slots[3]!.relay.close();
          slots[3]!.closed = true;
        });
        flap(flapping);
        for (const slot of slots) for (const c of slot.clients) send(c, slot, int(rand, 40, 150));
        chaos.every(20, 'stats sampling', () => {
          for (const slot of slots) {
            if (slot.closed) continue;
            const s = slot.relay.stats();
            if (s.active > slot.maxSessions || s.active > s.total) {
              chaos.failures.push(
                `relay ${slot.index}: active ${s.active}, total ${s.total}, cap ${slot.maxSessions}`,
              );
            }
          }
        });

        await sleep(SEND_WINDOW_MS);
        // Replies still in flight.
        await sleep(150);
        chaos.stop();

        for (const slot of slots) {
          slot.relay.close();
          slot.closed = true;
          const s = slot.relay.stats();
          const what = `relay ${slot.index}: ${JSON.stringify(s)}`;
          const sum = (f: (c: Client) => number) => slot.clients.reduce((n, c) => n + f(c), 0);
          assert.equal(s.active, 0, what);
          assert.ok(s.datagramsToTarget <= sum((c) => c.datagrams), `${what}: more forwarded than sent`);
          assert.ok(s.toTarget <= sum((c) => c.bytes), `${what}: more bytes forwarded than sent`);
          assert.ok(
            s.datagramsFromTarget >= sum((c) => c.replies),
            `${what}: clients got more than it forwarded`,
          );
          assert.ok(
            s.fromTarget >= sum((c) => c.replyBytes),
            `${what}: clients got more bytes than it forwarded`,
          );
        }
        t.diagnostic(
          `datagrams sent ${clients.reduce((n, c) => n + c.datagrams, 0)}, replies ${clients.reduce((n, c) => n + c.replies, 0)}, target restarts ${flapping.restarts}`,
        );
        assert.deepEqual(chaos.failures, []);
        assert.ok(
          slots[0]!.clients.some((c) => c.replies > 0),
          'the clients of the echoing relay got replies',
        );

        await Promise.all(clients.map((c) => new Promise<void>((resolve) => c.socket.close(resolve))));
        await Promise.all(
          targets
            .filter((target) => target.socket)
            .map((target) => new Promise<void>((resolve) => target.socket!.close(resolve))),
        );
        clients.length = 0;
        targets.length = 0;
        await fdsBackTo(baseline);
      }),
  );
});
