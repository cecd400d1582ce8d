/**
 * The desktop app put together: single-instance lock, the engine and control socket in the main process,
 * the secure window, IPC, tray, notifications, settings and the quit sequence. Electron arrives as an
 * argument (main/electron.ts), so all of this runs under Node with the fake in test/fixtures/electron.
 */
import type { PrivilegedBinder } from '../app/engine/listener.js';
import { APP_URL, registerAppScheme, serveApp } from './app-protocol.js';
import type { ElectronMain } from './electron.js';
import { openHost, type Host } from './host.js';
import { registerIpc } from './ipc.js';
import { applyLoginItem } from './login-item.js';
import { FailureNotifier, RateLimiter, type Notice } from './notifications.js';
import { installQuit, type QuitState } from './quit.js';
import { contentSecurityPolicy, denyPermissions, guardWebContents, withCsp } from './security.js';
import { trustedSender } from './sender.js';
import { SettingsStore, settingsPath } from './settings.js';
import { BerthTray, runTrayAction } from './tray.js';
import { MainWindow } from './window.js';

/** Where the app's pieces are and how it was started. */
export interface DesktopOptions {
  preloadPath: string;
  /** The built UI, served at app://berth/. */
  rendererDir: string;
  /** The Vite dev server during `npm start`; the window loads it instead of app://berth/. */
  devServerUrl?: string;
  configPath: string;
  controlPath: string;
  /** Started at login: no window until asked for. */
  hidden: boolean;
  platform: NodeJS.Platform;
  execPath: string;
  env: Readonly<Record<string, string | undefined>>;
  binder?: PrivilegedBinder;
  quitTimeoutMs?: number;
  log: (line: string) => void;
}

/** The running desktop app. */
export interface Desktop {
  host: Host;
  window: MainWindow;
  tray: BerthTray;
  settings: SettingsStore;
  quit: QuitState;
}

/** Starts the desktop app; resolves undefined when another instance runs (it was asked to show itself). */
export async function runDesktop(
  electron: ElectronMain,
  options: DesktopOptions,
): Promise<Desktop | undefined> {
  const { app } = electron;
  if (!app.requestSingleInstanceLock()) {
    // The first instance gets 'second-instance' and shows its window.
    app.quit();
    return undefined;
  }
  registerAppScheme(electron.protocol);
  // The quit sequence goes in first, so a Quit (or SIGTERM) while Berth is still starting waits for the
  // start to finish and then undoes all of it: backends run in their own process groups and would outlive
  // a process that simply exited.
  const cleanups: (() => void | Promise<void>)[] = [];
  let started!: () => void;
  const starting = new Promise<void>((resolve) => (started = resolve));
  const quit = installQuit({
    app,
    shutdown: async () => {
      await starting;
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    },
    ...(options.quitTimeoutMs !== undefined ? { timeoutMs: options.quitTimeoutMs } : {}),
    log: options.log,
  });
  try {
    return await start(electron, options, quit, cleanups);
  } finally {
    started();
  }
}

async function start(
  electron: ElectronMain,
  options: DesktopOptions,
  quit: QuitState,
  cleanups: (() => void | Promise<void>)[],
): Promise<Desktop | undefined> {
  const { app } = electron;
  const appUrl = options.devServerUrl ?? APP_URL;
  const csp = contentSecurityPolicy(options.devServerUrl);
  app.on('web-contents-created', (_event, contents) =>
    guardWebContents(contents, { appUrl, openExternal: (url) => electron.shell.openExternal(url) }),
  );
  // A second launch before the window exists (still starting, or started at login) shows it once ready.
  const late: { window?: MainWindow; show: boolean } = { show: !options.hidden };
  const showLate = () => {
    if (late.window) late.window.show();
    else late.show = true;
  };
  app.on('second-instance', showLate);
  // macOS: a click on the Dock icon.
  app.on('activate', showLate);

  await app.whenReady();
  const session = electron.session.defaultSession;
  denyPermissions(session);
  session.webRequest.onHeadersReceived((details, callback) =>
    callback({ responseHeaders: withCsp(details.responseHeaders, csp) }),
  );
  serveApp(electron.protocol, options.rendererDir, csp);

  const notify = (notice: Notice) => {
    if (electron.Notification.isSupported()) new electron.Notification(notice).show();
    else options.log(`Berth: ${notice.title}: ${notice.body}`);
  };
  const { store: settings, notices: settingsNotices } = await SettingsStore.open(
    settingsPath(options.configPath),
  );
  let host: Host;
  try {
    host = await openHost({
      configPath: options.configPath,
      controlPath: options.controlPath,
      startForwards: settings.get().startForwards,
      ...(options.binder ? { binder: options.binder } : {}),
    });
  } catch (err) {
    electron.dialog.showErrorBox('Berth cannot start', (err as Error).message);
    app.exit(1);
    return undefined;
  }
  const running = host;
  cleanups.push(() => running.close());

  const loginTarget = { platform: options.platform, app, execPath: options.execPath, env: options.env };
  const logFailure = (err: unknown) => options.log(`Berth: start at login: ${(err as Error).message}`);
  let atLogin = settings.get().startAtLogin;
  // At launch too, so the entry follows the app when it moves (a new AppImage path).
  if (atLogin) applyLoginItem(true, loginTarget).catch(logFailure);
  settings.onChange((next) => {
    if (next.startAtLogin === atLogin) return;
    atLogin = next.startAtLogin;
    applyLoginItem(atLogin, loginTarget).catch(logFailure);
  });

  const mainWindow = new MainWindow({
    BrowserWindow: electron.BrowserWindow,
    preloadPath: options.preloadPath,
    url: appUrl,
    closeToTray: () => settings.get().closeToTray,
    quitting: () => quit.quitting,
    log: options.log,
  });
  late.window = mainWindow;

  cleanups.push(registerIpc(electron.ipcMain, host.engine, trustedSender(appUrl)));
  const notifier = new FailureNotifier(notify, new RateLimiter(60_000));
  cleanups.push(host.engine.subscribe((event) => notifier.handle(event)));
  // After sleep, timers fire late and connections may be dead: check every forward now (issue 13).
  const resumed = () => host.engine.recheck('the system resumed from sleep');
  electron.powerMonitor.on('resume', resumed);
  cleanups.push(() => {
    electron.powerMonitor.removeListener('resume', resumed);
  });
  const tray = new BerthTray({
    electron,
    api: host.engine,
    settings,
    dispatch: (action) =>
      void runTrayAction(action, {
        api: host.engine,
        settings,
        showWindow: () => mainWindow.show(),
        quit: () => app.quit(),
        report: (message) => notify({ title: 'Berth', body: message }),
      }),
  });
  tray.start();
  cleanups.push(() => tray.destroy());

  app.on('window-all-closed', () => {
    if (!settings.get().closeToTray) app.quit();
  });

  for (const message of [...settingsNotices, ...host.notices]) notify({ title: 'Berth', body: message });
  if (late.show) mainWindow.show();
  return { host, window: mainWindow, tray, settings, quit };
}
