/**
 * End to end in Debian's Chromium against a real `berth serve` on a temp config: add a forward with the form
 * (a bad port is refused next to its field first), send bytes through it and watch the counters move, switch
 * it off (the port is closed and the row says Stopped) and on again, see a crashing backend, and refuse a
 * page without the token. Screenshots of each main screen, light and dark, land in test-results/ui/.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { serve, type Instance } from '../support/berth-process.js';
import { SCREENSHOT_DIR, hasChromium, launchChromium, screenshot } from '../support/browser.js';
import { ForwardFormPage, ForwardsPage, until } from '../support/pages.js';
import { canBind, freePort } from '../support/index.js';

const UI_BUILT = existsSync(join(import.meta.dirname, '..', '..', 'dist', 'renderer', 'index.html'));
// Skipped only on request; in CI a missing browser or build fails loudly in before().
const skip = process.env.BERTH_SKIP_E2E ? 'BERTH_SKIP_E2E is set' : false;

void describe('Berth UI in Chromium', { skip, concurrency: false }, () => {
  let dir: string;
  let berth: Instance;
  let browser: Browser;
  let page: Page;
  let forwards: ForwardsPage;
  let echoPort: number;
  let listenPort: number;
  const echo = net.createServer((socket) => socket.pipe(socket));

  before(async () => {
    assert.ok(hasChromium(), 'Chromium is missing: apt-get install -y chromium (or set BERTH_SKIP_E2E=1)');
    assert.ok(UI_BUILT, 'dist/renderer/index.html is missing: run `npm run build:ui` first');
    dir = await mkdtemp(join(tmpdir(), 'berth-e2e-'));
    await rm(SCREENSHOT_DIR, { recursive: true, force: true });
    echo.listen(0, '127.0.0.1');
    await once(echo, 'listening');
    echoPort = (echo.address() as net.AddressInfo).port;
    listenPort = await freePort();
    berth = await serve(undefined, { dir, ui: true });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(10_000);
    forwards = new ForwardsPage(page);
  });

  after(async () => {
    await browser?.close();
    const code = await berth?.stop();
    echo.close();
    await rm(dir, { recursive: true, force: true });
    assert.equal(code, 0, `berth serve exited with ${String(code)}:\n${berth?.output()}`);
    // The token is printed once, in the UI line, and nowhere else.
    assert.equal(berth.output().split(berth.token).length - 1, 1);
  });

  // Every step keeps a screenshot of the page when it fails.
  const step = (name: string, body: (t: TestContext) => Promise<void>) =>
    void it(name, async (t) => {
      try {
        await body(t);
      } catch (err) {
        await screenshot(page, `failure-${name.replace(/[^a-z0-9]+/gi, '-')}`).catch(() => undefined);
        throw err;
      }
    });

  step('refuses the page without the token', async () => {
    const base = berth.url.split('#')[0] ?? '';
    const response = await page.goto(base);
    assert.equal(response?.status(), 401);
    await page.getByText('Open the address that berth serve printed').waitFor();
    assert.equal(await forwards.addButton.count(), 0);
  });

  step('opens with the token and tells a newcomer what to do', async () => {
    await page.goto(berth.url);
    await page.getByRole('heading', { name: 'No forwards yet' }).waitFor();
    await forwards.addButton.waitFor();
    // The token leaves the address bar; the HttpOnly cookie keeps a reload working.
    assert.doesNotMatch(page.url(), /token=/);
    await page.reload();
    await page.getByRole('heading', { name: 'No forwards yet' }).waitFor();
    await page.emulateMedia({ colorScheme: 'light' });
    await screenshot(page, 'empty-light');
    await page.emulateMedia({ colorScheme: 'dark' });
    await screenshot(page, 'empty-dark');
    await page.emulateMedia({ colorScheme: 'light' });
  });

  step('refuses a bad port next to its field, then adds the forward', async () => {
    const form = await forwards.openAdd();
    await form.fill({
      ID: 'web',
      Name: 'Echo test',
      'Listen port': '70000',
      'Target host': '127.0.0.1',
      'Target port': String(echoPort),
      'Backend command': `node -e "console.log('hi there')"`,
    });
    assert.deepEqual(
      await page.getByRole('list', { name: 'Backend argv' }).getByRole('listitem').allInnerTexts(),
      ['node', '-e', "console.log('hi there')"],
    );
    await form.fill({ 'Backend command': '' });
    await form.save();
    await until(
      async () => (await form.problem('Listen port')).includes('must be 1-65535'),
      'the port problem',
    );
    await screenshot(page, 'form-problem-light');
    await page.emulateMedia({ colorScheme: 'dark' });
    await screenshot(page, 'form-problem-dark');
    await page.emulateMedia({ colorScheme: 'light' });
    await form.fill({ 'Listen port': String(listenPort) });
    await form.save();
    await forwards.table.waitFor();
    await forwards.expectState('web', 'Listening');
    assert.match(await forwards.row('web').innerText(), new RegExp(`127\\.0\\.0\\.1:${listenPort}`));
  });

  step('counts the bytes sent through the forward', async () => {
    const payload = Buffer.alloc(64 * 1024, 7);
    const socket = net.connect(listenPort, '127.0.0.1');
    await once(socket, 'connect');
    let received = 0;
    socket.on('data', (chunk: Buffer) => (received += chunk.length));
    socket.write(payload);
    await until(() => Promise.resolve(received === payload.length), 'the echo');
    // The throughput sparkline's rate moves off zero while bytes flow.
    await until(
      async () => !/\b0 B\/s/.test(await forwards.row('web').innerText()),
      'a non-zero rate in the row',
    );
    await screenshot(page, 'forwards-light');
    await page.emulateMedia({ colorScheme: 'dark' });
    await screenshot(page, 'forwards-dark');
    await page.emulateMedia({ colorScheme: 'light' });
    socket.end();
    const detail = await forwards.openDetail('web');
    await until(
      async () => (await detail.value('Bytes to target').innerText()).startsWith('65,536'),
      'Bytes to target 65,536',
    );
    await until(
      async () => (await detail.value('Bytes from target').innerText()).startsWith('65,536'),
      'Bytes from target 65,536',
    );
    await until(async () => /1 total/.test(await detail.value('Connections').innerText()), '1 connection');
    await screenshot(page, 'detail-light');
    await page.emulateMedia({ colorScheme: 'dark' });
    await screenshot(page, 'detail-dark');
    await page.emulateMedia({ colorScheme: 'light' });
    await detail.back();
  });

  step('switching it off closes the port and shows Stopped; on opens it again', async () => {
    await forwards.toggle('web').click();
    await forwards.expectState('web', 'Stopped');
    assert.equal(await forwards.toggle('web').getAttribute('aria-checked'), 'false');
    await assert.rejects(connectOnce(listenPort), /ECONNREFUSED/);
    assert.ok(await canBind(listenPort), 'a fresh bind of the port succeeds once it is off');
    await forwards.toggle('web').click();
    await forwards.expectState('web', 'Listening');
    await connectOnce(listenPort);
  });

  step('is usable from the keyboard', async () => {
    await forwards.toggle('web').focus();
    await page.keyboard.press('Space');
    await forwards.expectState('web', 'Stopped');
    await page.keyboard.press('Space');
    await forwards.expectState('web', 'Listening');
    const outline = await forwards.toggle('web').evaluate((node) => getComputedStyle(node).outlineStyle);
    assert.notEqual(outline, 'none', 'the focused switch shows a focus ring');
  });

  step('edits the forward through the same form', async () => {
    const detail = await forwards.openDetail('web');
    await page.getByRole('button', { name: 'Edit', exact: true }).click();
    const form = new ForwardFormPage(page);
    await page.getByRole('heading', { name: 'Edit Echo test' }).waitFor();
    assert.equal(await form.field('ID').isDisabled(), true);
    await form.fill({ Name: 'Echo renamed' });
    await form.save();
    await page.getByRole('heading', { name: 'Echo renamed' }).waitFor();
    await until(
      async () =>
        (await page.getByRole('region', { name: 'Echo renamed' }).innerText()).includes('Listening'),
      'the renamed forward to listen again',
    );
    await detail.back();
    await forwards.expectState('web', 'Listening');
  });

  step('shows a backend that crashes', async (): Promise<void> => {
    const port = await freePort();
    const form = await forwards.openAdd();
    await form.fill({
      ID: 'crash',
      'Listen port': String(port),
      'Target port': String(echoPort),
      'Backend command': `${process.execPath} -e "process.exit(3)"`,
    });
    await form.save();
    await forwards.table.waitFor();
    await forwards.expectState('crash', /Listening|Error/);
    await forwards.expectState('crash', /Failed|Exited|Restarting/);
    const detail = await forwards.openDetail('crash');
    await until(async () => /exit code 3/.test(await detail.value('Last exit').innerText()), 'exit code 3');
    // The log tail shows Berth's own note about the crash, loaded when the detail view opened.
    await page
      .getByRole('log', { name: 'Backend log' })
      .getByText(/exited with code 3/)
      .first()
      .waitFor();
    await screenshot(page, 'backend-crash');
    await detail.back();
  });

  step('asks before deleting, then removes the forward', async () => {
    const detail = await forwards.openDetail('web');
    await page.getByRole('button', { name: 'Delete…' }).click();
    const dialog = page.getByRole('alertdialog', { name: /Delete Echo renamed\?/ });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    assert.equal(await dialog.count(), 0);
    await page.getByRole('button', { name: 'Delete…' }).click();
    await dialog.getByRole('button', { name: 'Delete', exact: true }).click();
    await until(async () => (await forwards.toggle('web').count()) === 0, 'the row to go');
    assert.ok(await canBind(listenPort));
    void detail;
  });
});

function connectOnce(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
}
