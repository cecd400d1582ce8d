/**
 * The desktop app's Berth: the host `berth serve` runs too (app/host.ts: engine, config, records, helper,
 * control socket), so the `berth` CLI drives the desktop app, plus the "Start forwards on launch" setting.
 */
import type { ControlServer } from '../app/control/server.js';
import type { Engine } from '../app/engine/engine.js';
import type { PrivilegedBinder } from '../app/engine/listener.js';
import { openHost as openAppHost } from '../app/host.js';
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
  const host = await openAppHost({
    configPath: options.configPath,
    controlPath: options.controlPath,
    ...(options.binder ? { binder: options.binder } : {}),
    // "Never": forwards load as stopped; their `enabled` in the file is left as it was.
    ...(options.startForwards === 'never' ? { autoStart: false } : {}),
  });
  const notices = [...host.loaded.notices];
  try {
    if (options.startForwards === 'always') notices.push(...(await enableAll(host.engine)));
  } catch (err) {
    await host.close();
    throw err;
  }
  return { engine: host.engine, control: host.control, notices, close: () => host.close() };
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
