/**
 * Berth's one window: created on demand with the secure options of main/security.ts, shown once painted,
 * and hidden instead of closed while "Keep running in the tray" is on (unless Berth is quitting).
 */
import type { BrowserWindow } from 'electron';
import type { ElectronMain } from './electron.js';
import { windowOptions } from './security.js';

/** How the window is built and when a close only hides it. */
export interface MainWindowOptions {
  BrowserWindow: ElectronMain['BrowserWindow'];
  preloadPath: string;
  /** The page: `app://berth/index.html`, or the Vite dev server during development. */
  url: string;
  closeToTray: () => boolean;
  quitting: () => boolean;
  log?: (line: string) => void;
}

/** The window, created at most once at a time. */
export class MainWindow {
  private window: BrowserWindow | undefined;

  constructor(private readonly options: MainWindowOptions) {}

  /** Shows the window (creating it if needed), restores it if minimized, and focuses it. */
  show(): void {
    const existing = this.window;
    if (!existing || existing.isDestroyed()) {
      this.create();
      return;
    }
    if (existing.isMinimized()) existing.restore();
    existing.show();
    existing.focus();
  }

  /** The live window, if any. */
  get current(): BrowserWindow | undefined {
    return this.window && !this.window.isDestroyed() ? this.window : undefined;
  }

  private create(): void {
    const { options } = this;
    const window = new options.BrowserWindow(windowOptions(options.preloadPath));
    this.window = window;
    window.once('ready-to-show', () => {
      window.show();
      window.focus();
    });
    window.on('close', (event) => {
      if (options.closeToTray() && !options.quitting()) {
        event.preventDefault();
        window.hide();
      }
    });
    window.on('closed', () => {
      if (this.window === window) this.window = undefined;
    });
    window.loadURL(options.url).catch((err: unknown) => {
      options.log?.(`Berth: the window could not load ${options.url}: ${(err as Error).message}`);
    });
  }
}
