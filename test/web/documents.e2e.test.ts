import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { buildWebApp, launchChromium, openUser, screenshot } from './browser.ts';

/**
 * Shared documents in the built web app, in Debian's headless Chromium: two
 * users in two browser contexts open the same document beside the chat and
 * type in it. Ben reaches the API through a TCP proxy, so the test can take
 * his network away for real (WebSocket and HTTP) while Ana keeps editing.
 */
const STEP_MS = 90_000;

let server: TestServer;
let proxy: TcpProxy;
let browser: Browser;
let ana: Awaited<ReturnType<typeof openUser>>;
let ben: Awaited<ReturnType<typeof openUser>>;

async function signUp(page: Page, name: string, email: string) {
  await page.goto('/');
  await page.getByLabel('Name').fill(name);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.locator('.banner[data-status="connected"]').waitFor();
}

/** The editor's text as the user sees it, without collaborators' caret labels. */
function editorText(page: Page): Promise<string> {
  return page.locator('.doc-host .cm-content').evaluate((content) => {
    const clone = content.cloneNode(true) as HTMLElement;
    clone.querySelectorAll('.cm-ySelectionCaret').forEach((caret) => caret.remove());
    return Array.from(clone.querySelectorAll('.cm-line'), (line) => line.textContent ?? '')
      .join('\n')
      .replace(/\u2060/g, '');
  });
}

const syncStatus = (page: Page) => page.locator('.doc-status').getAttribute('data-sync');

