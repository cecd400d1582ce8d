/**
 * The desktop app's own settings, in `desktop.json` next to the config file (the config stays the engine's
 * and the CLI's): start at login, what to start on launch, close to tray. Validated with zod on load and on
 * every change; saved atomically (temp file, fsync, rename); a file that does not validate is kept aside,
 * never overwritten.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { formatProblems, problemsFromIssues } from '../app/config/problems.js';

/** Which forwards start when Berth launches: every one, the enabled ones, or none. */
export const StartForwardsSchema = z.enum(['always', 'as-they-were', 'never']);

/** The settings file, version 1. Unknown keys are rejected, missing ones take their default. */
export const SettingsSchema = z.strictObject({
  version: z.literal(1).default(1),
  startAtLogin: z.boolean().default(false),
  startForwards: StartForwardsSchema.default('as-they-were'),
  closeToTray: z.boolean().default(true),
});

export type Settings = z.output<typeof SettingsSchema>;
export type StartForwards = z.output<typeof StartForwardsSchema>;

/** The settings when there is no file. */
export const DEFAULT_SETTINGS: Settings = SettingsSchema.parse({});

/** `desktop.json` in the config file's folder. */
export function settingsPath(configPath: string): string {
  return join(dirname(configPath), 'desktop.json');
}

/** Validates settings from outside; the error lists every problem with its path. */
export function parseSettings(raw: unknown): Settings {
  const parsed = SettingsSchema.safeParse(raw);
  if (!parsed.success) throw new Error(formatProblems(problemsFromIssues(parsed.error.issues)));
  return parsed.data;
}

/** What loading found: the settings, and anything the user must be told. */
export interface LoadedSettings {
  settings: Settings;
  notices: string[];
}

/** Reads the settings; a missing file gives the defaults, a bad one is kept aside and the defaults used. */
export async function loadSettings(
  path: string,
  now: () => Date = () => new Date(),
): Promise<LoadedSettings> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { settings: DEFAULT_SETTINGS, notices: [] };
    throw err;
  }
  try {
    return { settings: parseSettings(JSON.parse(text)), notices: [] };
  } catch (err) {
    const aside = `${path}.corrupt-${now().toISOString().replace(/[:.]/g, '-')}`;
    await rename(path, aside);
    return {
      settings: DEFAULT_SETTINGS,
      notices: [
        `${path} was not valid (${(err as Error).message}); it was kept as ${aside} and the defaults are used.`,
      ],
    };
  }
}

/** Writes the settings atomically, mode 0600. */
export async function saveSettings(path: string, settings: Settings): Promise<void> {
  const valid = parseSettings(settings);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    await writeFile(temp, `${JSON.stringify(valid, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    const handle = await open(temp, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/** The settings in memory and on disk; changes are validated, saved, then announced. */
export class SettingsStore {
  private readonly listeners = new Set<(settings: Settings) => void>();
  private saving: Promise<void> = Promise.resolve();

  constructor(
    readonly path: string,
    private current: Settings,
  ) {}

  /** Loads the store from `path`. */
  static async open(path: string): Promise<{ store: SettingsStore; notices: string[] }> {
    const { settings, notices } = await loadSettings(path);
    return { store: new SettingsStore(path, settings), notices };
  }

  get(): Settings {
    return this.current;
  }

  /** Applies a change (validated), saves it, then tells the listeners. Saves run one at a time. */
  async update(change: Partial<Settings>): Promise<Settings> {
    const next = parseSettings({ ...this.current, ...change });
    const saved = this.saving.then(() => saveSettings(this.path, next));
    this.saving = saved.catch(() => undefined);
    return saved.then(() => {
      this.current = next;
      for (const listener of this.listeners) listener(next);
      return next;
    });
  }

  onChange(listener: (settings: Settings) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
