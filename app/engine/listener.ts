/**
 * Acquiring a listener (docs/architecture.md): bind directly first; on EACCES/EPERM ask berth-helper for an
 * already bound socket and adopt its fd. The helper path plugs in through `PrivilegedBinder`.
 */
import dgram from 'node:dgram';
import { closeSync, fstatSync } from 'node:fs';
import { isIP } from 'node:net';
import type net from 'node:net';

/** How a listener was acquired, as `berth status --json` shows it in `via`. */
export type Via = 'direct' | 'helper';

/** Gets a bound socket fd for a port this process may not bind itself (berth-helper behind it). */
export interface PrivilegedBinder {
  /** Resolves to a close-on-exec fd bound (and, for TCP, listening) on address:port. */
  bind(protocol: 'tcp' | 'udp', address: string, port: number): Promise<number>;
}

const needsPrivilege = (err: unknown): boolean => {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EACCES' || code === 'EPERM';
};

/** Listens `server` on address:port, directly or through the helper. Rejects with the bind error. */
export async function listenTcp(
  server: net.Server,
  address: string,
  port: number,
  binder: PrivilegedBinder | undefined,
): Promise<Via> {
  try {
    await listen(server, { host: address, port, exclusive: true });
    return 'direct';
  } catch (err) {
    if (!binder || !needsPrivilege(err)) throw err;
  }
  const fd = await binder.bind('tcp', address, port);
  const identity = fdIdentity(fd);
  try {
    await listen(server, { fd });
  } catch (err) {
    closeIfStill(fd, identity);
    throw err;
  }
  return 'helper';
}

/** Creates a UDP socket bound on address:port, directly or through the helper. */
export async function bindUdp(
  address: string,
  port: number,
  binder: PrivilegedBinder | undefined,
): Promise<{ socket: dgram.Socket; via: Via }> {
  const type = isIP(address) === 6 ? 'udp6' : 'udp4';
  const direct = dgram.createSocket({ type, reuseAddr: false });
  try {
    await bind(direct, { address, port, exclusive: true });
    return { socket: direct, via: 'direct' };
  } catch (err) {
    direct.close();
    if (!binder || !needsPrivilege(err)) throw err;
  }
  const fd = await binder.bind('udp', address, port);
  const identity = fdIdentity(fd);
  const adopted = dgram.createSocket({ type });
  try {
    await bind(adopted, { fd });
  } catch (err) {
    adopted.close();
    closeIfStill(fd, identity);
    throw err;
  }
  return { socket: adopted, via: 'helper' };
}

/**
 * A socket bound (for TCP, listening) on address:port by `bind` (the addon's, close-on-exec), else from the
 * helper, whose fd is close-on-exec from its arrival; its fd and how it was acquired.
 */
export async function bindFd(
  protocol: 'tcp' | 'udp',
  bind: (address: string, port: number) => number,
  address: string,
  port: number,
  binder: PrivilegedBinder | undefined,
): Promise<{ fd: number; via: Via }> {
  try {
    return { fd: bind(address, port), via: 'direct' };
  } catch (err) {
    if (!binder || !needsPrivilege(err)) throw err;
  }
  return { fd: await binder.bind(protocol, address, port), via: 'helper' };
}

function listen(server: net.Server, options: net.ListenOptions | { fd: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(options);
  });
}

function bind(socket: dgram.Socket, options: dgram.BindOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      socket.off('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      socket.off('error', onError);
      resolve();
    };
    socket.once('error', onError);
    socket.once('listening', onListening);
    socket.bind(options);
  });
}

function fdIdentity(fd: number): string {
  const stat = fstatSync(fd);
  return `${stat.dev}:${stat.ino}`;
}

// A helper fd that could not be adopted must be closed, or the port stays bound. But a failed adoption may
// already have closed it and the number may be reused, so close it only if it is still the same socket.
function closeIfStill(fd: number, identity: string): void {
  try {
    if (fdIdentity(fd) === identity) closeSync(fd);
  } catch {
    // Already closed by the handle that failed to adopt it.
  }
}
