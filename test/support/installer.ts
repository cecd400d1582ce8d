/** Shared pieces of the installer tests: paths, a temporary system root, unit parsing, file-tree snapshots. */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BUILD_LINUX = join(REPO, 'build', 'linux');
export const SETUP = join(BUILD_LINUX, 'berth-helper-setup');
export const RELEASE = join(REPO, 'native', 'build', 'Release');
export const HELPER_BUILD = join(RELEASE, 'berth-helper');
export const ADDON_BUILD = join(RELEASE, 'berth_native.node');
export const isRoot = process.getuid?.() === 0;

/** The minimal system root the scripts are run against: etc/{passwd,group,shadow,gshadow} and the usual folders. */
const FIXTURE_ROOT = join(REPO, 'test', 'fixtures', 'installer', 'root');

/** A fresh temporary folder, removed by `remove()`. */
export function tempDir(prefix = 'berth-installer-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Makes a temporary system root like a fresh Debian one, as far as the setup script can tell. */
export function makeSystemRoot(root: string): void {
  cpSync(FIXTURE_ROOT, root, { recursive: true });
  chmodSync(root, 0o755);
  for (const dir of [
    'etc',
    'etc/systemd',
    'etc/systemd/system',
    'usr',
    'usr/lib',
    'usr/lib/systemd',
    'usr/lib/systemd/system',
    'usr/libexec',
  ]) {
    mkdirSync(join(root, dir), { recursive: true, mode: 0o755 });
    chmodSync(join(root, dir), 0o755);
  }
  for (const file of ['etc/passwd', 'etc/group']) chmodSync(join(root, file), 0o644);
  // git keeps no modes but the x bit: set the ones Debian uses.
  for (const file of ['etc/shadow', 'etc/gshadow']) chmodSync(join(root, file), 0o640);
}

/** Runs berth-helper-setup with a clean environment (nothing of this shell's SUDO_UID leaks in). */
export function runSetup(
  args: string[],
  env: Record<string, string>,
  script = SETUP,
): SpawnSyncReturns<string> {
  return spawnSync('sh', [script, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...env },
  });
}

/** One entry of a file-tree snapshot. */
export interface Entry {
  type: 'dir' | 'file' | 'link';
  mode: string;
  owner: string;
  /** sha256 of a file, target of a link. */
  content?: string;
}

/** Every path under `root` (relative) with its type, mode, owner and content hash. */
export function snapshot(root: string): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const st = lstatSync(path);
      const entry: Entry = {
        type: st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'file',
        mode: (st.mode & 0o7777).toString(8).padStart(4, '0'),
        owner: `${st.uid}:${st.gid}`,
      };
      if (entry.type === 'file')
        entry.content = createHash('sha256').update(readFileSync(path)).digest('hex');
      if (entry.type === 'link') entry.content = readlinkSync(path);
      entries.set(relative(root, path), entry);
      if (entry.type === 'dir') walk(path);
    }
  };
  walk(root);
  return entries;
}

/** The differences between two snapshots, as readable lines (empty when equal). */
export function diffSnapshots(
  before: Map<string, Entry>,
  after: Map<string, Entry>,
  ignore: (path: string) => boolean = () => false,
): string[] {
  const lines: string[] = [];
  for (const [path, entry] of after) {
    if (ignore(path)) continue;
    const old = before.get(path);
    if (!old) lines.push(`+ ${path} ${describe(entry)}`);
    else if (JSON.stringify(old) !== JSON.stringify(entry))
      lines.push(`~ ${path} ${describe(old)} -> ${describe(entry)}`);
  }
  for (const [path, entry] of before) {
    if (!ignore(path) && !after.has(path)) lines.push(`- ${path} ${describe(entry)}`);
  }
  return lines.sort((a, b) => a.slice(2).localeCompare(b.slice(2)));
}

function describe(entry: Entry): string {
  return `${entry.type} ${entry.mode} ${entry.owner}${entry.type === 'link' ? ` -> ${entry.content}` : ''}`;
}

/** sha256 of a file. */
export function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** The `Key=value` settings of a unit file, all sections together, in order; comments and blanks skipped. */
export function parseUnit(path: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';') || line.startsWith('[')) continue;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq).trim();
    settings.set(key, [...(settings.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return settings;
}

/** The one value of `key` in a parsed unit (fails the caller's assertion with undefined otherwise). */
export function one(unit: Map<string, string[]>, key: string): string | undefined {
  const values = unit.get(key);
  return values?.length === 1 ? values[0] : undefined;
}

/** Why systemd-analyze cannot be used here, or false. */
export function noSystemdAnalyze(): string | false {
  if (process.platform !== 'linux') return 'needs Linux: systemd units';
  const found = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (found.error || found.status !== 0) return 'needs systemd-analyze (Debian package systemd)';
  return false;
}

/** Why the native build is missing, or false. */
export function noNativeBuild(): string | false {
  for (const file of [HELPER_BUILD, ADDON_BUILD]) {
    if (!existsSync(file)) return `${file} is not built: run npm ci (or npm run build:native)`;
  }
  return false;
}
