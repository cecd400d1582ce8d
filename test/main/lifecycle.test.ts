/**
 * main/desktop.ts, main/host.ts and main/quit.ts with the fake Electron and a real engine on a temp config:
 * single instance, the control socket the CLI drives, the window, tray and notifications wired together, and
 * the quit sequence (every port released before the process exits, checked by binding the port again).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { ControlClient } from '../../app/control/client.js';
import { ControlServer } from '../../app/control/server.js';
import { APP_URL } from '../../main/app-protocol.js';
import { CHANNELS } from '../../app/api/bridge.js';
import { runDesktop, type Desktop, type DesktopOptions } from '../../main/desktop.js';
import { installQuit } from '../../main/quit.js';
import { windowOptions } from '../../main/security.js';
import { saveSettings, DEFAULT_SETTINGS, type Settings } from '../../main/settings.js';
import { createFakeElectron, menuItem, type FakeEvent, type FakeElectron } from '../support/fake-electron.js';
import { canBind, echo, freePort, onCleanup, tcpServer, tempDir, until } from '../support/index.js';

interface Started {
  fake: FakeElectron;
  desktop: Desktop | undefined;
  options: DesktopOptions;
  port: number;
  lines: string[];
}

/** Runs the desktop app on a temp config with one real forward `web` from a free port to an echo server. */
async function start(
  t: TestContext,
  {
    lock = true,
    settings,
    hidden = false,
    forward = {},
  }: {
    lock?: boolean;
    settings?: Partial<Settings>;
    hidden?: boolean;
    forward?: Record<string, unknown>;
  } = {},
): Promise<Started> {
  const dir = await tempDir(t);
  const { port: target } = await tcpServer(t, echo);
  const port = await freePort();
  const configPath = join(dir, 'config.json');
  await writeFile(
    configPath,
    JSON.stringify({
      version: 1,
      forwards: [{ id: 'web', listen: { port }, target: { host: '127.0.0.1', port: target }, ...forward }],
    }),
  );
  if (settings) await saveSettings(join(dir, 'desktop.json'), { ...DEFAULT_SETTINGS, ...settings });
  const fake = createFakeElectron({ lock });
  const lines: string[] = [];
  const options: DesktopOptions = {
    preloadPath: join(dir, 'preload.cjs'),
    rendererDir: join(dir, 'ui'),
    configPath,
    controlPath: join(dir, 'run', 'control.sock'),
    hidden,
    platform: 'linux',
    execPath: '/opt/berth/berth',
    env: { XDG_CONFIG_HOME: join(dir, 'xdg') },
    log: (line) => lines.push(line),
  };
  const desktop = await runDesktop(fake.electron, options);
  onCleanup(t, async () => {
    if (desktop && fake.fake.app.exitCodes.length === 0) await desktop.host.close();
  });
  return { fake, desktop, options, port, lines };
}

test('a second instance asks the first to show itself and quits before touching anything', async (t) => {
  const { fake, desktop, options } = await start(t, { lock: false });
  assert.equal(desktop, undefined);
  assert.deepEqual(fake.log.calls, ['app.requestSingleInstanceLock', 'app.quit']);
  assert.equal(fake.windows.length, 0);
  assert.equal(existsSync(options.controlPath), false, 'no control socket, no engine');
  assert.equal(fake.fake.ipcMain.handlers.size, 0);
});

test('the first instance focuses its window on second-instance, restoring it if minimized', async (t) => {
  const { fake } = await start(t, { hidden: true });
  assert.equal(fake.windows.length, 0, 'started at login: tray only');
  fake.fake.app.secondInstance();
  assert.equal(fake.windows.length, 1);
  const window = fake.windows[0]!;
  window.emit('ready-to-show');
  window.minimize();
  fake.fake.app.secondInstance();
  assert.equal(fake.windows.length, 1, 'still one window');
  assert.equal(window.isMinimized(), false);
  assert.equal(window.focused, true);
  assert.deepEqual(fake.log.calls.slice(-3), ['window.restore', 'window.show', 'window.focus']);
});

