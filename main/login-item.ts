/**
 * "Start Berth at login": Electron's login items on macOS and Windows; on Linux, where Electron has none,
 * an XDG autostart entry (`~/.config/autostart/berth.desktop`). Berth started at login opens in the tray
 * (`--hidden`), without its window.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { App } from 'electron';

/** The argument a login launch carries, so Berth starts in the tray. */
export const HIDDEN_ARG = '--hidden';

/** Where and how Berth runs, for the login item. */
export interface LoginItemTarget {
  platform: NodeJS.Platform;
  app: Pick<App, 'setLoginItemSettings'>;
  /** The executable to start (an AppImage's own path when running from one). */
  execPath: string;
  env: Readonly<Record<string, string | undefined>>;
}

/** The XDG autostart folder: `$XDG_CONFIG_HOME/autostart`, else `~/.config/autostart`. */
export function autostartDir(env: Readonly<Record<string, string | undefined>>): string {
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'autostart');
}

/** The autostart desktop entry that starts `execPath` in the tray. */
export function autostartEntry(execPath: string): string {
  // Desktop Entry Exec quoting: a quoted argument escapes ", `, $ and \ with a backslash.
  const exec = `"${execPath.replace(/["`$\\]/g, (c) => `\\${c}`)}" ${HIDDEN_ARG}`;
  return [
    '[Desktop Entry]',
    'Type=Application',
    'Name=Berth',
    `Exec=${exec}`,
    'X-GNOME-Autostart-enabled=true',
    '',
  ].join('\n');
}

/** Turns starting at login on or off. */
export async function applyLoginItem(openAtLogin: boolean, target: LoginItemTarget): Promise<void> {
  if (target.platform !== 'linux') {
    target.app.setLoginItemSettings({ openAtLogin, args: [HIDDEN_ARG] });
    return;
  }
  const dir = autostartDir(target.env);
  const file = join(dir, 'berth.desktop');
  if (!openAtLogin) {
    await rm(file, { force: true });
    return;
  }
  await mkdir(dir, { recursive: true });
  await writeFile(file, autostartEntry(target.env.APPIMAGE || target.execPath), { mode: 0o644 });
}
