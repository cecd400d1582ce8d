/**
 * The targets every forwarder under test points at, in their own process: a TCP source (sends as fast as
 * the reader takes), a TCP echo, a one-response HTTP server that closes after each reply, and a UDP echo.
 * Prints their ports as one JSON line; exits when its stdin closes or on SIGTERM.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';

/** Ports of the running targets, as printed on the first line. */
export interface TargetPorts {
  pid: number;
  source: number;
  echo: number;
  http: number;
  udp: number;
}

const HOST = '127.0.0.1';
const CHUNK = Buffer.alloc(128 * 1024, 0x61);
const RESPONSE = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');

async function listen(server: net.Server): Promise<number> {
  server.listen({ host: HOST, port: 0, backlog: 4096 });
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

// Writes until the reader stops reading, then waits for 'drain'; ends when the peer goes away.
function pour(socket: net.Socket): void {
  let open = true;
  const fill = (): void => {
    while (open && socket.write(CHUNK));
  };
  socket.on('drain', fill);
  socket.on('close', () => (open = false));
  socket.on('error', () => (open = false));
  socket.resume();
  fill();
}

const sockets = new Set<net.Socket>();
const track = (socket: net.Socket): void => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => socket.destroy());
};

const source = net.createServer((socket) => {
  track(socket);
  pour(socket);
});
const echo = net.createServer((socket) => {
  track(socket);
  socket.setNoDelay(true);
  socket.on('data', (data) => socket.write(data));
});
const http = net.createServer((socket) => {
  track(socket);
  socket.once('data', () => socket.end(RESPONSE));
});
const udp = dgram.createSocket('udp4');
udp.on('message', (data, from) => udp.send(data, from.port, from.address));
udp.bind(0, HOST);
await once(udp, 'listening');

const ports: TargetPorts = {
  pid: process.pid,
  source: await listen(source),
  echo: await listen(echo),
  http: await listen(http),
  udp: udp.address().port,
};
process.stdout.write(`${JSON.stringify(ports)}\n`);

const quit = (): void => {
  for (const socket of sockets) socket.destroy();
  udp.close();
  process.exit(0);
};
process.on('SIGTERM', quit);
process.stdin.on('end', quit);
process.stdin.on('error', quit);
process.stdin.resume();
