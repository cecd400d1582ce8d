/**
 * UDP forwarding in JavaScript (node:dgram), where the native relay (udp-native.ts) is not available: one
 * upstream socket per client address, connected to the target so only its replies come back, which are routed
 * to that client. Idle sessions expire; the number of sessions is capped, in all and per source address, and at
 * a cap the least recently used idle session makes room, as on the native relay (docs/forwarding.md). Targets
 * given by name are resolved for each new session.
 */
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Forward } from '../config/schema.js';
import { newCounters, type Counters, type Forwarder } from './forwarder.js';
import { bindUdp, type PrivilegedBinder } from './listener.js';
import { maxSessionsProblem, targetProblem } from './messages.js';
import { sessionsPerSource, UDP_EVICT_IDLE_MS, type UdpLimits } from './limits.js';

// Datagrams a client sends before its upstream socket is connected are held, up to this many.
const MAX_PENDING = 64;

interface Session {
  key: string;
  /** The client's address: sessions of one source share its cap. */
  source: string;
  upstream: dgram.Socket | undefined;
  pending: Buffer[] | undefined;
  lastActive: number;
  closed: boolean;
}

/** Forwards one UDP listener to its target with node:dgram. */
export class DgramUdpForwarder implements Forwarder {
  private socket: dgram.Socket | undefined;
  // Least recently used first (a Map keeps insertion order; touch() re-inserts), of all and per source address.
  private readonly sessions = new Map<string, Session>();
  private readonly sources = new Map<string, Map<string, Session>>();
  private readonly counters: Counters = newCounters();
  private sweeper: NodeJS.Timeout | undefined;
  private readonly target: { host: string; port: number };

  constructor(
    private readonly forward: Forward,
    private readonly limits: UdpLimits,
    private readonly binder: PrivilegedBinder | undefined,
  ) {
    if ('unix' in forward.target) throw new Error('UDP forwards need a host and port target');
    this.target = forward.target;
  }

  async start(): Promise<'direct' | 'helper'> {
    const { socket, via } = await bindUdp(this.forward.listen.address, this.forward.listen.port, this.binder);
    this.socket = socket;
    socket.on('message', (data, client) => this.fromClient(data, client));
    socket.on('error', (err: NodeJS.ErrnoException) => this.fail(err));
    const every = Math.max(10, Math.min(5000, Math.floor(this.limits.idleTimeoutMs / 4)));
    this.sweeper = setInterval(() => this.expire(), every);
    return via;
  }

  stop(): Promise<void> {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    for (const key of [...this.sessions.keys()]) this.closeSession(key);
    const socket = this.socket;
    this.socket = undefined;
    if (!socket) return Promise.resolve();
    return new Promise((resolve) => socket.close(() => resolve()));
  }

  sample(): Counters {
    return { ...this.counters };
  }

  private fromClient(data: Buffer, client: dgram.RemoteInfo): void {
    const key = `${client.address}|${client.port}`;
    let session = this.sessions.get(key);
    if (!session) {
      if (!this.makeRoom(client.address)) {
        this.counters.errors += 1;
        this.counters.lastError = maxSessionsProblem(this.limits.maxSessions, this.share());
        return;
      }
      session = this.openSession(key, client);
    }
    this.touch(session);
    this.counters.toTarget += data.length;
    if (session.upstream && !session.pending) session.upstream.send(data);
    else if (session.pending && session.pending.length < MAX_PENDING) session.pending.push(data);
  }

  // False when a new client of `source` has no room: at the source's share, or at the session cap, and no
  // session there idle long enough to make room.
  private makeRoom(source: string): boolean {
    const mine = this.sources.get(source);
    if (mine && mine.size >= this.share()) return this.evictIdle(mine);
    if (this.sessions.size >= this.limits.maxSessions) return this.evictIdle(this.sessions);
    return true;
  }

  private share(): number {
    return this.limits.maxSessionsPerSource ?? sessionsPerSource(this.limits.maxSessions);
  }

  // Closes the least recently used session of `sessions` if it is idle.
  private evictIdle(sessions: Map<string, Session>): boolean {
    const [oldest] = sessions.values();
    const idleAfter = Math.min(UDP_EVICT_IDLE_MS, this.limits.idleTimeoutMs);
    if (!oldest || Date.now() - oldest.lastActive < idleAfter) return false;
    this.closeSession(oldest.key);
    return true;
  }

  // A datagram either way: the session becomes the most recently used, of all and of its source.
  private touch(session: Session): void {
    session.lastActive = Date.now();
    this.sessions.delete(session.key);
    this.sessions.set(session.key, session);
    const mine = this.sources.get(session.source);
    mine?.delete(session.key);
    mine?.set(session.key, session);
  }

  private openSession(key: string, client: dgram.RemoteInfo): Session {
    const session: Session = {
      key,
      source: client.address,
      upstream: undefined,
      pending: [],
      lastActive: Date.now(),
      closed: false,
    };
    this.sessions.set(key, session);
    const mine = this.sources.get(session.source) ?? new Map<string, Session>();
    mine.set(key, session);
    this.sources.set(session.source, mine);
    this.counters.active = this.sessions.size;
    this.counters.total += 1;
    void this.connectUpstream(key, session, client);
    return session;
  }

  private async connectUpstream(key: string, session: Session, client: dgram.RemoteInfo): Promise<void> {
    let address = this.target.host;
    let family = isIP(address);
    if (family === 0) {
      try {
        ({ address, family } = await lookup(address));
      } catch (err) {
        this.fail(err as NodeJS.ErrnoException);
        this.closeSession(key);
        return;
      }
    }
    if (session.closed) return;
    const upstream = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    session.upstream = upstream;
    upstream.on('message', (reply) => {
      if (session.closed) return;
      this.touch(session);
      this.counters.fromTarget += reply.length;
      this.socket?.send(reply, client.port, client.address);
    });
    // A connected UDP socket reports ICMP errors (ECONNREFUSED) here; the session stays for later datagrams.
    upstream.on('error', (err: NodeJS.ErrnoException) => this.fail(err));
    upstream.connect(this.target.port, address, () => {
      if (session.closed) return;
      const pending = session.pending ?? [];
      session.pending = undefined;
      for (const data of pending) upstream.send(data);
    });
  }

  private expire(): void {
    const now = Date.now();
    // Least recently used first: the first session not idle that long ends the sweep.
    for (const [key, session] of this.sessions) {
      if (now - session.lastActive < this.limits.idleTimeoutMs) break;
      this.closeSession(key);
    }
  }

  private closeSession(key: string): void {
    const session = this.sessions.get(key);
    if (!session) return;
    session.closed = true;
    this.sessions.delete(key);
    const mine = this.sources.get(session.source);
    mine?.delete(key);
    if (mine?.size === 0) this.sources.delete(session.source);
    session.upstream?.close();
    this.counters.active = this.sessions.size;
  }

  private fail(err: NodeJS.ErrnoException): void {
    this.counters.errors += 1;
    this.counters.lastError = targetProblem(this.forward.target, err);
  }
}
