/**
 * Electron's entry point (built by Forge's Vite plugin to .vite/build/main.cjs). Everything else receives
 * Electron as an argument; this file only reads the environment and hands over.
 */
import * as electron from 'electron';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDesktopArgs } from './args.js';
import { runDesktop } from './desktop.js';

// Defined by @electron-forge/plugin-vite: the renderer's dev server during `electron-forge start`.
declare const MAIN_WINDOW_VITE_DEV_SERVER_URL: string | undefined;

const here = dirname(fileURLToPath(import.meta.url));
const args = parseDesktopArgs(process.argv.slice(1));
const devServerUrl =
  typeof MAIN_WINDOW_VITE_DEV_SERVER_URL === 'string' ? MAIN_WINDOW_VITE_DEV_SERVER_URL : undefined;
const log = (line: string) => console.error(line);

// Ctrl-C in `npm start`, or a service manager's TERM: quit properly, so every port is released.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => electron.app.quit());

runDesktop(electron, {
  preloadPath: join(here, 'preload.cjs'),
  rendererDir: join(here, '..', 'renderer', 'main_window'),
  ...(devServerUrl ? { devServerUrl } : {}),
  ...args,
  platform: process.platform,
  execPath: process.execPath,
  env: process.env,
  // The helper's socket: $BERTH_HELPER_SOCKET, else the platform default (as `berth serve`).
  log,
}).catch((err: unknown) => {
  log(`Berth could not start: ${(err as Error).stack ?? String(err)}`);
  electron.app.exit(1);
});
