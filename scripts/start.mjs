#!/usr/bin/env node
/**
 * `npm start`: the desktop app through Electron Forge where the Electron runtime is installed; elsewhere one
 * line saying so, then `berth serve` with the browser UI. The check reads files only: requiring `electron`
 * would try to download the runtime.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const args = process.argv.slice(2);

/** Where the Electron binary is, or why it cannot be used, without loading or downloading anything. */
function electronRuntime() {
  let dir;
  try {
    dir = dirname(createRequire(import.meta.url).resolve('electron/package.json'));
  } catch {
    return { missing: 'the electron package is not installed' };
  }
  const pathFile = join(dir, 'path.txt');
  const override = process.env.ELECTRON_OVERRIDE_DIST_PATH;
  if (!existsSync(pathFile) && !override)
    return { missing: 'node_modules/electron/dist was never downloaded' };
  const executable = existsSync(pathFile) ? readFileSync(pathFile, 'utf8').trim() : 'electron';
  const binary = override ? join(override, executable) : join(dir, 'dist', executable);
  return existsSync(binary) ? { binary } : { missing: `${binary} is missing` };
}

function run(command, commandArgs) {
  const child = spawn(command, commandArgs, { cwd: root, stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

const runtime = electronRuntime();
if (runtime.binary) {
  run(process.execPath, [
    join(root, 'node_modules', '@electron-forge', 'cli', 'dist', 'electron-forge.js'),
    'start',
    '--',
    ...args,
  ]);
} else {
  const cli = join(root, 'dist', 'app', 'cli.js');
  console.error(
    `Berth: the Electron runtime is not available here (${runtime.missing}); starting berth serve with the browser UI instead.`,
  );
  if (!existsSync(cli)) {
    console.error('Berth: dist/app/cli.js is missing: run `npm run build` first.');
    process.exit(1);
  }
  run(process.execPath, [cli, 'serve', ...args]);
}
