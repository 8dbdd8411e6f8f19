import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importJWK, jwtVerify } from 'jose';
import { collect, errorCode, gql, http, signUp, sleep, until, wsClient, type TestUser } from './helpers/client.ts';
import { postgresAvailable } from './helpers/postgres.ts';
import { freePort } from './helpers/processes.ts';
import { browserKeys, decryptPush, startTestPushService, type TestPushService } from './helpers/push-endpoint.ts';
import { startTestServer, type Backend, type TestServer } from './helpers/server.ts';
import { addresses, startTestSmtp, type TestSmtp } from './helpers/smtp.ts';

const pgUp = await postgresAvailable();

const CREATE_ROOM = `mutation ($i: CreateRoomInput!) { createRoom(input: $i) { id } }`;
const SEND = `mutation ($i: SendMessageInput!) { sendMessage(input: $i) { id seq } }`;
const NOTIFICATION_FIELDS = `id kind title body roomId roomName messageId messageSeq read readAt createdAt actor { name }`;
const LIST = `query ($first: Int, $after: String) { unreadNotificationCount notifications(first: $first, after: $after) { edges { cursor node { ${NOTIFICATION_FIELDS} } } pageInfo { hasNextPage endCursor } } }`;
const ADDED = `subscription { notificationAdded { ${NOTIFICATION_FIELDS} } }`;
const MARK = `mutation ($id: ID!) { markNotificationRead(id: $id) { id read readAt } }`;
const MARK_ALL = `mutation { markAllNotificationsRead }`;
const PREFS = `mutation ($i: UpdateNotificationPreferencesInput!) { updateNotificationPreferences(input: $i) { push email digestDelaySeconds usesDefaultDelay pushAvailable emailAvailable } }`;
const REGISTER = `mutation ($i: RegisterPushSubscriptionInput!) { registerPushSubscription(input: $i) { id endpoint } }`;
const UNREGISTER = `mutation ($e: String!) { unregisterPushSubscription(endpoint: $e) }`;

let named = 0;
/** Signs up a user whose display name may hold spaces (the shared helper derives the email from the name). */
async function signUpNamed(url: string, name: string): Promise<TestUser> {
  const email = `user-${process.pid}-${Date.now()}-${named++}@example.test`;
  const data = await gql(url, `mutation ($input: SignUpInput!) { signUp(input: $input) { token user { id } } }`, {
    input: { email, name, password: 'correct horse battery' },
  });
  return { id: data.signUp.user.id, name, email, token: data.signUp.token };
}

/** Notifications are created after the mutation answers; poll until they are there. */
async function notificationsOf(t: TestServer, user: TestUser, count: number) {
  let data: any;
  const deadline = Date.now() + 5000;
  while (true) {
    data = await gql(t.url, LIST, { first: 50 }, user.token);
    if (data.notifications.edges.length >= count || Date.now() > deadline) break;
    await sleep(50);
  }
  return data as { unreadNotificationCount: number; notifications: { edges: { cursor: string; node: any }[] } };
}

