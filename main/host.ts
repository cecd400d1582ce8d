/**
 * The engine and the control socket inside the main process, composed as `berth serve` composes them (minus
 * the web server), so the `berth` CLI drives the desktop app too. The control socket opens first: it is
 * also the lock against a `berth serve` already running, checked before any port is bound.
 */
import { dirname, join } from 'node:path';
import { ControlServer } from '../app/control/server.js';
import { ConfigStore } from '../app/config/store.js';
import { Engine, type EngineOptions } from '../app/engine/engine.js';
import type { PrivilegedBinder } from '../app/engine/listener.js';
import { createHelperBinder } from '../app/helper/helper-binder.js';
import { helperSocketPath } from '../app/paths.js';
import type { StartForwards } from './settings.js';

/** Where the host reads and listens, and what it starts. */
export interface HostOptions {
  configPath: string;
  controlPath: string;
  startForwards: StartForwards;
  binder?: PrivilegedBinder;
}

/** The running engine and its control socket. */
export interface Host {
  engine: Engine;
  control: ControlServer;
  /** Things the user must be told (a config kept aside, a newer format, forwards that could not start). */
  notices: string[];
  /** Closes the control socket, then stops every forward and backend and releases every port. */
  close(): Promise<void>;
}

/** Opens the control socket and starts the engine; rejects with nothing left open if either fails. */
export async function openHost(options: HostOptions): Promise<Host> {
  const engineOptions: EngineOptions = {
    store: new ConfigStore(options.configPath),
    // As `berth serve`: backends recorded next to the control socket, so a killed Berth is cleaned up after.
    recordsPath: join(dirname(options.controlPath), 'backends.json'),
    // Privileged ports through berth-helper, at the config's `helper.socket` or the platform default.
    binder: options.binder ?? createHelperBinder(() => helperSocketPath(engine.helperSocket)),
    // "Never": forwards load as stopped; their `enabled` in the file is left as it was.
    ...(options.startForwards === 'never' ? { autoStart: false } : {}),
  };
  const engine: Engine = new Engine(engineOptions);
  const control = await ControlServer.open(options.controlPath, engine);
  const notices: string[] = [];
  try {
    const loaded = await engine.start();
    notices.push(...loaded.notices);
    if (options.startForwards === 'always') notices.push(...(await enableAll(engine)));
  } catch (err) {
    await control.close();
    await engine.close();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    engine,
    control,
    notices,
    close() {
      closing ??= control.close().then(() => engine.close());
      return closing;
    },
  };
}

// "Always": every forward not enabled is enabled (and saved so); one that cannot start is reported.
async function enableAll(engine: Engine): Promise<string[]> {
  const { forwards } = await engine.call('status', {});
  const notices: string[] = [];
  for (const forward of forwards.filter((f) => !f.enabled)) {
    try {
      await engine.call('enable', { id: forward.id });
    } catch (err) {
      notices.push(`${forward.id} could not be started: ${(err as Error).message}`);
    }
  }
  return notices;
}
