/**
 * The control socket: the CLI's transport to a running engine (and the desktop app's, so the CLI drives it
 * too). A Unix socket with mode 0600 in a 0700 folder; one JSON line per request, response or event, each
 * connection one API session (app/api/session.ts). A line that is not JSON, or longer than 1 MiB, is
 * answered with EPROTO and closes the connection (as on the WebSocket); a JSON line of the wrong shape is
 * only answered with EPROTO.
 */
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import net from 'node:net';
import { dirname } from 'node:path';
import type { ApiTarget } from '../api/contract.js';
import { ApiSession } from '../api/session.js';
import { readMessages, writeMessage } from './framing.js';

/** Thrown when another Berth already answers on the control socket. */
export class AlreadyRunningError extends Error {
  override readonly name = 'AlreadyRunningError';
  readonly code = 'EALREADYRUNNING';
  constructor(readonly path: string) {
    super(`Berth is already running: its control socket ${path} answers. Use the berth CLI to talk to it.`);
  }
}

/** A listening control socket; `close()` stops it and removes the socket file. */
export class ControlServer {
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    readonly path: string,
    private readonly server: net.Server,
  ) {}

  /** Opens the socket at `path`, replacing a stale one; fails if a live Berth answers there. */
  static async open(path: string, target: ApiTarget): Promise<ControlServer> {
    await privateFolder(dirname(path));
    if (await answers(path)) throw new AlreadyRunningError(path);
    await unlink(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    const server = net.createServer();
    const control = new ControlServer(path, server);
    server.on('connection', (socket) => control.serve(socket, target));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // The umask makes the socket 0600 from the moment bind() creates it; chmod below is the belt.
      const previous = process.umask(0o177);
      try {
        server.listen(path, () => {
          server.off('error', reject);
          resolve();
        });
      } finally {
        process.umask(previous);
      }
    });
    await chmod(path, 0o600);
    // After listening, errors come from accept() (EMFILE and the like): the client is shed, the socket stays.
    server.on('error', () => undefined);
    return control;
  }

  /** Stops accepting, ends every client and removes the socket file. */
  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await unlink(this.path).catch(() => undefined);
  }

  private serve(socket: net.Socket, target: ApiTarget): void {
    this.sockets.add(socket);
    const session = new ApiSession(target, {
      send: (message) => writeMessage(socket, message),
      buffered: () => socket.writableLength,
      close: () => socket.destroy(),
    });
    socket.on('close', () => {
      this.sockets.delete(socket);
      session.end();
    });
    socket.on('error', () => socket.destroy());
    readMessages(
      socket,
      (message) => session.receive(message),
      (reason) => {
        session.unreadable(reason);
        // end() flushes the error line; destroySoon closes both directions once it is written.
        socket.end(() => socket.destroy());
      },
    );
  }
}

/**
 * Creates the folder 0700 or checks that the existing one is this user's own and closed to others: in a
 * folder another user made (say /tmp/berth-UID, made first), they could swap the socket or plant records.
 */
export async function privateFolder(folder: string): Promise<void> {
  await mkdir(folder, { recursive: true, mode: 0o700 });
  const info = await lstat(folder);
  const uid = process.getuid?.();
  if (!info.isDirectory() || (uid !== undefined && info.uid !== uid) || (info.mode & 0o077) !== 0) {
    throw new Error(
      `${folder} must be a folder of this user with no access for others (mode 0700); it is ${
        info.isDirectory()
          ? `owned by uid ${info.uid}, mode ${(info.mode & 0o777).toString(8)}`
          : 'not a folder'
      }. Remove it or fix it (chmod 700), or set --control or $XDG_RUNTIME_DIR.`,
    );
  }
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}
