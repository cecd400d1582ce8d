#!/usr/bin/env node
/**
 * Builds the addon and berth-helper (native/binding.gyp) with the project's own node-gyp, quietly: node-gyp's
 * and the compiler's output go to native/build/node-gyp.log, and only a failure prints (the log's last lines
 * and its path). `npm ci` runs this as the package's install script; `npm run build:native` runs it by hand.
 * BERTH_NATIVE_VERBOSE=1 prints everything as it comes.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nodeGyp = createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
const verbose = process.env.BERTH_NATIVE_VERBOSE === '1';
// The headers of the node that runs the build, where it ships them (Debian's /usr, Node's own tarballs): then
// node-gyp needs no download. npm's `nodedir` setting, where set, wins as it always does.
const prefix = dirname(dirname(process.execPath));
const nodedir =
  !process.env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node.h'))
    ? [`--nodedir=${prefix}`]
    : [];
const args = [nodeGyp, 'rebuild', '--directory=native', ...nodedir, ...(verbose ? [] : ['--loglevel=warn'])];
// node-gyp inherits npm's log level from the environment when npm runs it; the flag above decides instead.
const env = { ...process.env };
delete env.npm_config_loglevel;

const child = spawn(process.execPath, args, {
  cwd: root,
  env,
  stdio: verbose ? 'inherit' : ['ignore', 'pipe', 'pipe'],
});
const chunks = [];
child.stdout?.on('data', (chunk) => chunks.push(chunk));
child.stderr?.on('data', (chunk) => chunks.push(chunk));
child.on('error', (err) => {
  console.error(`berth: could not run node-gyp (${nodeGyp}): ${err.message}`);
  process.exit(1);
});
child.on('close', (code, signal) => {
  const log = join(root, 'native', 'build', 'node-gyp.log');
  const shown = relative(process.cwd(), log) || log;
  if (!verbose) {
    mkdirSync(dirname(log), { recursive: true });
    writeFileSync(log, Buffer.concat(chunks));
  }
  if (code === 0) {
    if (!verbose)
      console.log(`berth: built the addon and berth-helper in native/build/Release (log: ${shown})`);
    return;
  }
  if (!verbose) {
    const lines = Buffer.concat(chunks).toString('utf8').trimEnd().split('\n');
    console.error(lines.slice(-40).join('\n'));
  }
  console.error(
    `berth: building the addon and berth-helper failed (${signal ?? `exit code ${code}`}). ` +
      `It needs a C++17 compiler, make and python3. The whole log: ${shown}; ` +
      'BERTH_NATIVE_VERBOSE=1 npm run build:native shows it as it runs.',
  );
  process.exit(1);
});
