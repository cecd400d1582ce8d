/**
 * The built-in throughput generator, in its own process: `streams` connections to a source that sends as
 * fast as it can; reads for `seconds` and prints `{ "bitsPerSecond": N }`. Usage: stream-client PORT STREAMS SECONDS
 */
import net from 'node:net';

const port = Number(process.argv[2]);
const streams = Number(process.argv[3] ?? 1);
const seconds = Number(process.argv[4] ?? 1);
const warmupMs = Math.min(200, seconds * 100);

let bytes = 0;
let counting = false;
const sockets: net.Socket[] = [];
for (let i = 0; i < streams; i++) {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('data', (chunk) => {
    if (counting) bytes += chunk.length;
  });
  socket.on('error', (err) => {
    process.stderr.write(`stream-client: ${err.message}\n`);
    process.exit(1);
  });
  sockets.push(socket);
}
await new Promise((resolve) => setTimeout(resolve, warmupMs));
counting = true;
const t0 = process.hrtime.bigint();
await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
counting = false;
const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
for (const socket of sockets) socket.destroy();
process.stdout.write(`${JSON.stringify({ bitsPerSecond: (bytes * 8) / elapsed })}\n`);
process.exit(0);
