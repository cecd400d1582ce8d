/** main/settings.ts and main/login-item.ts: validated, atomically saved desktop settings; start at login. */
import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseDesktopArgs } from '../../main/args.js';
import { applyLoginItem, autostartEntry, HIDDEN_ARG } from '../../main/login-item.js';
import {
  DEFAULT_SETTINGS,
  loadSettings,
  parseSettings,
  saveSettings,
  SettingsStore,
  settingsPath,
  type Settings,
} from '../../main/settings.js';
import { createFakeElectron } from '../support/fake-electron.js';
import { tempDir } from '../support/index.js';

test('the defaults: not at login, forwards as they were, close to tray', () => {
  assert.deepEqual(DEFAULT_SETTINGS, {
    version: 1,
    startAtLogin: false,
    startForwards: 'as-they-were',
    closeToTray: true,
  });
  assert.equal(settingsPath('/home/me/.config/berth/config.json'), '/home/me/.config/berth/desktop.json');
});

test('settings are validated: bad values and unknown keys are refused with their path', () => {
  assert.deepEqual(parseSettings({ startForwards: 'always' }), {
    ...DEFAULT_SETTINGS,
    startForwards: 'always',
  });
  for (const [raw, path] of [
    [{ startForwards: 'sometimes' }, 'startForwards'],
    [{ startAtLogin: 'yes' }, 'startAtLogin'],
    [{ closeToTray: 1 }, 'closeToTray'],
    [{ version: 2 }, 'version'],
    [{ theme: 'dark' }, 'theme'],
  ] as const) {
    assert.throws(() => parseSettings(raw), new RegExp(path), JSON.stringify(raw));
  }
  assert.throws(() => parseSettings(null));
  assert.throws(() => parseSettings([]));
});

test('load: a missing file gives the defaults; a saved file round-trips with mode 0600', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'nested', 'desktop.json');
  assert.deepEqual(await loadSettings(file), { settings: DEFAULT_SETTINGS, notices: [] });
  const settings = { ...DEFAULT_SETTINGS, startAtLogin: true, startForwards: 'never' as const };
  await saveSettings(file, settings);
  assert.deepEqual((await loadSettings(file)).settings, settings);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.deepEqual(await readdir(join(dir, 'nested')), ['desktop.json'], 'no temp file left behind');
});

test('load: an invalid file is kept aside, never overwritten, and the user is told', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'desktop.json');
  await writeFile(file, '{"startForwards": "sometimes"}');
  const loaded = await loadSettings(file, () => new Date('2026-01-02T03:04:05.678Z'));
  assert.deepEqual(loaded.settings, DEFAULT_SETTINGS);
  const aside = `${file}.corrupt-2026-01-02T03-04-05-678Z`;
  assert.equal(await readFile(aside, 'utf8'), '{"startForwards": "sometimes"}');
  assert.match(loaded.notices[0] ?? '', /startForwards/);
  assert.match(loaded.notices[0] ?? '', /kept as/);
  await writeFile(file, 'not json');
  assert.equal((await loadSettings(file)).settings, DEFAULT_SETTINGS);
});

test('the store validates changes, saves before announcing, and refuses bad ones untouched', async (t) => {
  const dir = await tempDir(t);
  const { store } = await SettingsStore.open(join(dir, 'desktop.json'));
  const seen: boolean[] = [];
  store.onChange((s) => seen.push(s.closeToTray));
  await store.update({ closeToTray: false });
  assert.equal(store.get().closeToTray, false);
  assert.deepEqual(seen, [false]);
  assert.equal((JSON.parse(await readFile(store.path, 'utf8')) as Settings).closeToTray, false);
  await assert.rejects(store.update({ startForwards: 'bogus' as never }), /startForwards/);
  assert.equal(store.get().startForwards, 'as-they-were');
  assert.deepEqual(seen, [false]);
});

test('start at login: Electron login items on macOS and Windows, started hidden', async () => {
  const { fake } = createFakeElectron();
  const target = { app: fake.app, execPath: '/Applications/Berth.app', env: {} };
  await applyLoginItem(true, { ...target, platform: 'darwin' });
  await applyLoginItem(false, { ...target, platform: 'win32' });
  assert.deepEqual(fake.app.loginItems, [
    { openAtLogin: true, args: [HIDDEN_ARG] },
    { openAtLogin: false, args: [HIDDEN_ARG] },
  ]);
});

test('start at login on Linux: an XDG autostart entry, removed when turned off', async (t) => {
  const dir = await tempDir(t);
  const { fake } = createFakeElectron();
  const target = {
    platform: 'linux' as const,
    app: fake.app,
    execPath: '/opt/Berth/berth',
    env: { XDG_CONFIG_HOME: dir },
  };
  await applyLoginItem(true, target);
  const entry = await readFile(join(dir, 'autostart', 'berth.desktop'), 'utf8');
  assert.match(entry, /^\[Desktop Entry\]\n/);
  assert.match(entry, /^Exec="\/opt\/Berth\/berth" --hidden$/m);
  await applyLoginItem(true, { ...target, env: { ...target.env, APPIMAGE: '/home/me/Berth.AppImage' } });
  assert.match(
    await readFile(join(dir, 'autostart', 'berth.desktop'), 'utf8'),
    /Exec="\/home\/me\/Berth.AppImage"/,
  );
  await applyLoginItem(false, target);
  await assert.rejects(stat(join(dir, 'autostart', 'berth.desktop')), { code: 'ENOENT' });
  await applyLoginItem(false, target);
  assert.deepEqual(fake.app.loginItems, []);
  assert.equal(
    autostartEntry('/a "b"/$x`y`\\z').split('\n')[3],
    'Exec="/a \\"b\\"/\\$x\\`y\\`\\\\z" --hidden',
  );
});

test('the desktop flags: --config, --control (both forms), --hidden, else the CLI defaults', () => {
  const env = { XDG_CONFIG_HOME: '/x', XDG_RUNTIME_DIR: '/run/user/1' };
  assert.deepEqual(parseDesktopArgs(['/opt/berth', '.'], env), {
    configPath: '/x/berth/config.json',
    controlPath: '/run/user/1/berth/control.sock',
    hidden: false,
  });
  assert.deepEqual(parseDesktopArgs(['berth', '--config', '/c.json', '--control=/s.sock', '--hidden'], env), {
    configPath: '/c.json',
    controlPath: '/s.sock',
    hidden: true,
  });
});
