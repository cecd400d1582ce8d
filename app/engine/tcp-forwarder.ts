/**
 * TCP forwarding: one connection to the target per accepted client, bytes piped both ways with backpressure,
 * half-close preserved, resets propagated, failures counted while the listener stays up.
 */
import net from 'node:net';
import type { Forward, Target } from '../config/schema.js';
import { newCounters, type Counters, type Forwarder } from './counters.js';
import { listenTcp, type PrivilegedBinder } from './listener.js';
import { fdLimitMessage, targetProblem } from './messages.js';

/** Limits of a TCP forward. */
export interface TcpLimits {
  /** How long a target may take to accept a connection. */
  connectTimeoutMs: number;
  /** Concurrent connections; further clients are closed at once and counted as errors. */
  maxConnections: number;
}

interface Connection {
  client: net.Socket;
  upstream: net.Socket;
}

/** Forwards one TCP listener to its target. */
export class TcpForwarder implements Forwarder {
  private readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  private readonly counters: Counters = newCounters();

  constructor(
    private readonly forward: Forward,
    private readonly limits: TcpLimits,
    private readonly binder: PrivilegedBinder | undefined,
  ) {
    // pauseOnConnect: nothing is read from a client until its target connection is up.
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) =>
      this.accept(client),
    );
    this.server.maxConnections = limits.maxConnections;
    this.server.on('drop', () => {
      this.counters.errors += 1;
      this.counters.lastError = {
        code: 'EMAXCONN',
        message: `More than ${limits.maxConnections} connections at once: a new one was closed.`,
      };
    });
  }

  async start(): Promise<'direct' | 'helper'> {
    const via = await listenTcp(
      this.server,
      this.forward.listen.address,
      this.forward.listen.port,
      this.binder,
    );
    // Errors after listening come from accept(): EMFILE, ENFILE, ENOBUFS. libuv keeps listening and sheds
    // the pending connection itself (its EMFILE trick), so we only count them; the listener stays up.
    this.server.on('error', (err: NodeJS.ErrnoException) => {
      this.counters.errors += 1;
      this.counters.lastError =
        err.code === 'EMFILE' || err.code === 'ENFILE'
          ? { code: err.code, message: fdLimitMessage }
          : { code: err.code ?? 'EUNKNOWN', message: `Accepting a connection failed: ${err.message}` };
    });
    return via;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      for (const connection of this.connections) {
        connection.client.destroy();
        connection.upstream.destroy();
      }
      if (!this.server.listening) return resolve();
      // close() waits for connections, all destroyed above; the listening fd is closed synchronously.
      this.server.close(() => resolve());
    });
  }

  sample(): Counters {
    const sample = { ...this.counters };
    for (const { client, upstream } of this.connections) {
      sample.toTarget += client.bytesRead;
      sample.fromTarget += upstream.bytesRead;
    }
    return sample;
  }

  private accept(client: net.Socket): void {
    const counters = this.counters;
    counters.active += 1;
    counters.total += 1;
    const upstream = connectTo(this.forward.target);
    const connection: Connection = { client, upstream };
    this.connections.add(connection);

    let connected = false;
    const timer = setTimeout(() => {
      const err: NodeJS.ErrnoException = new Error('connect timed out');
      err.code = 'ETIMEDOUT';
      upstream.destroy(err);
    }, this.limits.connectTimeoutMs);

    upstream.once('connect', () => {
      connected = true;
      clearTimeout(timer);
      upstream.setNoDelay(true);
      client.setNoDelay(true);
      // pipe() respects backpressure and, with allowHalfOpen, forwards a FIN as end() of the other side.
      client.pipe(upstream);
      upstream.pipe(client);
    });

    upstream.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      this.fail(err);
      // A client whose target failed is told at once: a reset, as a refused connection would be.
      if (!connected || err.code === 'ECONNRESET') reset(client);
      else client.destroy();
    });
    client.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET') reset(upstream);
      else upstream.destroy();
    });

    let open = 2;
    const closed = () => {
      open -= 1;
      if (open > 0) return;
      clearTimeout(timer);
      this.connections.delete(connection);
      counters.active -= 1;
      counters.toTarget += client.bytesRead;
      counters.fromTarget += upstream.bytesRead;
    };
    client.once('close', closed);
    upstream.once('close', (hadError) => {
      // The target went away before the client finished: nothing more can reach the client.
      if (hadError && !client.destroyed) client.destroy();
      closed();
    });
  }

  private fail(err: NodeJS.ErrnoException): void {
    this.counters.errors += 1;
    this.counters.lastError = targetProblem(this.forward.target, err);
  }
}

function connectTo(target: Target): net.Socket {
  if ('unix' in target) return net.connect({ path: target.unix, allowHalfOpen: true });
  return net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
}

// Sends a TCP RST where the socket is TCP; a Unix socket target can only be closed.
function reset(socket: net.Socket): void {
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}
