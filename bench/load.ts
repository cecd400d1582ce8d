/**
 * The built-in load generators (the fallback when iperf3 / wrk are absent, and the only ones for latency,
 * UDP and idle connections). Every loop is bounded by a count and a deadline.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import { percentile } from './stats.js';

const HOST = '127.0.0.1';

/** Round-trip times of `size`-byte messages echoed one at a time on one connection, in microseconds. */
export async function pingPong(
  port: number,
  options: { count: number; timeMs: number; warmup: number; size?: number },
): Promise<{ p50: number; p99: number; samples: number }> {
  const size = options.size ?? 64;
  const socket = net.connect({ host: HOST, port, noDelay: true });
  await once(socket, 'connect');
  const message = Buffer.alloc(size, 0x70);
  const samples = new Float64Array(options.count);
  let taken = 0;
  let warm = 0;
  let got = 0;
  let sentAt = 0n;
  const deadline = Date.now() + options.timeMs;
  try {
    await new Promise<void>((resolve, reject) => {
      const send = (): void => {
        got = 0;
        sentAt = process.hrtime.bigint();
        socket.write(message);
      };
      socket.on('data', (chunk) => {
        got += chunk.length;
        if (got < size) return;
        const rtt = Number(process.hrtime.bigint() - sentAt) / 1000;
        if (warm < options.warmup) warm += 1;
        else samples[taken++] = rtt;
        if (taken >= options.count || Date.now() > deadline) resolve();
        else send();
      });
      socket.once('error', reject);
      socket.once('close', () => reject(new Error('echo connection closed')));
      send();
    });
  } finally {
    socket.destroy();
  }
  const sorted = samples.subarray(0, taken).sort();
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), samples: taken };
}

/**
 * UDP round trips of 64-byte datagrams with `window` in flight: replies per second, and the share of
 * datagrams never answered (a datagram unanswered for `lostAfterMs` is counted lost and replaced).
 */
export async function udpRoundTrips(
  port: number,
  options: { timeMs: number; window: number; maxCount: number; lostAfterMs?: number },
): Promise<{ perSecond: number; loss: number; sent: number }> {
  const lostAfter = BigInt((options.lostAfterMs ?? 200) * 1e6);
  const socket = dgram.createSocket('udp4');
  socket.bind(0, HOST);
  await once(socket, 'listening');
  socket.connect(port, HOST);
  await once(socket, 'connect');
  const outstanding = new Map<number, bigint>();
  let next = 0;
  let received = 0;
  let stopping = false;
  const message = Buffer.alloc(64, 0x75);
  const send = (): void => {
    if (stopping || next >= options.maxCount) return;
    const seq = next++;
    message.writeUInt32BE(seq, 0);
    outstanding.set(seq, process.hrtime.bigint());
    socket.send(message);
  };
  socket.on('message', (reply) => {
    if (reply.length < 4) return;
    if (outstanding.delete(reply.readUInt32BE(0))) {
      received += 1;
      send();
    }
  });
  // ICMP errors (nothing listening) arrive here; the datagram is then counted lost.
  socket.on('error', () => undefined);
  const started = process.hrtime.bigint();
  for (let i = 0; i < options.window; i++) send();
  const sweeper = setInterval(() => {
    const now = process.hrtime.bigint();
    for (const [seq, at] of outstanding) {
      if (now - at < lostAfter) break;
      outstanding.delete(seq);
      send();
    }
  }, 20);
  await new Promise((resolve) => setTimeout(resolve, options.timeMs));
  stopping = true;
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  const receivedInTime = received;
  // Late replies still count as delivered, not lost.
  await new Promise((resolve) => setTimeout(resolve, Math.min(300, Number(lostAfter / 1_000_000n))));
  clearInterval(sweeper);
  socket.close();
  return { perSecond: receivedInTime / elapsed, loss: next ? (next - received) / next : NaN, sent: next };
}

const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n');

/** Connections per second: `concurrency` loops of connect, one request, read to the end, close. */
export async function shortConnections(
  port: number,
  options: { concurrency: number; timeMs: number; maxCount: number },
): Promise<{ perSecond: number; errors: number }> {
  let done = 0;
  let errors = 0;
  let started = 0;
  const deadline = Date.now() + options.timeMs;
  const t0 = process.hrtime.bigint();
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const socket = net.connect({ host: HOST, port, noDelay: true });
      socket.once('connect', () => socket.end(REQUEST));
      socket.on('data', () => undefined);
      socket.once('end', () => {
        done += 1;
        socket.destroy();
      });
      socket.once('error', () => (errors += 1));
      socket.once('close', () => resolve());
    });
  const loop = async (): Promise<void> => {
    while (Date.now() < deadline && started < options.maxCount && errors < 1000) {
      started += 1;
      await one();
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, loop));
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  return { perSecond: done / elapsed, errors };
}

/**
 * Opens `count` connections, each proven end to end by a one-byte echo, `concurrency` at a time, and
 * returns them open. Stops early (and says how far it got) on the first hard error or at the deadline.
 */
export async function openIdle(
  port: number,
  options: { count: number; concurrency: number; timeMs: number },
): Promise<{ sockets: net.Socket[]; error: string | undefined }> {
  const sockets: net.Socket[] = [];
  let error: string | undefined;
  let next = 0;
  const deadline = Date.now() + options.timeMs;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const socket = net.connect({ host: HOST, port });
      const fail = (err: Error): void => {
        error ??= err.message;
        socket.destroy();
        resolve();
      };
      const timer = setTimeout(() => fail(new Error('no echo within 10 s')), 10_000);
      socket.once('error', fail);
      socket.once('close', () => fail(new Error('closed by the forwarder')));
      socket.once('connect', () => socket.write('i'));
      socket.once('data', () => {
        clearTimeout(timer);
        socket.removeAllListeners('close');
        socket.removeAllListeners('error');
        socket.on('error', () => undefined);
        sockets.push(socket);
        resolve();
      });
    });
  const loop = async (): Promise<void> => {
    while (next < options.count && error === undefined && Date.now() < deadline) {
      next += 1;
      await one();
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, loop));
  if (error === undefined && sockets.length < options.count) error = 'deadline reached';
  return { sockets, error };
}

/** Closes idle connections opened by `openIdle` and waits (bounded) until they are gone. */
export async function closeIdle(sockets: net.Socket[]): Promise<void> {
  const closed = sockets.map((socket) => (socket.closed ? Promise.resolve() : once(socket, 'close')));
  for (const socket of sockets) socket.destroy();
  await Promise.race([Promise.all(closed), new Promise((resolve) => setTimeout(resolve, 5000))]);
}