describe.each<Backend>(['pglite', 'postgres'])('notifications over %s', (backend) => {
  const skip = backend === 'postgres' && !pgUp;
  let t: TestServer;
  let smtp: TestSmtp;
  let pushService: TestPushService;
  const leftovers: { dispose(): unknown }[] = [];

  beforeAll(async () => {
    if (skip) return;
    smtp = await startTestSmtp();
    pushService = await startTestPushService();
    t = await startTestServer(backend, {
      env: { SMTP_URL: smtp.url, EMAIL_DIGEST_DELAY: '2s', EMAIL_FROM: 'Chat <chat@example.test>', PRESENCE_GRACE_MS: '100' },
    });
  });
  afterAll(async () => {
    for (const c of leftovers) await c.dispose();
    await t?.dispose();
    await smtp?.close();
    await pushService?.close();
  });

  it.skipIf(skip)('creates in-app notifications for mentions, direct messages and being added; lists, streams and marks them read', async () => {
    const [ana, ben, cat] = await Promise.all([signUp(t.url, 'Ana'), signUpNamed(t.url, 'Ben Stone'), signUp(t.url, 'Cat')]);
    // No email for these users: this case is about the in-app channel.
    for (const u of [ben, cat]) await gql(t.url, PREFS, { i: { email: false } }, u.token);

    const benWs = wsClient(t.wsUrl, ben.token);
    leftovers.push(benWs);
    const live = collect(benWs, ADDED);
    await sleep(150);

    const general = (await gql(t.url, CREATE_ROOM, { i: { name: 'General', memberIds: [ben.id, cat.id] } }, ana.token)).createRoom.id;
    await gql(t.url, SEND, { i: { roomId: general, body: 'hello @ben, see this', clientId: 'n-1' } }, ana.token);
    await gql(t.url, SEND, { i: { roomId: general, body: 'no mention here, mail a@cat.example', clientId: 'n-2' } }, ana.token);
    await gql(t.url, SEND, { i: { roomId: general, body: '@ana talking to myself', clientId: 'n-3' } }, ana.token);
    const direct = (await gql(t.url, CREATE_ROOM, { i: { name: 'Ana & Ben', memberIds: [ben.id] } }, ana.token)).createRoom.id;
    await gql(t.url, SEND, { i: { roomId: direct, body: 'psst', clientId: 'n-4' } }, ana.token);

    await live.waitFor(4);
    const kinds = live.values.map((v) => v.notificationAdded.kind);
    expect(kinds.sort()).toEqual(['ADDED_TO_ROOM', 'ADDED_TO_ROOM', 'DIRECT_MESSAGE', 'MENTION']);
    const mention = live.values.find((v) => v.notificationAdded.kind === 'MENTION').notificationAdded;
    expect(mention).toMatchObject({ title: 'Ana mentioned you in General', body: 'hello @ben, see this', roomId: general, messageSeq: 1, read: false, actor: { name: 'Ana' } });
    const dm = live.values.find((v) => v.notificationAdded.kind === 'DIRECT_MESSAGE').notificationAdded;
    expect(dm).toMatchObject({ title: 'Ana sent you a message', body: 'psst', roomId: direct });

    // Stored, newest first, paged with first/after.
    const all = await notificationsOf(t, ben, 4);
    expect(all.unreadNotificationCount).toBe(4);
    expect(all.notifications.edges.map((e) => e.node.kind)).toEqual(['DIRECT_MESSAGE', 'ADDED_TO_ROOM', 'MENTION', 'ADDED_TO_ROOM']);
    const page1 = await gql(t.url, LIST, { first: 3 }, ben.token);
    expect(page1.notifications.pageInfo.hasNextPage).toBe(true);
    const page2 = await gql(t.url, LIST, { first: 3, after: page1.notifications.pageInfo.endCursor }, ben.token);
    expect(page2.notifications.edges.map((e: any) => e.node.id)).toEqual([all.notifications.edges[3]!.node.id]);
    expect(page2.notifications.pageInfo.hasNextPage).toBe(false);

    // Cat: added to General only; not mentioned by an email address, nobody by the sender's self-mention.
    const catList = await notificationsOf(t, cat, 1);
    await sleep(200);
    expect((await gql(t.url, LIST, {}, cat.token)).notifications.edges.map((e: any) => e.node.kind)).toEqual(['ADDED_TO_ROOM']);
    expect(catList.notifications.edges[0]!.node.title).toBe('Ana added you to General');
    expect((await notificationsOf(t, ana, 0)).notifications.edges).toEqual([]);

    // Mark one read, then all; others cannot touch it.
    const foreign = await http(t.url, MARK, { id: mention.id }, cat.token);
    expect(errorCode(foreign.body)).toBe('NOT_FOUND');
    const marked = await gql(t.url, MARK, { id: mention.id }, ben.token);
    expect(marked.markNotificationRead).toMatchObject({ id: mention.id, read: true });
    expect((await gql(t.url, LIST, {}, ben.token)).unreadNotificationCount).toBe(3);
    expect((await gql(t.url, MARK_ALL, {}, ben.token)).markAllNotificationsRead).toBe(3);
    expect((await gql(t.url, LIST, {}, ben.token)).unreadNotificationCount).toBe(0);

    // Reading a room past a message reads its notification too.
    await gql(t.url, SEND, { i: { roomId: general, body: 'and @cat too', clientId: 'n-5' } }, ana.token);
    const catMention = (await notificationsOf(t, cat, 2)).notifications.edges[0]!.node;
    expect(catMention).toMatchObject({ kind: 'MENTION', read: false });
    await gql(t.url, `mutation ($r: ID!, $m: ID!) { markRead(roomId: $r, messageId: $m) { lastReadSeq } }`, { r: general, m: catMention.messageId }, cat.token);
    const deadline = Date.now() + 3000;
    while ((await gql(t.url, LIST, {}, cat.token)).unreadNotificationCount !== 1 && Date.now() < deadline) await sleep(50);
    expect((await gql(t.url, LIST, {}, cat.token)).unreadNotificationCount).toBe(1); // the ADDED_TO_ROOM one stays unread
    live.dispose();
  });

  it.skipIf(skip)('emails one digest per user with the unread mentions and direct messages, and none for what was read', async () => {
    const [dora, finn, gus] = await Promise.all([signUp(t.url, 'Dora'), signUp(t.url, 'Finn'), signUp(t.url, 'Gus')]);
    const team = (await gql(t.url, CREATE_ROOM, { i: { name: 'Team', memberIds: [finn.id, gus.id] } }, dora.token)).createRoom.id;
    const pair = (await gql(t.url, CREATE_ROOM, { i: { name: 'Dora & Finn', memberIds: [finn.id] } }, dora.token)).createRoom.id;
    const mailsBefore = smtp.mails.length;
    const sentAt = Date.now();
    // Within one digest tick: these all go out together.
    await gql(t.url, SEND, { i: { roomId: team, body: '@finn first point', clientId: 'd-1' } }, dora.token);
    await gql(t.url, SEND, { i: { roomId: team, body: 'just chatting, nobody mentioned', clientId: 'd-2' } }, dora.token);
    await gql(t.url, SEND, { i: { roomId: pair, body: 'a private word', clientId: 'd-3' } }, dora.token);
    await gql(t.url, SEND, { i: { roomId: team, body: '@finn @gus second point', clientId: 'd-4' } }, dora.token);
    // Gus reads his mention at once: it must never be emailed.
    const gusMention = (await notificationsOf(t, gus, 2)).notifications.edges.find((e) => e.node.kind === 'MENTION')!.node;
    await gql(t.url, MARK, { id: gusMention.id }, gus.token);

    await until(() => smtp.mails.length > mailsBefore, 10_000, () => 'the digest email');
    const firstMailAt = Date.now();
    const mail = smtp.mails[mailsBefore]!;
    expect(firstMailAt - sentAt).toBeGreaterThanOrEqual(1500); // not before the 2 s delay
    expect(addresses(mail.to)).toEqual([finn.email]);
    expect(addresses(mail.from)).toEqual(['chat@example.test']);
    expect(mail.subject).toBe('3 unread notifications');
    const text = mail.text ?? '';
    expect(text).toContain('Hi Finn,');
    expect(text).toContain('Dora mentioned you in Team');
    expect(text).toContain('"@finn first point"');
    expect(text).toContain('"@finn @gus second point"');
    expect(text).toContain('Dora sent you a message');
    expect(text).toContain('"a private word"');
    expect(text).not.toContain('just chatting');
    expect(text).not.toContain('added you'); // being added is not important enough for email

    // Never an email per message: two more mentions right after the digest wait for the next window, together.
    await gql(t.url, SEND, { i: { roomId: team, body: '@finn third', clientId: 'd-5' } }, dora.token);
    await gql(t.url, SEND, { i: { roomId: team, body: '@finn fourth', clientId: 'd-6' } }, dora.token);
    await until(() => smtp.mails.length > mailsBefore + 1, 10_000, () => 'the second digest');
    const second = smtp.mails[mailsBefore + 1]!;
    expect(addresses(second.to)).toEqual([finn.email]);
    expect(second.subject).toBe('2 unread notifications');
    expect(second.text).toContain('"@finn third"');
    expect(second.text).toContain('"@finn fourth"');
    expect(second.text).not.toContain('first point'); // already mailed

    await sleep(2500); // past another window: nothing else is due
    const mailed = smtp.mails.slice(mailsBefore).flatMap((m) => addresses(m.to));
    expect(mailed).toEqual([finn.email, finn.email]);
    expect(mailed).not.toContain(gus.email);
  });

  it.skipIf(skip)('honours email and push preferences', async () => {
    const [hal, ivy] = await Promise.all([signUp(t.url, 'Hal'), signUp(t.url, 'Ivy')]);
    const prefs = await gql(t.url, PREFS, { i: { email: false, push: false, digestDelaySeconds: 600 } }, ivy.token);
    expect(prefs.updateNotificationPreferences).toEqual({ push: false, email: false, digestDelaySeconds: 600, usesDefaultDelay: false, pushAvailable: true, emailAvailable: true });
    const reset = await gql(t.url, PREFS, { i: { digestDelaySeconds: null } }, ivy.token);
    expect(reset.updateNotificationPreferences).toMatchObject({ digestDelaySeconds: 2, usesDefaultDelay: true, email: false });
    const bad = await http(t.url, PREFS, { i: { digestDelaySeconds: 5 } }, ivy.token);
    expect(errorCode(bad.body)).toBe('BAD_USER_INPUT');

    const keys = browserKeys();
    await gql(t.url, REGISTER, { i: { endpoint: `${pushService.origin}/push/ivy`, keys: keys.json } }, ivy.token);
    const mailsBefore = smtp.mails.length;
    const room = (await gql(t.url, CREATE_ROOM, { i: { name: 'Hal & Ivy', memberIds: [ivy.id] } }, hal.token)).createRoom.id;
    await gql(t.url, SEND, { i: { roomId: room, body: 'unread on purpose', clientId: 'p-1' } }, hal.token);
    await notificationsOf(t, ivy, 2);
    await sleep(3000);
    expect(pushService.requests.filter((r) => r.path === '/push/ivy')).toEqual([]);
    expect(smtp.mails.slice(mailsBefore).flatMap((m) => addresses(m.to))).not.toContain(ivy.email);
  });

  it.skipIf(skip)('sends encrypted Web Push to offline users, deletes subscriptions answered 410, and skips online users', async () => {
    const [jo, kim] = await Promise.all([signUp(t.url, 'Jo'), signUp(t.url, 'Kim')]);
    const vapidKey = (await gql(t.url, `{ webPushPublicKey }`)).webPushPublicKey as string;
    expect(Buffer.from(vapidKey, 'base64url')).toHaveLength(65);

    const keys = browserKeys();
    const goneKeys = browserKeys();
    const endpoint = `${pushService.origin}/push/kim-${backend}`;
    const goneEndpoint = `${pushService.origin}/push/kim-old-${backend}`;
    pushService.answer(`/push/kim-old-${backend}`, 410);
    await gql(t.url, REGISTER, { i: { endpoint, keys: keys.json } }, kim.token);
    await gql(t.url, REGISTER, { i: { endpoint: goneEndpoint, keys: goneKeys.json } }, kim.token);
    for (const input of [
      { endpoint: 'not a url', keys: keys.json },
      { endpoint: 'ftp://push.example/x', keys: keys.json },
      { endpoint, keys: { p256dh: keys.json.p256dh, auth: 'c2hvcnQ' } },
      { endpoint, keys: { p256dh: keys.json.auth, auth: keys.json.auth } },
    ]) {
      const res = await http(t.url, REGISTER, { i: input }, kim.token);
      expect(errorCode(res.body), JSON.stringify(input)).toBe('BAD_USER_INPUT');
    }

    const room = (await gql(t.url, CREATE_ROOM, { i: { name: 'Jo & Kim', memberIds: [kim.id] } }, jo.token)).createRoom.id;
    await gql(t.url, SEND, { i: { roomId: room, body: 'are you there @kim?', clientId: 'w-1' } }, jo.token);

    const mine = () => pushService.requests.filter((r) => r.path === `/push/kim-${backend}`);
    await until(() => mine().length >= 2, 10_000, () => `push requests: ${pushService.requests.map((r) => r.path).join(',')}`);
    const payloads = mine().map((r) => JSON.parse(decryptPush(r.body, keys)));
    const byKind = Object.fromEntries(payloads.map((p) => [p.notification.kind, p]));
    expect(byKind.ADDED_TO_ROOM.notification).toMatchObject({ title: 'Jo added you to Jo & Kim', roomId: room });
    expect(byKind.MENTION.notification).toMatchObject({ title: 'Jo mentioned you in Jo & Kim', body: 'are you there @kim?', roomId: room });
    expect(byKind.MENTION.unreadCount).toBe(2);

    // A real Web Push request: aes128gcm, a TTL, urgency, and a VAPID JWT signed by the server's key for this origin.
    const request = mine().find((r) => JSON.parse(decryptPush(r.body, keys)).notification.kind === 'MENTION')!;
    expect(request.headers['content-encoding']).toBe('aes128gcm');
    expect(Number(request.headers.ttl)).toBeGreaterThan(0);
    expect(request.headers.urgency).toBe('high');
    const auth = /^vapid t=([^,]+), k=(.+)$/.exec(String(request.headers.authorization));
    expect(auth?.[2]).toBe(vapidKey);
    const point = Buffer.from(vapidKey, 'base64url');
    const jwk = { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') };
    const { payload } = await jwtVerify(auth![1]!, await importJWK(jwk, 'ES256'));
    expect(payload.aud).toBe(pushService.origin);
    expect(payload.sub).toMatch(/^mailto:/);
    expect(() => decryptPush(request.body, goneKeys)).toThrow(); // only the subscription's keys open it

    // The push service said 410 for the old browser: that subscription is gone, the live one stays.
    await until(() => pushService.requests.some((r) => r.path === `/push/kim-old-${backend}`), 5000);
    const remaining = async () => (await t.server.services.db.pushSubscription.findMany({ where: { userId: kim.id } })).map((s) => s.endpoint);
    const deadline = Date.now() + 5000;
    while ((await remaining()).length !== 1 && Date.now() < deadline) await sleep(50);
    expect(await remaining()).toEqual([endpoint]);

    // Online users get the notification in the app, not by push.
    const kimWs = wsClient(t.wsUrl, kim.token);
    leftovers.push(kimWs);
    const live = collect(kimWs, ADDED);
    await sleep(200);
    const pushedBefore = mine().length;
    await gql(t.url, SEND, { i: { roomId: room, body: 'now you are here', clientId: 'w-2' } }, jo.token);
    await live.waitFor(1);
    await sleep(500);
    expect(mine().length).toBe(pushedBefore);
    live.dispose();
    await kimWs.dispose();

    expect((await gql(t.url, UNREGISTER, { e: endpoint }, kim.token)).unregisterPushSubscription).toBe(true);
    expect((await gql(t.url, UNREGISTER, { e: endpoint }, kim.token)).unregisterPushSubscription).toBe(false);
  });

  it.skipIf(skip)('retries a push that failed on the network with backoff, without crashing', async () => {
    const [lu, max] = await Promise.all([signUp(t.url, 'Lu'), signUp(t.url, 'Max')]);
    const port = await freePort(); // nothing listens here yet: connection refused
    const keys = browserKeys();
    await gql(t.url, REGISTER, { i: { endpoint: `http://127.0.0.1:${port}/push/max`, keys: keys.json } }, max.token);
    const failedAt = Date.now();
    await gql(t.url, CREATE_ROOM, { i: { name: 'Retry', memberIds: [max.id] } }, lu.token);
    await notificationsOf(t, max, 1);
    await sleep(300);
    // The push service comes back; the retry (1 s, then 2 s, ...) reaches it.
    const late = await startTestPushService(port);
    try {
      await until(() => late.requests.length >= 1, 10_000, () => 'the retried push');
      expect(late.requests[0]!.at - failedAt).toBeGreaterThanOrEqual(800);
      expect(JSON.parse(decryptPush(late.requests[0]!.body, keys)).notification.kind).toBe('ADDED_TO_ROOM');
      expect((await gql(t.url, `{ me { id } }`, {}, max.token)).me.id).toBe(max.id); // the server is fine
    } finally {
      await late.close();
    }
  });
});
