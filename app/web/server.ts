/**
 * The HTTP and WebSocket server of `berth serve`: the built UI and the API WebSocket (`/api`) on a loopback
 * address, random port by default. Every request needs the token and a loopback Host; the WebSocket also
 * needs the page's own Origin. Nothing here logs requests, so the token never reaches a log. Connections
 * that have shown no valid token or cookie yet are few and short-lived (./pending.ts), and the server holds
 * at most MAX_UI_CONNECTIONS in all: the rest of Berth's fds stay for its forwards and control socket.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { ApiTarget } from '../api/contract.js';
import { MAX_MESSAGE_BYTES } from '../api/session.js';
import { serveApiSocket } from './api-socket.js';
import {
  API_PROTOCOL,
  allowedHosts,
  allowedOrigins,
  cookieName,
  hasToken,
  hasTokenProtocol,
  hasUiCookie,
  hostAllowed,
  newToken,
} from './auth.js';
import { GATE_CSP, GATE_HTML } from './gate.js';
import { DEFAULT_PENDING_LIMITS, PendingConnections, type PendingLimits } from './pending.js';
import { reply, serveFile } from './static-files.js';

/** Where and what the web server serves. */
export interface WebServerOptions {
  /** A loopback address literal: 127.0.0.1 (default), another 127.x address or ::1. */
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** The folder of the built UI (index.html and assets/). */
  uiDir: string;
  target: ApiTarget;
  /** Fixed only by tests; a fresh random token otherwise. */
  token?: string;
  /** Connections without credentials yet: how many at once, for how long (DEFAULT_PENDING_LIMITS). */
  pending?: PendingLimits;
}

/**
 * Every connection of the UI server at once, with credentials or without: a browser needs a few per tab, and
 * the bound keeps the UI's share of Berth's fds small whatever its clients do. Further ones are closed at once.
 */
export const MAX_UI_CONNECTIONS = 128;

const COMMON_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-resource-policy': 'same-origin',
};

/** True for the addresses the UI may be served on. */
export function isLoopback(address: string): boolean {
  return address === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address);
}