test('starting: forwards listen, the CLI drives the app over the control socket, IPC and tray are wired', async (t) => {
  const { fake, desktop, options, port } = await start(t);
  assert.ok(desktop);
  assert.equal(await canBind(port), false, 'web listens');
  const window = fake.windows[0]!;
  assert.deepEqual(window.options, windowOptions(options.preloadPath));
  assert.equal(window.url, APP_URL);
  assert.ok(window.webContents.windowOpenHandler, 'the window is guarded');
  assert.ok(fake.fake.protocol.handlers.has('app'));
  assert.ok(fake.fake.session.defaultSession.headersListener, 'CSP header on every response');
  assert.ok(fake.fake.session.defaultSession.permissionRequest);

  const client = await ControlClient.connect(options.controlPath);
  onCleanup(t, () => client.close());
  const status = await client.call('status', {});
  assert.equal(status.forwards[0]?.state, 'listening');
  await client.call('disable', { id: 'web' });
  assert.equal(await canBind(port), true, 'disabled from the CLI');

  const tray = fake.trays[0]!;
  const label = `web (127.0.0.1:${port}/tcp)`;
  await until(() => menuItem(tray.menu?.template, label)?.checked === false, 'the tray follows the CLI');
  const reply = await fake.fake.ipcMain.invoke(
    CHANNELS.call,
    window.webContents,
    window.webContents.mainFrame,
    'enable',
    { id: 'web' },
  );
  assert.equal((reply as { ok: boolean }).ok, true, 'the window calls the engine over IPC');
  assert.equal(await canBind(port), false);
});

test('quit: before-quit is held until every forward is stopped and every port released, then exit(0)', async (t) => {
  const { fake, desktop, options, port } = await start(t);
  assert.ok(desktop);
  const app = fake.fake.app;
  const order: string[] = [];
  const close = desktop.host.close.bind(desktop.host);
  desktop.host.close = async () => {
    order.push('host.close');
    await close();
    order.push('host.closed');
  };
  let portFreeAtExit: Promise<boolean> | undefined;
  let socketGoneAtExit: boolean | undefined;
  const exit = app.exit.bind(app);
  app.exit = (code?: number) => {
    order.push(`exit(${code})`);
    // Bound now, at the moment of exit: it succeeds only if the listener is already closed.
    portFreeAtExit = canBind(port);
    socketGoneAtExit = !existsSync(options.controlPath);
    exit(code);
  };
  let prevented = false;
  app.once('before-quit', (event: FakeEvent) => queueMicrotask(() => (prevented = event.defaultPrevented)));
  app.quit();
  app.quit();
  await until(() => order.includes('exit(0)'), 'the process exits');
  assert.equal(prevented, true, 'the first before-quit is held');
  assert.deepEqual(order, ['host.close', 'host.closed', 'exit(0)'], 'exit only after the host closed; once');
  assert.equal(await portFreeAtExit, true, 'the port was released before exit');
  assert.equal(socketGoneAtExit, true, 'the control socket was removed before exit');
  assert.equal(fake.trays[0]?.destroyed, true);
  assert.equal(fake.fake.ipcMain.handlers.size, 0);
  assert.equal(desktop.quit.quitting, true);
  const window = fake.windows[0]!;
  window.close();
  assert.equal(window.isDestroyed(), true, 'while quitting the window closes instead of hiding');
});

