/**
 * One running Berth, composed once for `berth serve` (app/serve.ts) and the desktop app (main/host.ts): the
 * engine over its config store, the backend records, the helper binder, and the control socket. The control
 * socket opens first: it is also the lock against a second Berth, checked before any port is bound.
 */
import { dirname, join } from 'node:path';
import { ConfigStore, type LoadResult } from './config/store.js';
import { ControlServer } from './control/server.js';
import { Engine } from './engine/engine.js';
import type { PrivilegedBinder } from './engine/listener.js';
import { createHelperBinder } from './helper/helper-binder.js';
import { helperSocketPath } from './paths.js';

/** Where a host reads and listens. */
export interface HostOptions {
  configPath: string;
  controlPath: string;
  /** How privileged ports are bound; default berth-helper at the config's `helper.socket` or its default. */
  binder?: PrivilegedBinder;
  /** False loads the enabled forwards as stopped, leaving `enabled` in the file as it is (default true). */
  autoStart?: boolean;
}

/** The running engine and its control socket. */
export interface Host {
  engine: Engine;
  control: ControlServer;
  /** What loading the config found: notices for the user, and whether the file is read-only. */
  loaded: LoadResult;
  /** Closes the control socket, then stops every forward and backend and releases every port; once. */
  close(): Promise<void>;
}

/** Opens the control socket and starts the engine; rejects with nothing left open if either fails. */
export async function openHost(options: HostOptions): Promise<Host> {
  const engine: Engine = new Engine({
    store: new ConfigStore(options.configPath),
    // Privileged ports come from berth-helper; the addon loads only when a bind is refused (EACCES).
    binder: options.binder ?? createHelperBinder(() => helperSocketPath(engine.helperSocket)),
    // Next to the control socket: per user, per instance, and gone after a reboot like the pids it names.
    recordsPath: join(dirname(options.controlPath), 'backends.json'),
    ...(options.autoStart === false ? { autoStart: false } : {}),
  });
  const control = await ControlServer.open(options.controlPath, engine);
  let loaded: LoadResult;
  try {
    loaded = await engine.start();
  } catch (err) {
    await control.close();
    await engine.close();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    engine,
    control,
    loaded,
    close() {
      closing ??= control.close().then(() => engine.close());
      return closing;
    },
  };
}
