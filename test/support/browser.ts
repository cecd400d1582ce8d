/** Debian's Chromium driven by playwright-core, and where screenshots go. */
// playwright-core's types name DOM types (page.evaluate callbacks run in the page); the test tsconfig is Node-only.
/// <reference lib="dom" />
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Debian's chromium package; CI installs it (`apt-get install -y chromium`). */
export const CHROMIUM = process.env.BERTH_CHROMIUM ?? '/usr/bin/chromium';

/** Screenshots of the main screens (a CI artifact) and of every failure; test-results/ is git-ignored. */
export const SCREENSHOT_DIR = join(import.meta.dirname, '..', '..', 'test-results', 'ui');

/** True when the browser is installed. */
export function hasChromium(): boolean {
  return existsSync(CHROMIUM);
}

/** A fresh headless Chromium (playwright gives each launch its own temporary profile). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Saves a full-page screenshot as SCREENSHOT_DIR/NAME.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
