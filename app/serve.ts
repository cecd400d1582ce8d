/** `berth serve`: the engine and its control socket in the foreground, until SIGINT or SIGTERM. */
import type { BerthEvent } from './api/contract.js';
import { describeListen } from './config/schema.js';
import type { ControlServer } from './control/server.js';
import type { Engine } from './engine/engine.js';
import { openHost } from './host.js';
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

/** Starts the engine and the control socket (app/host.ts), then the UI; rejects with nothing left open. */
export async function serve(options: ServeOptions): Promise<Served> {
  const host = await openHost({ configPath: options.configPath, controlPath: options.controlPath });
  const { engine, control, loaded } = host;
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
      await host.close();
      throw err;
    }
    options.out(`Berth UI: ${web.url}`);
  }
  const seen = new Map<string, string>();
  const unsubscribe = engine.subscribe((event) => report(event, options, seen));
  return {
    engine,
    control,
    web,
    async stop() {
      unsubscribe();
      await web?.close();
      await host.close();
    },
  };
}

// One line per change a person cares about (listener state, backend state); counters are left to
// `berth status`. `seen` remembers what was printed last per forward.
function report(event: BerthEvent, options: ServeOptions, seen: Map<string, string>): void {
  if (event.type === 'snapshot') {
    for (const forward of event.forwards) report({ type: 'forward', forward }, options, seen);
  } else if (event.type === 'forward') {
    const f = event.forward;
    const listener =
      f.state === 'listening'
        ? `listening on ${describeListen(f)} (${f.via ?? 'direct'})`
        : f.state === 'error' && f.error
          ? `${f.error.code}: ${f.error.message}`
          : f.state;
    if (seen.get(f.id) !== listener && f.state !== 'starting') {
      (f.state === 'error' ? options.err : options.out)(`${f.id}: ${listener}`);
    }
    seen.set(f.id, listener);
    const b = f.backend;
    if (!b) return;
    const backend =
      b.state === 'running'
        ? `backend running (pid ${b.pid})`
        : b.state === 'failed'
          ? `backend failed: ${b.reason ?? 'unknown reason'}`
          : b.state === 'restarting' || b.state === 'exited'
            ? `backend ${b.state} (${b.signal ? `killed by ${b.signal}` : `exit code ${b.exitCode}`})`
            : `backend ${b.state}`;
    if (seen.get(`${f.id} backend`) !== backend && b.state !== 'starting') {
      (b.state === 'failed' ? options.err : options.out)(`${f.id}: ${backend}`);
    }
    seen.set(`${f.id} backend`, backend);
    if (b.fdCheck === 'leak' && seen.get(`${f.id} leak`) !== String(b.pid)) {
      options.err(
        `${f.id}: the backend (pid ${b.pid}) holds one of Berth's listening sockets: ports may stay bound.`,
      );
      seen.set(`${f.id} leak`, String(b.pid));
    }
  } else if (event.type === 'removed') {
    options.out(`${event.id}: removed`);
    for (const key of [...seen.keys()])
      if (key === event.id || key.startsWith(`${event.id} `)) seen.delete(key);
  } else if (event.type === 'notice') {
    options.err(`berth: ${event.message}`);
  }
}
