/**
 * Berth under test, in its own process so the load generator never shares its event loop: the engine on a
 * temp config holding the bench's forwards, plus its control socket for the API latency figure.
 * `argv[2]` is a JSON `BerthChildSpec`. The bench bundles this file (esbuild) and runs it with plain `node`,
 * as the product runs, so no TypeScript loader sits in its memory. Exits on SIGTERM or when stdin closes.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Forward } from '../app/config/schema.js';
import { ConfigStore } from '../app/config/store.js';
import { ControlServer } from '../app/control/server.js';
import { Engine } from '../app/engine/engine.js';
import { nativeTcp } from '../app/engine/tcp-forwarder.js';
import { nativeUdp } from '../app/engine/udp-forwarder.js';

/** What the child is asked to run. */
export interface BerthChildSpec {
  dir: string;
  control: string;
  forwards: Forward[];
  maxConnections: number;
  /** Which data planes the engine uses: the addon's relays (the default) or JavaScript ('node'). */
  dataPlane: 'native' | 'node';
}

const spec = JSON.parse(process.argv[2] ?? '{}') as BerthChildSpec;
// A column labelled native must not quietly measure the fallback.
if (spec.dataPlane === 'native' && (!nativeUdp() || !nativeTcp())) {
  process.stderr.write(
    `berth-child: the addon's relays are not available (BERTH_NATIVE_ADDON=${process.env.BERTH_NATIVE_ADDON}); run npm run build:native\n`,
  );
  process.exit(1);
}
const configFile = join(spec.dir, 'config.json');
await writeFile(configFile, JSON.stringify({ version: 1, forwards: spec.forwards }), { mode: 0o600 });
const engine = new Engine({
  store: new ConfigStore(configFile),
  tcp: { maxConnections: spec.maxConnections, dataPlane: spec.dataPlane },
  udp: { maxSessions: 4096, dataPlane: spec.dataPlane },
});
const control = await ControlServer.open(spec.control, engine);
await engine.start();
const status = await engine.call('status', {});
const broken = status.forwards.filter((f) => f.state !== 'listening');
if (broken.length > 0) {
  process.stderr.write(`berth-child: not listening: ${JSON.stringify(broken)}\n`);
  process.exit(1);
}
process.stdout.write(`${JSON.stringify({ pid: process.pid })}\n`);

let quitting = false;
const quit = (): void => {
  if (quitting) return;
  quitting = true;
  // process.exit after close so --cpu-prof writes its profile.
  void Promise.all([control.close(), engine.close()]).finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', quit);
process.on('SIGINT', quit);
process.stdin.on('end', quit);
process.stdin.on('error', quit);
process.stdin.resume();
