/**
 * Who may talk to `berth serve`'s HTTP and WebSocket server: requests that carry the token (a bearer header
 * or the HttpOnly cookie the page gets for it), whose Host is the loopback address and port the server
 * listens on (so a rebound DNS name cannot reach it), and, for WebSockets, whose Origin is that same page.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** A fresh 256-bit token, URL-safe. */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** The cookie that carries the token for one server (cookies are per host, not per port, so the port is in the name). */
export function cookieName(port: number): string {
  return `berth-token-${port}`;
}

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

/** True when the request carries the token, as `Authorization: Bearer TOKEN` or as the server's cookie. */
export function hasToken(request: IncomingMessage, token: string, port: number): boolean {
  const header = request.headers.authorization;
  if (typeof header === 'string' && header.startsWith('Bearer ') && same(header.slice(7).trim(), token))
    return true;
  const cookie = readCookie(request.headers.cookie, cookieName(port));
  return cookie !== undefined && same(cookie, token);
}

/** The value of cookie `name` in a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

// Constant-time, so the token cannot be guessed a character at a time from response times.
function same(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}
