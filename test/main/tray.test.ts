/** main/tray-menu.ts (pure), main/tray-icon.ts and main/tray.ts: the tray menu model for several engine states. */
import assert from 'node:assert/strict';
import { inflateSync } from 'node:zlib';
import { test } from 'node:test';
import { DEFAULT_SETTINGS, type Settings } from '../../main/settings.js';
import { trayPixels, trayPng } from '../../main/tray-icon.js';
import { trayMenu, trayState, trayTooltip, type TrayAction, type TrayItem } from '../../main/tray-menu.js';
import { BerthTray, runTrayAction, toTemplate } from '../../main/tray.js';
import { createFakeElectron, menuItem } from '../support/fake-electron.js';
import { addForward, canBind, echo, forwardStatus, startEngine, tcpServer, until } from '../support/index.js';

const forward = forwardStatus;

const labels = (items: TrayItem[]) => items.map((i) => (i.type === 'separator' ? '---' : i.label));
const find = (items: TrayItem[], label: string) => items.find((i) => i.label === label);

test('no forwards: a disabled placeholder, nothing to start or stop, the fixed items', () => {
  const items = trayMenu([], DEFAULT_SETTINGS);
  assert.deepEqual(labels(items), [
    'No forwards yet',
    '---',
    'Start all',
    'Stop all',
    '---',
    'Open Berth',
    'Settings',
    '---',
    'Quit',
  ]);
  assert.equal(find(items, 'Start all')?.enabled, false);
  assert.equal(find(items, 'Stop all')?.enabled, false);
  assert.deepEqual(find(items, 'Open Berth')?.action, { type: 'open' });
  assert.deepEqual(find(items, 'Quit')?.action, { type: 'quit' });
  assert.equal(trayState([]), 'idle');
  assert.equal(trayTooltip([]), 'Berth: no forwards');
});

test('all listening: one checked checkbox per forward that disables it; icon up', () => {
  const forwards = [
    forward('web', { name: 'Dev web' }),
    forward('db', { listen: { address: '::1', port: 5432 } }),
  ];
  const items = trayMenu(forwards, DEFAULT_SETTINGS);
  assert.deepEqual(items.slice(0, 2), [
    {
      type: 'checkbox',
      label: 'Dev web (127.0.0.1:8000/tcp)',
      checked: true,
      action: { type: 'toggle', id: 'web', enable: false },
    },
    {
      type: 'checkbox',
      label: 'db ([::1]:5432/tcp)',
      checked: true,
      action: { type: 'toggle', id: 'db', enable: false },
    },
  ]);
  assert.deepEqual(find(items, 'Start all'), {
    type: 'normal',
    label: 'Start all',
    enabled: false,
    action: { type: 'start-all', ids: [] },
  });
  assert.deepEqual(find(items, 'Stop all')?.action, { type: 'stop-all', ids: ['web', 'db'] });
  assert.equal(trayState(forwards), 'up');
  assert.equal(trayTooltip(forwards), 'Berth: 2 of 2 forwards listening');
});

test('some stopped: unchecked checkbox enables it, Start all lists it; icon partial', () => {
  const forwards = [forward('web'), forward('db', { enabled: false, state: 'stopped' })];
  const items = trayMenu(forwards, DEFAULT_SETTINGS);
  assert.equal(items[1]?.checked, false);
  assert.deepEqual(items[1]?.action, { type: 'toggle', id: 'db', enable: true });
  assert.deepEqual(find(items, 'Start all')?.action, { type: 'start-all', ids: ['db'] });
  assert.deepEqual(find(items, 'Stop all')?.action, { type: 'stop-all', ids: ['web'] });
  assert.equal(trayState(forwards), 'partial');
  assert.equal(trayState([forward('a', { state: 'starting' })]), 'partial');
  assert.equal(trayState([forward('a', { enabled: false, state: 'stopped' })]), 'idle');
});

