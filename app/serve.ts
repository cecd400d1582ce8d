/** `berth serve`: the engine and its control socket in the foreground, until SIGINT or SIGTERM. */
import type { BerthEvent } from './api/contract.js';
import { describeListen } from './config/schema.js';
import { ConfigStore } from './config/store.js';
import { ControlServer } from './control/server.js';
import { Engine } from './engine/engine.js';
import { WebServer } from './web/server.js';
import { defaultUiDir } from './web/ui-dir.js';

/** Where serve reads and writes, and what it prints to. */
export interface ServeOptions {
  configPath: string;
  controlPath: string;
  /** Where the UI is served (loopback only); false for `--no-ui`. Default 127.0.0.1, a random port. */
  ui?: { host: string; port: number } | false;
  /** The built UI; default the package's dist/renderer. */
  uiDir?: string;
  out: (line: string) => void;
  err: (line: string) => void;
}

/** A running Berth: the engine, its control socket, and how to stop both. */
export interface Served {
  engine: Engine;
  control: ControlServer;
  /** The UI's web server, unless `--no-ui`. */
  web: WebServer | undefined;
  stop(): Promise<void>;
}

/** Starts the engine and the control socket; rejects (with nothing left open) if either cannot start. */
export async function serve(options: ServeOptions): Promise<Served> {
  const engine = new Engine({ store: new ConfigStore(options.configPath) });
  // The control socket first: it is also the single-instance lock, checked before any port is bound.
  const control = await ControlServer.open(options.controlPath, engine);
  let loaded;
  try {
    loaded = await engine.start();
  } catch (err) {
    await control.close();
    await engine.close();
    throw err;
  }
  for (const notice of loaded.notices) options.err(`berth: ${notice}`);
  options.out(`Berth control socket: ${options.controlPath}`);
  options.out(`Berth config: ${options.configPath}${loaded.readOnly ? ' (read-only)' : ''}`);
  let web: WebServer | undefined;
  if (options.ui !== false) {
    try {
      web = await WebServer.open({
        host: options.ui?.host ?? '127.0.0.1',
        port: options.ui?.port ?? 0,
        uiDir: options.uiDir ?? defaultUiDir(),
        target: engine,
      });
    } catch (err) {
      await control.close();
      await engine.close();
      throw err;
    }
    options.out(`Berth UI: ${web.url}`);
  }
  const unsubscribe = engine.subscribe((event) => report(event, options));
  return {
    engine,
    control,
    web,
    async stop() {
      unsubscribe();
      await web?.close();
      await control.close();
      await engine.close();
    },
  };
}

// One line per state change a person cares about; counters are left to `berth status`.
function report(event: BerthEvent, options: ServeOptions): void {
  if (event.type === 'snapshot') {
    for (const forward of event.forwards) report({ type: 'forward', forward }, options);
  } else if (event.type === 'forward') {
    const f = event.forward;
    if (f.state === 'listening')
      options.out(`${f.id}: listening on ${describeListen(f)} (${f.via ?? 'direct'})`);
    else if (f.state === 'error' && f.error) options.err(`${f.id}: ${f.error.code}: ${f.error.message}`);
    else if (f.state === 'stopped') options.out(`${f.id}: stopped`);
  } else if (event.type === 'removed') {
    options.out(`${event.id}: removed`);
  }
}