test('quit: every backend process is stopped before exit', async (t) => {
  const backend = { command: [process.execPath, '-e', 'setInterval(() => {}, 1000)'], restart: 'never' };
  const { desktop, fake } = await start(t, { forward: { backend } });
  assert.ok(desktop);
  let pid: number | null | undefined;
  await until(async () => {
    const status = await desktop.host.engine.call('status', {});
    pid = status.forwards[0]?.backend?.state === 'running' ? status.forwards[0].backend.pid : undefined;
    return typeof pid === 'number';
  }, 'the backend runs');
  assert.equal(typeof pid, 'number');
  const app = fake.fake.app;
  let aliveAtExit: boolean | undefined;
  const exit = app.exit.bind(app);
  app.exit = (code?: number) => {
    aliveAtExit = isAlive(pid as number);
    exit(code);
  };
  app.quit();
  await until(() => app.exitCodes.length > 0, 'the process exits');
  assert.equal(aliveAtExit, false, 'the backend was gone before exit');
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('quit: a shutdown that fails exits 1, one that hangs is cut off', async () => {
  const fake = createFakeElectron();
  const lines: string[] = [];
  installQuit({
    app: fake.electron.app,
    shutdown: () => Promise.reject(new Error('disk gone')),
    log: (l) => lines.push(l),
  });
  fake.fake.app.quit();
  await until(() => fake.fake.app.exitCodes.length > 0, 'exit');
  assert.deepEqual(fake.fake.app.exitCodes, [1]);
  assert.match(lines[0] ?? '', /disk gone/);

  const hung = createFakeElectron();
  installQuit({ app: hung.electron.app, shutdown: () => new Promise(() => undefined), timeoutMs: 20 });
  hung.fake.app.quit();
  await until(() => hung.fake.app.exitCodes.length > 0, 'exit after the timeout');
  assert.deepEqual(hung.fake.app.exitCodes, [0]);
});

test('a running berth serve holds the control socket: the app says so and exits without binding ports', async (t) => {
  const dir = await tempDir(t);
  const controlPath = join(dir, 'control.sock');
  const other = await ControlServer.open(controlPath, {
    handle: () => Promise.resolve({ forwards: [] }),
    subscribe: () => () => undefined,
  });
  onCleanup(t, () => other.close());
  const port = await freePort();
  const configPath = join(dir, 'config.json');
  await writeFile(
    configPath,
    JSON.stringify({
      version: 1,
      forwards: [{ id: 'web', listen: { port }, target: { host: '127.0.0.1', port: 9 } }],
    }),
  );
  const fake = createFakeElectron();
  const desktop = await runDesktop(fake.electron, {
    preloadPath: '/p.cjs',
    rendererDir: dir,
    configPath,
    controlPath,
    hidden: false,
    platform: 'linux',
    execPath: '/opt/berth/berth',
    env: {},
    log: () => undefined,
  });
  assert.equal(desktop, undefined);
  assert.equal(fake.errorBoxes[0]?.title, 'Berth cannot start');
  assert.match(fake.errorBoxes[0]?.content ?? '', /already running/);
  assert.deepEqual(fake.fake.app.exitCodes, [1]);
  assert.equal(await canBind(port), true);
});

test('a forward that cannot listen at launch is notified', async (t) => {
  const blocker = await tcpServer(t, () => undefined);
  const { fake } = await start(t, { forward: { listen: { port: blocker.port } } });
  await until(() => fake.notifications.length > 0, 'a notification');
  assert.equal(fake.notifications[0]?.title, 'web failed');
  assert.match(fake.notifications[0]?.body ?? '', /in use/);
});

test('powerMonitor "resume" re-checks every forward at once', async (t) => {
  const { fake, desktop } = await start(t);
  assert.ok(desktop);
  const notices: string[] = [];
  const stop = desktop.host.engine.subscribe((event) => {
    if (event.type === 'notice') notices.push(event.message);
  });
  onCleanup(t, stop);
  fake.fake.powerMonitor.emit('resume');
  assert.deepEqual(notices, ['Re-checking every forward now: the system resumed from sleep.']);
});

test('settings: close-to-tray off quits with the last window; start at login writes the entry', async (t) => {
  const { fake, desktop, options } = await start(t, { settings: { closeToTray: false, startAtLogin: true } });
  assert.ok(desktop);
  await until(
    () => existsSync(join(options.env.XDG_CONFIG_HOME ?? '', 'autostart', 'berth.desktop')),
    'autostart entry',
  );
  fake.windows[0]!.close();
  assert.equal(fake.windows[0]!.isDestroyed(), true);
  fake.fake.app.emit('window-all-closed');
  await until(() => fake.fake.app.exitCodes.length > 0, 'quit');
  await desktop.settings.update({ startAtLogin: false });
  await until(
    () => !existsSync(join(options.env.XDG_CONFIG_HOME ?? '', 'autostart', 'berth.desktop')),
    'entry removed',
  );
});

test('start forwards on launch "always" enables the disabled ones', async (t) => {
  const { desktop, port } = await start(t, {
    settings: { startForwards: 'always' },
    forward: { enabled: false },
  });
  assert.ok(desktop);
  const status = await desktop.host.engine.call('status', {});
  assert.equal(status.forwards[0]?.state, 'listening');
  assert.equal(await canBind(port), false);
});

test('start forwards on launch "never" leaves every forward stopped, and enabled in the config', async (t) => {
  const { desktop, port } = await start(t, { settings: { startForwards: 'never' } });
  assert.ok(desktop);
  assert.equal(await canBind(port), true);
  const [forward] = (await desktop.host.engine.call('status', {})).forwards;
  assert.equal(forward?.state, 'stopped');
  assert.equal(forward?.enabled, true, 'the choice in the file is kept for the next launch');
});
