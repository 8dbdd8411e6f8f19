import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { buildWebApp, launchChromium, openUser, screenshot } from './browser.ts';

/**
 * The built web app, served by the real API on port 0, in Debian's headless
 * Chromium: two users in two browser contexts (separate storage), chatting.
 * The steps share one server and build on each other, in order.
 */
const PUBLISHER = 'publisher@example.com';
const STEP_MS = 60_000;

let server: TestServer;
let origin: string;
let browser: Browser;
let ana: Awaited<ReturnType<typeof openUser>>;
let ben: Awaited<ReturnType<typeof openUser>>;
let roomPath = '';

async function signUp(page: Page, name: string, email: string) {
  await page.goto('/');
  await page.getByLabel('Name').fill(name);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill('correct horse battery');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.locator('.banner[data-status="connected"]').waitFor();
}

async function send(page: Page, body: string) {
  await page.getByLabel('Message').fill(body);
  await page.getByRole('button', { name: 'Send' }).click();
}

/** The bodies of stored (not pending) messages, in the order shown. */
async function bodies(page: Page): Promise<string[]> {
  return page.locator('.message:not(.pending) .body').allTextContents();
}

async function graphql<T>(query: string, variables: Record<string, unknown>, token?: string): Promise<T> {
  const res = await fetch(`${origin}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const json = (await res.json()) as { data: T; errors?: unknown };
  if (json.errors) throw new Error(JSON.stringify(json.errors));
  return json.data;
}

describe('web app in Chromium', () => {
  beforeAll(async () => {
    buildWebApp();
    server = await startTestServer('pglite', { env: { METRICS_PUBLISHER_EMAILS: PUBLISHER, PRESENCE_GRACE_MS: '1000' } });
    origin = new URL(server.url).origin;
    browser = await launchChromium();
    ana = await openUser(browser, origin);
    ben = await openUser(browser, origin);
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await server?.dispose();
  }, 60_000);

  // Print what the pages logged when a step fails.
  const step = (name: string, fn: () => Promise<void>) =>
    it(
      name,
      async () => {
        try {
          await fn();
        } catch (error) {
          console.error(`--- Ana's console\n${ana.logs.join('\n')}\n--- Ben's console\n${ben.logs.join('\n')}`);
          throw error;
        }
      },
      STEP_MS,
    );

  step('serves the app with its CSP, the SPA fallback, and leaves API paths alone', async () => {
    const page = await fetch(`${origin}/rooms/anything`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await page.text();
    expect(html).not.toMatch(/<script>(?!<\/script>)|<script(?![^>]*\bsrc=)[^>]*>/);
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    const js = await fetch(`${origin}${script}`);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect((await fetch(`${origin}/healthz`)).status).toBe(200);
    expect((await fetch(`${origin}/nope.json`)).status).toBe(404);
    expect((await fetch(`${origin}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{ me { id } }"}' })).status).toBe(200);
  });

  step('two users sign up, share a room and chat both ways with typing, presence and read marks', async () => {
    await signUp(ana.page, 'Ana', 'ana@example.com');
    await signUp(ben.page, 'Ben', 'ben@example.com');

    await ana.page.getByLabel('New room name').fill('General');
    await ana.page.getByRole('button', { name: 'Create room' }).click();
    await ana.page.waitForURL(/\/rooms\/[^/]+$/);
    roomPath = new URL(ana.page.url()).pathname;

    // Ben joins with the room's link.
    await ben.page.getByLabel('Room link or id').fill(`${origin}${roomPath}`);
    await ben.page.getByRole('button', { name: 'Join room' }).click();
    await ben.page.waitForURL(`**${roomPath}`);

    await send(ana.page, 'Hi Ben, see https://example.com/docs and <b>not bold</b>');
    await expect.poll(() => bodies(ben.page)).toEqual(['Hi Ben, see https://example.com/docs and <b>not bold</b>']);
    // Text, never HTML; only http(s) links, opened without an opener.
    expect(await ben.page.locator('.message .body b').count()).toBe(0);
    const link = ben.page.locator('.message .body a');
    expect(await link.getAttribute('href')).toBe('https://example.com/docs');
    expect(await link.getAttribute('rel')).toBe('noopener noreferrer');

    // Ben is typing…
    await ben.page.getByLabel('Message').pressSequentially('Hel', { delay: 50 });
    await expect.poll(() => ana.page.getByTestId('typing').textContent()).toBe('Ben is typing…');
    await ben.page.getByLabel('Message').fill('');
    await send(ben.page, 'Hello Ana');
    await expect.poll(() => bodies(ana.page)).toEqual(['Hi Ben, see https://example.com/docs and <b>not bold</b>', 'Hello Ana']);
    await expect.poll(() => ana.page.getByTestId('typing').textContent()).toBe('');

    // Presence: each sees the other online.
    await expect.poll(() => ana.page.locator('.room-header .presence[data-presence="online"]').count()).toBe(2);
    await expect.poll(() => ben.page.locator('.room-header .presence[data-presence="online"]').count()).toBe(2);

    // Read marks: Ben has Ana's message on screen, so it shows as read for Ana, and the reverse.
    await expect.poll(() => ana.page.locator('.message.mine .receipt').first().getAttribute('data-read-by')).toBe('1');
    await expect.poll(() => ben.page.locator('.message.mine .receipt').first().getAttribute('data-read-by')).toBe('1');
    await expect.poll(() => ana.page.locator('.message.mine .receipt .read').count()).toBe(1);
  });

  step('messages written offline survive a reload and arrive once, in order, when back online', async () => {
    // The worker must hold the app shell for the reload without a network.
    await ben.page.evaluate(async () => {
      await navigator.serviceWorker.ready;
    });
    await expect.poll(() => ben.page.evaluate(() => Boolean(navigator.serviceWorker.controller))).toBe(true);
    const anaBefore = await bodies(ana.page);
    const before = anaBefore.length;

    await ben.context.setOffline(true);
    // Offline emulation reaches the page's requests (which pass by its service worker) a moment later.
    const probe = () => ben.page.evaluate(() => fetch('/healthz', { cache: 'no-store' }).then(() => 'online', () => 'offline'));
    await expect.poll(probe).toBe('offline');
    for (const body of ['offline 1', 'offline 2', 'offline 3']) await send(ben.page, body);
    await expect.poll(() => ben.page.locator('.message.pending').count()).toBe(3);
    await expect.poll(() => ben.page.locator('.banner').getAttribute('data-queued')).toBe('3');

    await ben.page.reload();
    await ben.page.getByLabel('Message').waitFor();
    await expect.poll(() => ben.page.locator('.message.pending .body').allTextContents()).toEqual(['offline 1', 'offline 2', 'offline 3']);
    await expect.poll(() => ben.page.locator('.banner').getAttribute('data-queued')).toBe('3');
    await expect.poll(() => ben.page.locator('.banner').getAttribute('data-status')).not.toBe('connected');
    // Not asserted here: that nothing reached Ana yet. Chromium applies the offline
    // emulation to the reloaded document a moment late, and the queue's first replay
    // sometimes slips through that window (as it should on a real network).
    expect((await bodies(ana.page)).slice(0, before)).toEqual(anaBefore);

    await ben.context.setOffline(false);
    await expect.poll(() => bodies(ana.page), { timeout: 40_000 }).toHaveLength(before + 3);
    expect((await bodies(ana.page)).slice(before)).toEqual(['offline 1', 'offline 2', 'offline 3']);
    await expect.poll(() => ben.page.locator('.message.pending').count(), { timeout: 40_000 }).toBe(0);
    await expect.poll(() => ben.page.locator('.banner').getAttribute('data-status'), { timeout: 40_000 }).toBe('connected');
    // Exactly once: nothing more arrives afterwards.
    await ana.page.waitForTimeout(1000);
    expect((await bodies(ana.page)).slice(before)).toEqual(['offline 1', 'offline 2', 'offline 3']);
  });

  step('an uploaded image shows in the other window', async () => {
    // A real PNG: a small screenshot of the page.
    const png = await ana.page.screenshot({ clip: { x: 0, y: 0, width: 120, height: 80 } });
    await ana.page.getByLabel('Attach a file').setInputFiles({ name: 'photo.png', mimeType: 'image/png', buffer: png });
    await expect.poll(() => ana.page.locator('progress').getAttribute('value')).toBe('1');
    await send(ana.page, 'a photo');
    const image = ben.page.locator('.message img.preview[alt="photo.png"]');
    await image.waitFor();
    await expect.poll(() => image.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBe(120);
    const src = (await image.getAttribute('src')) ?? '';
    expect(src.startsWith(`${origin}/uploads/`)).toBe(true);
    await ana.page.locator('.message img.preview').waitFor();
    await ana.page.waitForTimeout(300);
    console.log('screenshot:', await screenshot(ana.page, 'chat.png'));
    await screenshot(ben.page, 'chat-other-user.png');
  });

  step('the dashboard shows values published during the test', async () => {
    const { signUp: publisher } = await graphql<{ signUp: { token: string } }>(
      'mutation($input: SignUpInput!) { signUp(input: $input) { token } }',
      { input: { email: PUBLISHER, name: 'Publisher', password: 'correct horse battery' } },
    );
    await ana.page.goto('/dashboard?keys=app.e2e.orders,app.e2e.price');
    await ana.page.locator('[data-key="app.e2e.orders"]').waitFor();
    // Let the subscription start before publishing (batches carry only changes).
    await ana.page.waitForTimeout(1000);
    for (let i = 1; i <= 12; i++) {
      await graphql(
        'mutation($input: [MetricUpdateInput!]!) { publishMetrics(input: $input) }',
        { input: [{ key: 'app.e2e.orders', value: 1, kind: 'COUNTER' }, { key: 'app.e2e.price', value: 100 + i * (i % 3) }] },
        publisher.token,
      );
      await new Promise((r) => setTimeout(r, 150));
    }
    await expect.poll(() => ana.page.getByTestId('value-app.e2e.orders').textContent(), { timeout: 10_000 }).toBe('12');
    await expect.poll(() => ana.page.getByTestId('value-app.e2e.price').textContent(), { timeout: 10_000 }).toBe('100');
    // uPlot drew the series on its canvas.
    expect(await ana.page.locator('[data-key="app.e2e.price"] canvas').count()).toBe(1);
    await ana.page.waitForTimeout(500);
    console.log('screenshot:', await screenshot(ana.page, 'dashboard.png'));
    // The CSP (own scripts only, no inline styles or scripts) refused nothing the app does.
    expect([...ana.logs, ...ben.logs].filter((l) => /Content Security Policy/i.test(l))).toEqual([]);
  });
  step('room list unread counts, notifications, scrolling back through history, presence going offline', async () => {
    const session = async (page: Page) => JSON.parse((await page.evaluate(() => localStorage.getItem('rt.session'))) ?? '{}') as { token: string; user: { id: string } };
    const anaSession = await session(ana.page);
    const benSession = await session(ben.page);
    const { createRoom } = await graphql<{ createRoom: { id: string } }>(
      'mutation($input: CreateRoomInput!) { createRoom(input: $input) { id } }',
      { input: { name: 'History', memberIds: [benSession.user.id] } },
      anaSession.token,
    );
    for (let i = 1; i <= 40; i++) {
      await graphql(
        'mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }',
        { input: { roomId: createRoom.id, body: `history ${i}`, clientId: `history-${i}` } },
        anaSession.token,
      );
    }

    await ben.page.goto('/');
    const row = ben.page.locator(`.room-row[data-room-id="${createRoom.id}"]`);
    await expect.poll(() => row.getByTestId('unread-count').textContent()).toBe('40');
    await expect.poll(() => row.locator('.presence').getAttribute('data-presence')).toBe('online');
    // Being added to a room is a notification.
    await ben.page.getByTestId('notification-badge').waitFor();
    await ben.page.getByRole('link', { name: /Notifications/ }).click();
    await expect.poll(() => ben.page.locator('.notification-list li.unread').count()).toBeGreaterThan(0);

    await ben.page.goto(`/rooms/${createRoom.id}`);
    await expect.poll(() => bodies(ben.page)).toHaveLength(30);
    expect((await bodies(ben.page))[0]).toBe('history 11');
    // Scrolling to the top loads the older page, keeping the order.
    await ben.page.getByTestId('messages').evaluate((el) => el.scrollTo({ top: 0 }));
    await expect.poll(() => bodies(ben.page)).toHaveLength(40);
    expect(await bodies(ben.page)).toEqual(Array.from({ length: 40 }, (_, i) => `history ${i + 1}`));

    // Ana closes her window: her dot turns grey for Ben.
    const anaDot = ben.page.locator(`.room-header .presence[data-user="${anaSession.user.id}"]`);
    await expect.poll(() => anaDot.getAttribute('data-presence')).toBe('online');
    await ana.context.close();
    await expect.poll(() => anaDot.getAttribute('data-presence'), { timeout: 20_000 }).toBe('offline');
  });
});
