/**
 * The seam between main/ and Electron: every module that needs Electron receives this object instead of
 * importing `electron` itself, so the logic runs under plain Node with the fake in test/fixtures/electron.
 * Only main/main.ts and main/preload.ts import `electron` at run time.
 */
import type * as Electron from 'electron';

/** The parts of Electron's main-process API that Berth uses. */
export type ElectronMain = Pick<
  typeof Electron,
  | 'app'
  | 'BrowserWindow'
  | 'dialog'
  | 'ipcMain'
  | 'Menu'
  | 'nativeImage'
  | 'Notification'
  | 'powerMonitor'
  | 'protocol'
  | 'session'
  | 'shell'
  | 'Tray'
>;
