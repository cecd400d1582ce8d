/**
 * Chaos over the addon's UDP relay (native/src/udp_relay.cc), bounded in count and in
 * time so it runs in every `npm run test:node` and, above all, under AddressSanitizer (scripts/native-asan.sh).
 *
 * UDP: four relays; echoing, dropping and restarting targets (ECONNREFUSED while down), sessions expiring
 * mid-run, a small session cap, a relay closed mid-run. Every reply that arrives is intact, comes from the
 * relay and reaches the client that sent it; the fds come back to where they were.
 *
 * Every choice comes from one seed, shown with any failure; BERTH_STRESS_SEED=<seed> replays the same plan
 * (not the same interleaving: the timing is the machine's).
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { closeSync } from 'node:fs';
import { describe, test } from 'node:test';
import type { UdpRelay } from '../../app/native/relays.js';
import { onCleanup } from '../support/index.js';
import { Chaos, fdsBackTo, int, noise, prng, seeded, sha, sleep, loadRelays } from '../support/stress.js';
import { fds } from '../support/fds.js';

const { native: loaded, udpSkip } = loadRelays();
const native = loaded!;

describe('relay stress', () => {
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
            relay = new native.UdpRelay({
              fd,
              target: { address: '127.0.0.1', port: config.target.port },
              idleTimeoutMs: config.idleMs,
              maxSessions: config.max,
            });
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
          slots[0]!.relay.setTarget({ address: '127.0.0.1', port: echoToo.port }),
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