describe('shared documents in Chromium', () => {
  beforeAll(async () => {
    buildWebApp();
    server = await startTestServer('pglite');
    proxy = await startTcpProxy(server.url);
    browser = await launchChromium();
    ana = await openUser(browser, new URL(server.url).origin);
    ben = await openUser(browser, new URL(proxy.url).origin);
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await server?.dispose();
  }, 60_000);

  const step = (name: string, fn: () => Promise<void>) =>
    it(
      name,
      async () => {
        try {
          await fn();
        } catch (error) {
          console.error(`--- Ana's console\n${ana.logs.join('\n')}\n--- Ben's console\n${ben.logs.join('\n')}`);
          await screenshot(ana.page, 'documents-failure-ana.png').catch(() => {});
          await screenshot(ben.page, 'documents-failure-ben.png').catch(() => {});
          throw error;
        }
      },
      STEP_MS,
    );

  step('two users open the same document, type at once, and see the same text and each other', async () => {
    await signUp(ana.page, 'Ana', 'ana-docs@example.com');
    await signUp(ben.page, 'Ben', 'ben-docs@example.com');
    await ana.page.getByLabel('New room name').fill('Planning');
    await ana.page.getByRole('button', { name: 'Create room' }).click();
    await ana.page.waitForURL(/\/rooms\/[^/]+$/);
    const roomPath = new URL(ana.page.url()).pathname;
    await ben.page.getByLabel('Room link or id').fill(roomPath.split('/').pop()!);
    await ben.page.getByRole('button', { name: 'Join room' }).click();
    await ben.page.waitForURL(`**${roomPath}`);

    // Ana creates a document; it opens for her at once.
    await ana.page.getByLabel('New document title').fill('Meeting notes');
    await ana.page.getByRole('button', { name: 'Create document' }).click();
    const anaEditor = ana.page.getByRole('textbox', { name: 'Document text: Meeting notes' });
    await anaEditor.waitFor();
    await expect.poll(() => syncStatus(ana.page)).toBe('synced');
    await anaEditor.click();
    await ana.page.keyboard.type('Agenda', { delay: 20 });
    await ana.page.keyboard.press('Enter');

    // Ben finds it in the room's list (refreshed on focus and every few seconds) and opens it.
    await ben.page.evaluate(() => window.dispatchEvent(new Event('focus')));
    await ben.page.getByRole('button', { name: 'Open Meeting notes' }).click({ timeout: 20_000 });
    const benEditor = ben.page.getByRole('textbox', { name: 'Document text: Meeting notes' });
    await benEditor.waitFor();
    await expect.poll(() => editorText(ben.page)).toBe('Agenda\n');
    expect(new URL(ben.page.url()).searchParams.get('doc')).toBeTruthy();

    // Both type at the same time: Ana at the top, Ben at the bottom.
    await benEditor.click();
    await Promise.all([
      (async () => {
        await ana.page.keyboard.press('Control+Home');
        await ana.page.keyboard.type('Ana was here. ', { delay: 25 });
      })(),
      (async () => {
        await ben.page.keyboard.press('Control+End');
        await ben.page.keyboard.type('Ben wrote this line.', { delay: 25 });
      })(),
    ]);
    const expected = 'Ana was here. Agenda\nBen wrote this line.';
    await expect.poll(() => editorText(ana.page), { timeout: 15_000 }).toBe(expected);
    await expect.poll(() => editorText(ben.page), { timeout: 15_000 }).toBe(expected);
    await expect.poll(() => syncStatus(ana.page)).toBe('synced');
    await expect.poll(() => syncStatus(ben.page)).toBe('synced');

    // Each sees the other's named caret and both names in the list of people.
    const anaCaretForBen = ben.page.locator('.doc-host .doc-caret-name', { hasText: 'Ana' });
    await expect.poll(() => anaCaretForBen.isVisible()).toBe(true);
    await expect.poll(() => ana.page.locator('.doc-host .doc-caret-name', { hasText: 'Ben' }).isVisible()).toBe(true);
    const people = ben.page.getByRole('list', { name: 'People in this document' });
    await expect.poll(() => people.getByRole('listitem').allTextContents()).toEqual(['Ben (you)', 'Ana']);
    // Drawn with classes: the app's CSP refuses inline style attributes.
    expect(await anaCaretForBen.evaluate((el) => getComputedStyle(el).backgroundColor)).not.toBe('rgba(0, 0, 0, 0)');
    expect([...ana.logs, ...ben.logs].filter((l) => l.includes('Content Security Policy'))).toEqual([]);
    console.log('screenshot:', await screenshot(ben.page, 'document.png'));
  });

  step('edits made while offline are kept, shown as pending, and merged on reconnect', async () => {
    proxy.pause();
    proxy.cut();
    await expect.poll(() => syncStatus(ben.page), { timeout: 20_000 }).toBe('offline');

    await ben.page.getByRole('textbox', { name: 'Document text: Meeting notes' }).click();
    await ben.page.keyboard.press('Control+End');
    await ben.page.keyboard.type(' (typed offline)', { delay: 20 });
    await ana.page.getByRole('textbox', { name: 'Document text: Meeting notes' }).click();
    await ana.page.keyboard.press('Control+Home');
    await ana.page.keyboard.type('Meanwhile: ', { delay: 20 });
    await expect.poll(async () => Number(await ben.page.locator('.doc-status').getAttribute('data-pending'))).toBeGreaterThan(0);
    expect(await ben.page.locator('.doc-status').textContent()).toMatch(/Offline: \d+ edits? kept/);
    expect(await editorText(ana.page)).not.toContain('offline');

    proxy.resume();
    const expected = 'Meanwhile: Ana was here. Agenda\nBen wrote this line. (typed offline)';
    await expect.poll(() => editorText(ben.page), { timeout: 40_000 }).toBe(expected);
    await expect.poll(() => editorText(ana.page), { timeout: 40_000 }).toBe(expected);
    await expect.poll(() => syncStatus(ben.page), { timeout: 40_000 }).toBe('synced');
    await expect.poll(() => ben.page.locator('.doc-status').getAttribute('data-pending')).toBe('0');

    // A reload loads the same text from the server.
    await ana.page.reload();
    await ana.page.getByRole('textbox', { name: 'Document text: Meeting notes' }).waitFor();
    await expect.poll(() => editorText(ana.page)).toBe(expected);
  });

  step('edits typed offline survive a reload and are sent when the network is back', async () => {
    // The service worker must hold the app shell to reload without a network.
    await ben.page.evaluate(async () => {
      await navigator.serviceWorker.ready;
    });
    await expect.poll(() => ben.page.evaluate(() => Boolean(navigator.serviceWorker.controller))).toBe(true);
    const before = await editorText(ana.page);
    proxy.pause();
    proxy.cut();
    await expect.poll(() => syncStatus(ben.page), { timeout: 20_000 }).toBe('offline');

    const editor = ben.page.getByRole('textbox', { name: 'Document text: Meeting notes' });
    await editor.click();
    await ben.page.keyboard.press('Control+End');
    await ben.page.keyboard.press('Enter');
    await ben.page.keyboard.type('Written offline, then reloaded.', { delay: 15 });
    await expect.poll(async () => Number(await ben.page.locator('.doc-status').getAttribute('data-pending'))).toBeGreaterThan(0);
    // The editor saves to IndexedDB half a second after a change.
    await ben.page.waitForTimeout(1000);

    await ben.page.reload();
    await editor.waitFor({ timeout: 20_000 });
    await expect.poll(() => editorText(ben.page)).toBe(`${before}\nWritten offline, then reloaded.`);
    expect(await syncStatus(ben.page)).not.toBe('synced');
    expect(Number(await ben.page.locator('.doc-status').getAttribute('data-pending'))).toBeGreaterThan(0);
    expect(await editorText(ana.page)).toBe(before);

    proxy.resume();
    await expect.poll(() => editorText(ana.page), { timeout: 40_000 }).toBe(`${before}\nWritten offline, then reloaded.`);
    await expect.poll(() => syncStatus(ben.page), { timeout: 40_000 }).toBe('synced');
    expect(await editorText(ben.page)).toBe(await editorText(ana.page));
  });
});