/** A listening web server; `close()` ends every socket and stops it. */
export class WebServer {
  private readonly sockets = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_MESSAGE_BYTES,
    // The page offers `berth.v1` and `berth-token.TOKEN`; only the first is ever echoed back.
    handleProtocols: (protocols) => (protocols.has(API_PROTOCOL) ? API_PROTOCOL : false),
  });
  // What the UI cookie holds: a key of its own, so a cookie seen by another localhost port opens no API.
  private readonly uiKey = newToken();
  private readonly hosts: Set<string>;
  private readonly origins: Set<string>;
  private readonly pending: PendingConnections;

  private constructor(
    private readonly server: http.Server,
    readonly host: string,
    readonly port: number,
    readonly token: string,
    private readonly options: WebServerOptions,
  ) {
    this.hosts = allowedHosts(host, port);
    this.origins = allowedOrigins(this.hosts);
    this.pending = new PendingConnections(options.pending ?? DEFAULT_PENDING_LIMITS);
  }

  /** Starts listening; rejects for a non-loopback address or a port in use. */
  static async open(options: WebServerOptions): Promise<WebServer> {
    const host = options.host ?? '127.0.0.1';
    if (!isLoopback(host))
      throw new Error(`The UI is served on loopback only: use 127.0.0.1:PORT or [::1]:PORT, not ${host}.`);
    const server = http.createServer();
    server.maxConnections = MAX_UI_CONNECTIONS;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, host, options.port ?? 0)));
      server.listen({ host, port: options.port ?? 0 }, () => {
        server.removeAllListeners('error');
        resolve();
      });
    });
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const web = new WebServer(server, host, port, options.token ?? newToken(), options);
    server.on('connection', (socket: Socket) => web.pending.admit(socket));
    server.on('request', (request: IncomingMessage, response: ServerResponse) =>
      web.request(request, response),
    );
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) =>
      web.upgrade(request, socket, head),
    );
    server.on('clientError', (_err, socket) => socket.destroy());
    return web;
  }

  /** The address to open, with the token in the fragment (which browsers never send to a server). */
  get url(): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `http://${host}:${this.port}/#token=${this.token}`;
  }

  /** Closes every WebSocket and HTTP connection and stops listening. */
  async close(): Promise<void> {
    this.pending.clear();
    for (const client of this.sockets.clients) client.terminate();
    await new Promise<void>((resolve) => this.sockets.close(() => resolve()));
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  private request(request: IncomingMessage, response: ServerResponse): void {
    if (!hostAllowed(request, this.hosts)) {
      reply(response, 403, 'Berth answers only to its loopback address.', COMMON_HEADERS);
      return;
    }
    const pathname = (request.url ?? '/').split('?')[0] ?? '/';
    if (pathname === '/auth') {
      this.authenticate(request, response);
      return;
    }
    if (!hasToken(request, this.token) && !hasUiCookie(request, this.uiKey, this.port)) {
      response.writeHead(401, {
        ...COMMON_HEADERS,
        'content-type': 'text/html; charset=utf-8',
        'content-security-policy': GATE_CSP,
        'cache-control': 'no-store',
      });
      response.end(request.method === 'HEAD' ? undefined : GATE_HTML);
      return;
    }
    this.pending.trust(request.socket);
    serveFile(this.options.uiDir, pathname, request, response, {
      ...COMMON_HEADERS,
      'content-security-policy': this.appCsp(request),
    }).catch(() => response.destroy());
  }

  // The gate page trades the token (in a header, never in a URL) for an HttpOnly cookie that opens the UI's
  // files only: the API still needs the token.
  private authenticate(request: IncomingMessage, response: ServerResponse): void {
    const origin = request.headers.origin;
    if (request.method !== 'POST') {
      reply(response, 405, 'Use POST.', { ...COMMON_HEADERS, allow: 'POST' });
    } else if (origin !== undefined && !this.origins.has(origin)) {
      reply(response, 403, 'Berth accepts the token only from its own page.', COMMON_HEADERS);
    } else if (!hasToken(request, this.token)) {
      reply(response, 401, 'The token is missing or wrong.', COMMON_HEADERS);
    } else {
      this.pending.trust(request.socket);
      response.writeHead(204, {
        ...COMMON_HEADERS,
        'set-cookie': `${cookieName(this.port)}=${this.uiKey}; HttpOnly; SameSite=Strict; Path=/`,
        'cache-control': 'no-store',
      });
      response.end();
    }
  }

  private upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const refuse = (status: string) => {
      socket.once('finish', () => socket.destroy());
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    socket.on('error', () => socket.destroy());
    const origin = request.headers.origin;
    if (!hostAllowed(request, this.hosts)) refuse('403 Forbidden');
    else if ((request.url ?? '').split('?')[0] !== '/api') refuse('404 Not Found');
    else if (!hasToken(request, this.token) && !hasTokenProtocol(request, this.token))
      refuse('401 Unauthorized');
    else if (origin === undefined || !this.origins.has(origin)) refuse('403 Forbidden');
    else {
      this.pending.trust(socket as Socket);
      this.sockets.handleUpgrade(request, socket, head, (ws) => serveApiSocket(ws, this.options.target));
    }
  }

  private appCsp(request: IncomingMessage): string {
    const host = request.headers.host ?? '';
    return `default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws://${host}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
  }
}

// The sentence a person needs when the UI cannot listen where they asked.
function listenError(err: NodeJS.ErrnoException, host: string, port: number): Error {
  const where = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  if (err.code === 'EADDRINUSE')
    return new Error(
      `The UI address ${where} is in use by another program: choose another port with --ui, or leave --ui out for a random one.`,
    );
  if (err.code === 'EACCES')
    return new Error(
      `The UI cannot listen on ${where}: ports below 1024 need privileges. Choose a port above 1023.`,
    );
  if (err.code === 'EADDRNOTAVAIL')
    return new Error(`The UI cannot listen on ${where}: no interface has that address.`);
  return err;
}
