import { execFileSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const ARTIFACTS_DIR = join(process.cwd(), 'test-artifacts');
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Builds web/dist when missing or older than its sources (the server serves it). */
export function buildWebApp(): void {
  execFileSync(process.execPath, ['web/build-if-stale.mjs'], { stdio: 'inherit' });
}

/** Debian's Chromium, headless, with nothing running in the background. */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-quic',
      '--disable-sync',
    ],
  });
}

/** A user's browser window: its own storage (IndexedDB, localStorage), and its console kept for failures. */
export async function openUser(browser: Browser, baseURL: string): Promise<{ context: BrowserContext; page: Page; logs: string[] }> {
  const context = await browser.newContext({ baseURL, viewport: { width: 1100, height: 760 } });
  const page = await context.newPage();
  const logs: string[] = [];
  page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
  return { context, page, logs };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, name);
  await page.screenshot({ path, fullPage: false });
  return path;
}
