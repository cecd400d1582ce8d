/**
 * The config file on disk: loading that never loses a file, and atomic saving.
 *
 * Saving writes a 0600 temp file in the same folder, fsyncs it, keeps the current file as `config.json.bak`,
 * renames the temp file over `config.json` and fsyncs the folder, so a crash at any instant leaves either the
 * old or the new file, never a truncated one. A file that fails to parse or validate is never overwritten: it
 * is renamed `config.json.corrupt-<timestamp>` and the `.bak` is restored if it is valid.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { copyFile, link, mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ZodError } from 'zod';
import { formatProblems, problemsFromIssues, type Problem } from './problems.js';
import { CONFIG_VERSION, ConfigSchema, configVersionFor, emptyConfig, type Config } from './schema.js';

/** What loading found, besides the config itself. */
export interface LoadResult {
  config: Config;
  /** True when the file was written by a newer Berth: it is used but never rewritten. */
  readOnly: boolean;
  /** Things the user must be told about (a file kept aside, a backup restored, a newer format). */
  notices: string[];
}

/** A config file that cannot be used, with every problem found in it. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'EBADCONFIG';
  constructor(
    readonly file: string,
    readonly problems: Problem[],
  ) {
    super(`${file} is not a valid Berth config:\n${formatProblems(problems)}`);
  }
}

/** Parses and validates config text; throws ConfigError with JSON paths. */
export function parseConfig(text: string, file: string): Config {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(file, [{ path: '(root)', message: `not valid JSON: ${(err as Error).message}` }]);
  }
  return validateConfig(raw, file);
}

/** Validates an already parsed config; throws ConfigError with JSON paths. */
export function validateConfig(raw: unknown, file: string): Config {
  const result = ConfigSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(file, problemsFromIssues(result.error.issues));
  return result.data;
}

/** Owns one config file: loads it safely and saves it atomically, one save at a time. */
export class ConfigStore {
  readonly backupPath: string;
  private readOnly = false;
  private saving: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {
    this.backupPath = `${path}.bak`;
  }

  /** Loads the config; a missing file is an empty config. Never overwrites or deletes a user's file. */
  async load(): Promise<LoadResult> {
    await this.removeStaleTempFiles();
    const notices: string[] = [];
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        return { config: emptyConfig(), readOnly: false, notices };
      throw err;
    }

    const newer = newerVersion(text);
    if (newer !== undefined) {
      this.readOnly = true;
      notices.push(
        `${this.path} was written by a newer Berth (config version ${newer}; this one reads ${CONFIG_VERSION}). ` +
          'It is used read-only and will not be rewritten; changes made now are refused. Update Berth to edit it.',
      );
      return { config: this.parseNewer(text, notices), readOnly: true, notices };
    }

    try {
      return { config: parseConfig(text, this.path), readOnly: false, notices };
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      const keptAt = `${this.path}.corrupt-${timestamp()}`;
      await rename(this.path, keptAt);
      notices.push(`${err.message}\nThe file was kept as ${keptAt}; nothing in it was changed.`);
      const restored = await this.restoreBackup(notices);
      return { config: restored ?? emptyConfig(), readOnly: false, notices };
    }
  }

  /** Saves atomically (temp file, fsync, rename, fsync folder), keeping the previous file as `.bak`. */
  save(config: Config): Promise<void> {
    const next = this.saving.then(() => this.write(config));
    // The queue must survive a failed save; the caller still sees the failure through `next`.
    this.saving = next.catch(() => undefined);
    return next;
  }

  /** True when the file belongs to a newer Berth and must not be written. */
  get isReadOnly(): boolean {
    return this.readOnly;
  }

  private async write(config: Config): Promise<void> {
    if (this.readOnly) throw new Error(`${this.path} belongs to a newer Berth and is not rewritten.`);
    // Never write what could not be read back; the oldest version that holds it, so older Berths keep it.
    const data = ConfigSchema.parse({ ...config, version: configVersionFor(config) });
    const text = `${JSON.stringify(data, null, 2)}\n`;
    const folder = dirname(this.path);
    await mkdir(folder, { recursive: true, mode: 0o700 });
    const temp = join(folder, `${basename(this.path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    const handle = await open(temp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
    try {
      await handle.writeFile(text, 'utf8');
      await handle.sync();
    } catch (err) {
      await handle.close();
      await unlink(temp).catch(() => undefined);
      throw err;
    }
    await handle.close();
    try {
      await this.keepBackup();
      await rename(temp, this.path);
    } catch (err) {
      await unlink(temp).catch(() => undefined);
      throw err;
    }
    await syncFolder(folder);
  }

  // The current file becomes `.bak` without a moment in which `config.json` is missing: a hard link renamed
  // over the old backup (a copy where links are not supported).
  private async keepBackup(): Promise<void> {
    const staged = `${this.backupPath}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await link(this.path, staged);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EPERM' && code !== 'EXDEV' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
      await copyFile(this.path, staged);
    }
    await rename(staged, this.backupPath);
  }

  private async restoreBackup(notices: string[]): Promise<Config | undefined> {
    let text: string;
    try {
      text = await readFile(this.backupPath, 'utf8');
    } catch {
      notices.push(`No backup (${this.backupPath}) to restore: starting with an empty config.`);
      return undefined;
    }
    try {
      const config = parseConfig(text, this.backupPath);
      // Put the good copy back in place at once, or the next start would find no config at all.
      await copyFile(this.backupPath, this.path);
      notices.push(
        `Loaded the last good config from ${this.backupPath} (${config.forwards.length} forwards).`,
      );
      return config;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      notices.push(`The backup ${this.backupPath} is not valid either; starting with an empty config.`);
      return undefined;
    }
  }

  // A newer format may hold fields this build does not know: keep what it understands, drop the rest.
  private parseNewer(text: string, notices: string[]): Config {
    try {
      const raw = JSON.parse(text) as { forwards?: unknown };
      return validateConfig({ version: CONFIG_VERSION, forwards: raw.forwards ?? [] }, this.path);
    } catch (err) {
      const detail = err instanceof ConfigError || err instanceof ZodError ? err.message : String(err);
      notices.push(`Its forwards could not be read by this version, so none are started:\n${detail}`);
      return emptyConfig();
    }
  }

  // Temp files left by a crash mid-save are never the config: the rename did not happen.
  private async removeStaleTempFiles(): Promise<void> {
    const folder = dirname(this.path);
    const prefixes = [`${basename(this.path)}.tmp-`, `${basename(this.backupPath)}.tmp-`];
    let names: string[];
    try {
      names = await readdir(folder);
    } catch {
      return;
    }
    await Promise.all(
      names
        .filter((name) => prefixes.some((prefix) => name.startsWith(prefix)))
        .map((name) => unlink(join(folder, name)).catch(() => undefined)),
    );
  }
}

function newerVersion(text: string): number | undefined {
  try {
    const raw = JSON.parse(text) as { version?: unknown };
    return typeof raw.version === 'number' && raw.version > CONFIG_VERSION ? raw.version : undefined;
  } catch {
    return undefined;
  }
}

async function syncFolder(folder: string): Promise<void> {
  const handle = await open(folder, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function timestamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-');
}
