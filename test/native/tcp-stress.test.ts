/**
 * Chaos over the addon's TCP relay (native/src/tcp_relay.cc), bounded in count and in
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
 * Every choice comes from one seed, shown with any failure; BERTH_STRESS_SEED=<seed> replays the same plan
 * (not the same interleaving: the timing is the machine's).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { closeSync } from 'node:fs';
import net from 'node:net';
import { describe, test } from 'node:test';
import { type TcpRelay, type TcpRelayTarget } from '../../app/native/relays.js';
import { freePort, onCleanup, until } from '../support/index.js';
import {
  Chaos,
  fdsBackTo,
  int,
  noise,
  pick,
  prng,
  seeded,
  sha,
  sleep,
  loadRelays,
} from '../support/stress.js';
import { fds } from '../support/fds.js';

const { native: loaded, tcpSkip } = loadRelays();
const native = loaded!;

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
              const relay = new native.TcpRelay({
                fd,
                target,
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
});
