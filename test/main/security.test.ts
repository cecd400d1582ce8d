/** main/security.ts, main/sender.ts and main/app-protocol.ts: the window's secure defaults, under the fake Electron. */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { test } from 'node:test';
import { APP_URL, appFile, appResponse, registerAppScheme } from '../../main/app-protocol.js';
import {
  contentSecurityPolicy,
  denyPermissions,
  guardWebContents,
  isAllowedExternal,
  windowOptions,
  withCsp,
} from '../../main/security.js';
import { sameOrigin, trustedSender } from '../../main/sender.js';
import { MainWindow } from '../../main/window.js';
import {
  asFrame,
  asWebContents,
  createFakeElectron,
  FakeFrame,
  FakeWebContents,
} from '../support/fake-electron.js';
import { tempDir } from '../support/index.js';

test('the window options isolate and sandbox the page, without Node, with web security and the preload', () => {
  const options = windowOptions('/app/.vite/build/preload.cjs');
  const prefs = options.webPreferences ?? {};
  assert.equal(prefs.contextIsolation, true);
  assert.equal(prefs.sandbox, true);
  assert.equal(prefs.nodeIntegration, false);
  assert.equal(prefs.nodeIntegrationInWorker, false);
  assert.equal(prefs.nodeIntegrationInSubFrames, false);
  assert.notEqual(prefs.webSecurity, false);
  assert.equal(prefs.allowRunningInsecureContent, false);
  assert.equal(prefs.webviewTag, false);
  assert.equal(prefs.experimentalFeatures, false);
  assert.equal(prefs.preload, '/app/.vite/build/preload.cjs');
  assert.equal(options.show, false, 'shown on ready-to-show, not blank');
});

test('the CSP allows only Berth itself; development relaxes only the dev server', () => {
  const csp = contentSecurityPolicy();
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /connect-src 'self'(;|$)/);
  assert.match(csp, /object-src 'none'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /unsafe-eval|unsafe-inline|\*/);
  const dev = contentSecurityPolicy('http://localhost:5173');
  assert.match(dev, /connect-src 'self' ws:\/\/localhost:5173/);
  assert.doesNotMatch(dev, /unsafe-eval/);
});

test('withCsp replaces a CSP header of any case and keeps the others', () => {
  const headers = withCsp(
    { 'content-security-policy': ['default-src *'], 'Content-Type': ['text/html'] },
    "default-src 'none'",
  );
  assert.deepEqual(headers, {
    'Content-Type': ['text/html'],
    'Content-Security-Policy': ["default-src 'none'"],
  });
  assert.deepEqual(withCsp(undefined, 'x'), { 'Content-Security-Policy': ['x'] });
});

test('openExternal allow-list: https to listed hosts only, no credentials, no other port', () => {
  assert.equal(isAllowedExternal('https://github.com/berth/berth'), true);
  for (const url of [
    'http://github.com/',
    'https://github.com.evil.example/',
    'https://evil.example/?github.com',
    'https://user:pw@github.com/',
    'https://github.com:8443/',
    'file:///etc/passwd',
    'javascript:alert(1)',
    'smb://github.com/share',
    'not a url',
  ]) {
    assert.equal(isAllowedExternal(url), false, url);
  }
});

test('navigation away from the page and every new window are denied; allowed links open in the browser', async () => {
  const contents = new FakeWebContents(APP_URL);
  const opened: string[] = [];
  guardWebContents(asWebContents(contents), {
    appUrl: APP_URL,
    openExternal: (url) => {
      opened.push(url);
      return Promise.resolve();
    },
  });
  assert.equal(contents.fire('will-navigate', 'https://evil.example/').defaultPrevented, true);
  assert.equal(contents.fire('will-navigate', 'file:///etc/passwd').defaultPrevented, true);
  assert.equal(contents.fire('will-navigate', 'https://github.com/berth').defaultPrevented, true);
  assert.equal(contents.fire('will-navigate', 'app://berth/index.html#detail').defaultPrevented, false);
  assert.equal(contents.fire('will-redirect', 'https://evil.example/').defaultPrevented, true);
  assert.equal(contents.fire('will-attach-webview', 'app://berth/').defaultPrevented, true);
  assert.deepEqual(contents.windowOpenHandler?.({ url: 'https://evil.example/' }), { action: 'deny' });
  assert.deepEqual(contents.windowOpenHandler?.({ url: 'https://github.com/issues' }), { action: 'deny' });
  await Promise.resolve();
  assert.deepEqual(opened, ['https://github.com/berth', 'https://github.com/issues']);
});

test('a failing openExternal does not escape as an unhandled rejection', async () => {
  const contents = new FakeWebContents(APP_URL);
  guardWebContents(asWebContents(contents), {
    appUrl: APP_URL,
    openExternal: () => Promise.reject(new Error('no browser')),
  });
  contents.windowOpenHandler?.({ url: 'https://github.com/' });
  await new Promise((resolve) => setImmediate(resolve));
});

