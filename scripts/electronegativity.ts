/**
 * Electronegativity over the Electron sources (main/, preload; or the folder given as the first argument),
 * failing on any HIGH or CRITICAL finding.
 * The check that asks GitHub for Electron's releases is skipped: these machines reach no network but npm's.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const input = process.argv[2] ?? 'main';
const electronVersion = (
  JSON.parse(await readFile('node_modules/electron/package.json', 'utf8')) as { version: string }
).version;
const dir = await mkdtemp(join(tmpdir(), 'berth-eneg-'));
try {
  const csv = join(dir, 'findings.csv');
  const bin = 'node_modules/@doyensec/electronegativity/dist/index.js';
  const preload = 'scripts/electronegativity-commander.cjs';
  await run(
    process.execPath,
    [
      '--require',
      `./${preload}`,
      bin,
      '-i',
      input,
      '-e',
      electronVersion,
      '-x',
      'AvailableSecurityFixesGlobalCheck',
      '-r',
      '-o',
      csv,
    ],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  const rows = (await readFile(csv, 'utf8')).trim().split('\n').slice(1);
  const findings = rows.map((row) => row.split(','));
  for (const [check, severity, confidence, file, location] of findings) {
    console.log(
      `${severity?.replaceAll('"', '')} ${confidence?.replaceAll('"', '')} ${check} ${file} ${location}`,
    );
  }
  const serious = findings.filter(([, severity]) => /HIGH|CRITICAL/.test(severity ?? ''));
  console.log(`electronegativity: ${findings.length} finding(s), ${serious.length} high or critical`);
  if (serious.length > 0) process.exitCode = 1;
} finally {
  await rm(dir, { recursive: true, force: true });
}
