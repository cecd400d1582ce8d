/**
 * TCP forwarding on net.Socket: one connection to the target per accepted client, bytes piped both ways with
 * backpressure, half-close preserved, resets propagated, failures counted while the listener stays up. The
 * fallback data plane (tcp-forwarder.ts chooses); the addon's relay (tcp-native.ts) does the same natively.
 */
import net from 'node:net';
import type { Forward, Target } from '../config/schema.js';
import { newCounters, type Counters, type Forwarder } from './forwarder.js';
import { listenTcp, type PrivilegedBinder } from './listener.js';
import { acceptProblem, maxConnectionsProblem, targetProblem } from './messages.js';
import { RETRY_MS, type TcpLimits } from './limits.js';

interface Connection {
  client: net.Socket;
  /** Undefined between attempts while waiting for a backend to come up. */
  upstream: net.Socket | undefined;
}

/** Forwards one TCP listener to its target with net.Socket. */
export class NodeTcpForwarder implements Forwarder {
  private readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  private readonly counters: Counters = newCounters();

  constructor(
    private readonly forward: Forward,
    private readonly limits: TcpLimits,
    private readonly binder: PrivilegedBinder | undefined,
  ) {
    // pauseOnConnect: nothing is read from a client until its target connection is up.
    // noDelay at creation: libuv sets TCP_NODELAY on accept, no JS call per connection.
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (client) =>
      this.accept(client),
    );
    this.server.maxConnections = limits.maxConnections;
    this.server.on('drop', () => {
      this.counters.errors += 1;
      this.counters.lastError = maxConnectionsProblem(limits.maxConnections);
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
      this.counters.lastError = acceptProblem(err);
    });
    return via;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      for (const connection of this.connections) {
        connection.client.destroy();
        connection.upstream?.destroy();
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
      sample.fromTarget += upstream?.bytesRead ?? 0;
    }
    return sample;
  }

  private accept(client: net.Socket): void {
    const counters = this.counters;
    counters.active += 1;
    counters.total += 1;
    const connection: Connection = { client, upstream: undefined };
    this.connections.add(connection);
    const deadline = Date.now() + this.limits.connectTimeoutMs;
    let connected = false;
    let retryTimer: NodeJS.Timeout | undefined;
    let clientClosed = false;
    let upstreamClosed = true;

    const giveUp = (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      clearTimeout(retryTimer);
      this.fail(err);
      // A client whose target failed is told at once: a reset, as a refused connection would be.
      if (!connected || err.code === 'ECONNRESET') reset(client);
      else client.destroy();
    };
    const timer = setTimeout(() => {
      const err: NodeJS.ErrnoException = new Error('connect timed out');
      err.code = 'ETIMEDOUT';
      if (connection.upstream) connection.upstream.destroy(err);
      else giveUp(err);
    }, this.limits.connectTimeoutMs);
    const finish = () => {
      if (!clientClosed || !upstreamClosed) return;
      clearTimeout(timer);
      clearTimeout(retryTimer);
      this.connections.delete(connection);
      counters.active -= 1;
      counters.toTarget += client.bytesRead;
      counters.fromTarget += connection.upstream?.bytesRead ?? 0;
    };

    const attempt = () => {
      const upstream = connectTo(this.forward.target);
      connection.upstream = upstream;
      upstreamClosed = false;
      let retrying = false;
      upstream.on('connect', () => {
        connected = true;
        clearTimeout(timer);
        relay(client, upstream);
        relay(upstream, client);
      });
      upstream.on('error', (err: NodeJS.ErrnoException) => {
        // A backend that is still starting refuses: the client waits for it, up to the connect timeout.
        retrying =
          !connected &&
          this.forward.backend !== undefined &&
          (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') &&
          Date.now() + RETRY_MS < deadline &&
          !client.destroyed;
        if (!retrying) giveUp(err);
      });
      upstream.on('close', (hadError) => {
        if (retrying && !clientClosed) {
          connection.upstream = undefined;
          upstreamClosed = true;
          retryTimer = setTimeout(attempt, RETRY_MS);
          return;
        }
        upstreamClosed = true;
        // The target went away before the client finished: nothing more can reach the client.
        if (hadError && !client.destroyed) client.destroy();
        finish();
      });
    };

    client.on('error', (err: NodeJS.ErrnoException) => {
      const upstream = connection.upstream;
      if (upstream && err.code === 'ECONNRESET') reset(upstream);
      else upstream?.destroy();
    });
    client.on('close', () => {
      clientClosed = true;
      clearTimeout(retryTimer);
      if (!connected) connection.upstream?.destroy();
      finish();
    });
    attempt();
  }

  private fail(err: NodeJS.ErrnoException): void {
    this.counters.errors += 1;
    this.counters.lastError = targetProblem(this.forward.target, err);
  }
}

function connectTo(target: Target): net.Socket {
  if ('unix' in target) return net.connect({ path: target.unix, allowHalfOpen: true });
  return net.connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true });
}

// What pipe() does for a socket pair, and no more: backpressure (the reader pauses until the writer drains)
// and a FIN forwarded as end() of the other side, so half-close is preserved. pipe() keeps nine closures per
// direction for every connection; this keeps three, which cut Berth's memory per idle connection by a fifth
// (docs/benchmarks.md). Events that fire once use on(), not once(): once() allocates a wrapper per listener.
function relay(from: net.Socket, to: net.Socket): void {
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', () => from.resume());
  from.on('end', () => to.end());
  from.resume();
}

// Sends a TCP RST where the socket is TCP; a Unix socket target can only be closed.
function reset(socket: net.Socket): void {
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}