test('every permission request and check is refused', () => {
  const { fake } = createFakeElectron();
  const session = fake.session.defaultSession;
  denyPermissions(session);
  const answers: boolean[] = [];
  session.permissionRequest?.({}, 'media', (granted) => answers.push(granted));
  session.permissionRequest?.({}, 'notifications', (granted) => answers.push(granted));
  assert.deepEqual(answers, [false, false]);
  assert.equal(session.permissionCheck?.({}, 'clipboard-read', 'app://berth'), false);
});

test('the sender check accepts only the top frame of Berth own origin', () => {
  const trusted = trustedSender(APP_URL);
  const top = new FakeFrame('app://berth/index.html');
  assert.equal(trusted(asFrame(top)), true);
  assert.equal(trusted(asFrame(new FakeFrame('app://berth/index.html', top))), false, 'an iframe');
  assert.equal(trusted(asFrame(new FakeFrame('app://evil/index.html'))), false, 'another host');
  assert.equal(trusted(asFrame(new FakeFrame('https://berth/index.html'))), false, 'another scheme');
  assert.equal(trusted(asFrame(new FakeFrame('file:///tmp/index.html'))), false);
  assert.equal(trusted(asFrame(new FakeFrame('about:blank'))), false);
  assert.equal(trusted(asFrame(null)), false, 'a frame already gone');
  assert.equal(trusted(undefined), false);
  const dev = trustedSender('http://localhost:5173/');
  assert.equal(dev(asFrame(new FakeFrame('http://localhost:5173/index.html'))), true);
  assert.equal(dev(asFrame(new FakeFrame('http://localhost:5174/'))), false, 'another port');
  assert.equal(sameOrigin('app://user@berth/', new URL(APP_URL)), false);
});

test('app://berth serves only files under the UI folder, with the CSP header', async (t) => {
  const dir = await tempDir(t);
  const root = join(dir, 'ui');
  await mkdir(join(root, 'assets'), { recursive: true });
  await writeFile(join(root, 'index.html'), '<!doctype html><title>Berth</title>');
  await writeFile(join(root, 'assets', 'app.js'), 'console.log(1)');
  await writeFile(join(dir, 'secret.txt'), 'secret');
  assert.equal(appFile('app://berth/', root), join(root, 'index.html'));
  assert.equal(appFile('app://berth/assets/app.js', root), join(root, 'assets', 'app.js'));
  // The URL parser already folds "/../"; what is left must never leave the UI folder.
  for (const url of [
    'app://berth/../secret.txt',
    'app://berth/%2e%2e/secret.txt',
    'app://berth/assets/..%2f..%2fsecret.txt',
    'app://berth/..%5c..%5csecret.txt',
  ]) {
    const file = appFile(url, root);
    assert.ok(file === undefined || file.startsWith(root + sep), `${url} → ${file}`);
    const response = await appResponse(url, root, 'x');
    assert.equal(response.status, 404, url);
    assert.equal((await response.text()).includes('secret'), false, url);
  }
  for (const url of [
    'app://berth/%00',
    'app://berth/%E0%A4%A',
    'app://other/index.html',
    'file:///etc/passwd',
  ]) {
    assert.equal(appFile(url, root), undefined, url);
  }
  const page = await appResponse('app://berth/index.html', root, "default-src 'none'");
  assert.equal(page.status, 200);
  assert.equal(page.headers.get('content-security-policy'), "default-src 'none'");
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  const script = await appResponse('app://berth/assets/app.js', root, 'x');
  assert.match(script.headers.get('content-type') ?? '', /javascript/);
  assert.equal((await appResponse('app://berth/missing.js', root, 'x')).status, 404);
  const { fake, electron } = createFakeElectron();
  registerAppScheme(electron.protocol);
  assert.deepEqual(fake.protocol.privileged, [
    { scheme: 'app', privileges: { standard: true, secure: true, supportFetchAPI: true } },
  ]);
});

test('the window is created with the secure options, hides to the tray on close, closes when quitting', () => {
  const { electron, windows } = createFakeElectron();
  let closeToTray = true;
  let quitting = false;
  const window = new MainWindow({
    BrowserWindow: electron.BrowserWindow,
    preloadPath: '/p/preload.cjs',
    url: APP_URL,
    closeToTray: () => closeToTray,
    quitting: () => quitting,
  });
  window.show();
  assert.equal(windows.length, 1);
  const created = windows[0]!;
  assert.deepEqual(created.options, windowOptions('/p/preload.cjs'));
  assert.equal(created.url, APP_URL);
  created.emit('ready-to-show');
  assert.equal(created.visible, true);
  created.close();
  assert.equal(created.isDestroyed(), false, 'hidden, not closed');
  assert.equal(created.visible, false);
  window.show();
  assert.equal(windows.length, 1, 'the same window again');
  assert.equal(created.visible, true);
  quitting = true;
  created.close();
  assert.equal(created.isDestroyed(), true);
  quitting = false;
  closeToTray = false;
  window.show();
  assert.equal(windows.length, 2, 'a new window after the old one closed');
});