test('some failing: the problem shows under the forward, Start all retries it; icon failing', () => {
  const failed = forward('web', { state: 'error', error: { code: 'EADDRINUSE', message: 'in use' } });
  const backend = forward('api', {
    backend: { state: 'failed', pid: null, restarts: 5, exitCode: 1, signal: null, fdCheck: 'clean' },
  });
  const forwards = [failed, backend, forward('db')];
  const items = trayMenu(forwards, DEFAULT_SETTINGS);
  assert.equal(items[0]?.sublabel, 'Error: EADDRINUSE');
  assert.equal(items[0]?.checked, true);
  assert.equal(items[1]?.sublabel, 'Backend failed');
  assert.equal(items[2]?.sublabel, undefined);
  assert.deepEqual(find(items, 'Start all')?.action, { type: 'start-all', ids: ['web'] });
  assert.equal(trayState(forwards), 'failing');
  assert.equal(trayTooltip(forwards), 'Berth: 2 of 3 forwards listening, 2 failing');
  assert.equal(
    trayState([forward('x', { enabled: false, state: 'error' })]),
    'idle',
    'a disabled forward fails no one',
  );
});

test('an unhealthy forward says so under its name and turns the icon to failing', () => {
  const sick = forward('web', {
    health: {
      state: 'unhealthy',
      checkedAt: null,
      failures: 3,
      message: 'nothing is listening on 127.0.0.1:3000',
    },
  });
  const forwards = [sick, forward('db')];
  assert.equal(trayMenu(forwards, DEFAULT_SETTINGS)[0]?.sublabel, 'Unhealthy');
  assert.equal(trayState(forwards), 'failing');
  assert.equal(trayTooltip(forwards), 'Berth: 2 of 2 forwards listening, 1 unhealthy');
  assert.equal(trayState([forward('db')]), 'up', 'unknown health (not checked yet) is not a failure');
});

test('a name with & keeps it visible (not a mnemonic)', () => {
  assert.equal(
    trayMenu([forward('a', { name: 'R&D' })], DEFAULT_SETTINGS)[0]?.label,
    'R&&D (127.0.0.1:8000/tcp)',
  );
});

test('the settings submenu reflects and flips each setting', () => {
  const settings: Settings = {
    ...DEFAULT_SETTINGS,
    startAtLogin: true,
    closeToTray: false,
    startForwards: 'never',
  };
  const submenu = find(trayMenu([], settings), 'Settings')?.submenu ?? [];
  assert.deepEqual(find(submenu, 'Start Berth at login'), {
    type: 'checkbox',
    label: 'Start Berth at login',
    checked: true,
    action: { type: 'settings', change: { startAtLogin: false } },
  });
  assert.deepEqual(find(submenu, 'Keep running in the tray when the window closes')?.action, {
    type: 'settings',
    change: { closeToTray: true },
  });
  const radios = submenu.filter((i) => i.type === 'radio');
  assert.deepEqual(
    radios.map((r) => [r.label, r.checked]),
    [
      ['Always', false],
      ['As they were', false],
      ['Never', true],
    ],
  );
});

test('the template keeps the model and dispatches the action on click', () => {
  const actions: TrayAction[] = [];
  const template = toTemplate(trayMenu([forward('web')], DEFAULT_SETTINGS), (a) => actions.push(a));
  assert.equal(template[0]?.type, 'checkbox');
  assert.equal(template[0]?.checked, true);
  const click = (label: string) =>
    menuItem(template, label)?.click?.(undefined as never, undefined, undefined as never);
  click('web (127.0.0.1:8000/tcp)');
  click('Never');
  click('Quit');
  assert.deepEqual(actions, [
    { type: 'toggle', id: 'web', enable: false },
    { type: 'settings', change: { startForwards: 'never' } },
    { type: 'quit' },
  ]);
});

