/**
 * Who may talk to `berth serve`'s HTTP and WebSocket server. The API (the WebSocket) needs the token itself,
 * as a bearer header or as a WebSocket subprotocol the page sends, plus the page's own Origin. The UI's static
 * files also open with an HttpOnly cookie that the page gets for the token; that cookie is a separate key,
 * not the token, because browsers send a localhost cookie to every port of localhost, so any other local
 * server the browser visits would see it. Every request's Host must be the loopback address and port the
 * server listens on (so a rebound DNS name cannot reach it).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** A fresh 256-bit token, URL-safe. */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** The cookie that opens one server's UI files (cookies are per host, not per port, so the port is in the name). */
export function cookieName(port: number): string {
  return `berth-ui-${port}`;
}

/** The WebSocket subprotocol the page speaks; the token rides beside it as `berth-token.TOKEN`. */
export const API_PROTOCOL = 'berth.v1';
const TOKEN_PROTOCOL = 'berth-token.';

/** The loopback names a browser may use to reach the server, as `Host` header values. */
export function allowedHosts(address: string, port: number): Set<string> {
  const literal = address.includes(':') ? `[${address}]` : address;
  return new Set([`${literal}:${port}`, `localhost:${port}`]);
}

/** The origins whose pages may open the WebSocket: the server's own page only. */
export function allowedOrigins(hosts: ReadonlySet<string>): Set<string> {
  return new Set([...hosts].map((host) => `http://${host}`));
}

/** True when the request's Host header names this server by its loopback address or `localhost`. */
export function hostAllowed(request: IncomingMessage, hosts: ReadonlySet<string>): boolean {
  const host = request.headers.host;
  return typeof host === 'string' && hosts.has(host.toLowerCase());
}

/** True when the request carries the token as `Authorization: Bearer TOKEN`. */
export function hasToken(request: IncomingMessage, token: string): boolean {
  const header = request.headers.authorization;
  return typeof header === 'string' && header.startsWith('Bearer ') && same(header.slice(7).trim(), token);
}

/** True when a WebSocket upgrade offers the token as the subprotocol `berth-token.TOKEN`. */
export function hasTokenProtocol(request: IncomingMessage, token: string): boolean {
  const header = request.headers['sec-websocket-protocol'];
  if (typeof header !== 'string') return false;
  return header
    .split(',')
    .map((value) => value.trim())
    .some((value) => value.startsWith(TOKEN_PROTOCOL) && same(value.slice(TOKEN_PROTOCOL.length), token));
}

/** True when any cookie of this server's name holds `key` (a planted cookie of the same name cannot shadow it). */
export function hasUiCookie(request: IncomingMessage, key: string, port: number): boolean {
  return readCookies(request.headers.cookie, cookieName(port)).some((value) => same(value, key));
}

/** Every value of cookie `name` in a Cookie header. */
export function readCookies(header: string | undefined, name: string): string[] {
  if (!header) return [];
  const values: string[] = [];
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) values.push(part.slice(eq + 1).trim());
  }
  return values;
}

// Constant-time, so the token cannot be guessed a character at a time from response times.
function same(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}