test('the tray icons are valid PNGs that differ by shape, not only colour', () => {
  const png = trayPng('up', 16);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.equal(png.readUInt32BE(16), 16);
  const idatLength = png.readUInt32BE(33);
  assert.equal(png.toString('ascii', 37, 41), 'IDAT');
  assert.equal(inflateSync(png.subarray(41, 41 + idatLength)).length, 16 * (16 * 4 + 1));
  const shape = (state: 'up' | 'partial' | 'failing' | 'idle') =>
    [...trayPixels(state, 16)]
      .filter((_, i) => i % 4 === 3)
      .map((a) => (a > 0 ? 1 : 0))
      .join('');
  const shapes = new Set((['up', 'partial', 'idle'] as const).map(shape));
  assert.equal(shapes.size, 3);
  const failing = trayPixels('failing', 16);
  assert.ok(
    failing.some((v, i) => i % 4 === 0 && v === 255),
    'the failing icon has its white bar',
  );
});

test('the tray follows the engine: rebuilt on forward changes, toggles and stops forwards', async (t) => {
  const { engine } = await startEngine(t, { statsIntervalMs: 10 });
  const { port: target } = await tcpServer(t, echo);
  const port = await addForward(engine, 'web', { host: '127.0.0.1', port: target });
  const { electron, trays } = createFakeElectron();
  const settings = { get: () => DEFAULT_SETTINGS, onChange: () => () => undefined };
  const reports: string[] = [];
  let shown = 0;
  let quits = 0;
  const tray = new BerthTray({
    electron,
    api: engine,
    settings,
    dispatch: (action) =>
      void runTrayAction(action, {
        api: engine,
        settings: { update: () => Promise.resolve(DEFAULT_SETTINGS) },
        showWindow: () => (shown += 1),
        quit: () => (quits += 1),
        report: (m) => reports.push(m),
      }),
  });
  tray.start();
  const fakeTray = trays[0]!;
  const label = `web (127.0.0.1:${port}/tcp)`;
  assert.equal(menuItem(fakeTray.menu?.template, label)?.checked, true);
  assert.equal(fakeTray.tooltip, 'Berth: 1 of 1 forward listening');
  const builds = fakeTray.menuBuilds;
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(fakeTray.menuBuilds, builds, 'counter updates do not rebuild the menu');

  menuItem(fakeTray.menu?.template, label)?.click?.(undefined as never, undefined, undefined as never);
  await until(() => menuItem(fakeTray.menu?.template, label)?.checked === false, 'the forward unchecked');
  assert.equal(await canBind(port), true, 'the port is released');
  assert.equal(fakeTray.tooltip, 'Berth: 0 of 1 forward listening');

  menuItem(fakeTray.menu?.template, 'Start all')?.click?.(undefined as never, undefined, undefined as never);
  await until(() => menuItem(fakeTray.menu?.template, label)?.checked === true, 'the forward started again');
  menuItem(fakeTray.menu?.template, 'Stop all')?.click?.(undefined as never, undefined, undefined as never);
  await until(() => menuItem(fakeTray.menu?.template, label)?.checked === false, 'stopped by Stop all');
  menuItem(fakeTray.menu?.template, 'Open Berth')?.click?.(undefined as never, undefined, undefined as never);
  fakeTray.emit('click');
  menuItem(fakeTray.menu?.template, 'Quit')?.click?.(undefined as never, undefined, undefined as never);
  assert.deepEqual([shown, quits, reports], [2, 1, []], 'Open Berth and a click on the icon show the window');
  tray.destroy();
  assert.equal(fakeTray.destroyed, true);
});

test('a failed tray action is reported, never thrown', async () => {
  const reports: string[] = [];
  await runTrayAction(
    { type: 'toggle', id: 'x', enable: true },
    {
      api: { call: () => Promise.reject(new Error('No forward with id "x".')) },
      settings: { update: () => Promise.reject(new Error('unused')) },
      showWindow: () => undefined,
      quit: () => undefined,
      report: (m) => reports.push(m),
    },
  );
  assert.deepEqual(reports, ['No forward with id "x".']);
});
