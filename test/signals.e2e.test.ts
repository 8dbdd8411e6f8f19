import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, errorCode, gql, http, signUp, sleep, until, wsClient, type TestUser } from './helpers/client.ts';
import { postgresAvailable } from './helpers/postgres.ts';
import { startTestServer, type Backend, type TestServer } from './helpers/server.ts';

const pgUp = await postgresAvailable();

const SEND = `mutation ($input: SendMessageInput!) { sendMessage(input: $input) { id seq } }`;
const SET_TYPING = `mutation ($roomId: ID!, $on: Boolean!) { setTyping(roomId: $roomId, isTyping: $on) }`;
const TYPING = `subscription ($roomId: ID!) { typing(roomId: $roomId) { roomId users { name } } }`;
const MARK = `mutation ($roomId: ID!, $messageId: ID!) { markRead(roomId: $roomId, messageId: $messageId) { lastReadSeq user { name } } }`;
const RECEIPTS = `subscription ($roomId: ID!) { readReceipts(roomId: $roomId) { roomId lastReadSeq readAt user { name } } }`;
const PRESENCE = `subscription { presenceChanged { status lastSeenAt user { name status } } }`;
const ROOM_STATE = `query ($id: ID!) { room(id: $id) { unreadCount lastSeq readReceipts { lastReadSeq user { name } } messages(last: 10) { edges { node { seq readCount } } } } }`;

const names = (state: { typing: { users: { name: string }[] } }) => state.typing.users.map((u) => u.name);

describe.each<Backend>(['pglite', 'postgres'])('live chat signals over %s', (backend) => {
  const skip = backend === 'postgres' && !pgUp;
  let t: TestServer;
  let dataDir: string;
  let ana: TestUser;
  let ben: TestUser;
  let eve: TestUser;
  let roomId: string;
  const leftovers: { dispose(): unknown }[] = [];

  async function start(scratch?: TestServer['scratch']) {
    t = await startTestServer(backend, { dataDir, scratch, env: { TYPING_TTL_MS: '1500', PRESENCE_GRACE_MS: '600' } });
  }

  beforeAll(async () => {
    if (skip) return;
    dataDir = await mkdtemp(join(tmpdir(), 'rt-signals-'));
    await start();
    [ana, ben, eve] = await Promise.all([signUp(t.url, 'Ana'), signUp(t.url, 'Ben'), signUp(t.url, 'Eve')]);
    const room = await gql(t.url, `mutation ($i: CreateRoomInput!) { createRoom(input: $i) { id } }`, { i: { name: 'Signals', memberIds: [ben.id] } }, ana.token);
    roomId = room.createRoom.id;
  });
  afterAll(async () => {
    for (const c of leftovers) await c.dispose();
    await t?.dispose();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  describe('typing', () => {
    it.skipIf(skip)('shows a typist, and drops one who stops renewing', async () => {
      const benWs = wsClient(t.wsUrl, ben.token);
      leftovers.push(benWs);
      const seen = collect(benWs, TYPING, { roomId });
      await sleep(200);
      await gql(t.url, SET_TYPING, { roomId, on: true }, ana.token);
      await seen.waitFor(1);
      expect(names(seen.values[0])).toEqual(['Ana']);
      const started = Date.now();
      await seen.waitFor(2, 5000);
      expect(names(seen.values[1])).toEqual([]);
      // Expired by the server after the 1.5 s TTL, checked about every 0.75 s.
      expect(Date.now() - started).toBeGreaterThan(1000);
      seen.dispose();
    });

    it.skipIf(skip)('clears the typist as soon as they send', async () => {
      const benWs = wsClient(t.wsUrl, ben.token);
      leftovers.push(benWs);
      await sleep(1100); // let Ana's emission interval from the previous case pass
      const seen = collect(benWs, TYPING, { roomId });
      await sleep(200);
      await gql(t.url, SET_TYPING, { roomId, on: true }, ana.token);
      await seen.waitFor(1);
      await sleep(1000);
      const sentAt = Date.now();
      await gql(t.url, SEND, { input: { roomId, body: 'done typing', clientId: `typing-send-${backend}` } }, ana.token);
      await seen.waitFor(2, 3000);
      expect(names(seen.values[1])).toEqual([]);
      expect(Date.now() - sentAt).toBeLessThan(1000); // not the TTL expiring it
      seen.dispose();
    });

    it.skipIf(skip)('does not flood subscribers: repeated renewals and toggles emit at most once a second per typist', async () => {
      const benWs = wsClient(t.wsUrl, ben.token);
      leftovers.push(benWs);
      await sleep(1100);
      const seen = collect(benWs, TYPING, { roomId });
      await sleep(200);
      for (let i = 0; i < 20; i++) await gql(t.url, SET_TYPING, { roomId, on: true }, ana.token);
      await seen.waitFor(1);
      await sleep(300);
      expect(seen.values).toHaveLength(1);
      // Rapid toggling within a second is merged into one emission carrying the final state.
      for (let i = 0; i < 6; i++) await gql(t.url, SET_TYPING, { roomId, on: i % 2 === 1 }, ana.token);
      await gql(t.url, SET_TYPING, { roomId, on: false }, ana.token);
      await sleep(1500);
      expect(seen.values.length).toBeLessThanOrEqual(2);
      expect(names(seen.values.at(-1)!)).toEqual([]);
      seen.dispose();
    });

    it.skipIf(skip)('refuses non-members', async () => {
      const res = await http(t.url, SET_TYPING, { roomId, on: true }, eve.token);
      expect(errorCode(res.body)).toBe('FORBIDDEN');
      const eveWs = wsClient(t.wsUrl, eve.token);
      leftovers.push(eveWs);
      const sub = collect(eveWs, TYPING, { roomId });
      await sub.ended();
      expect(JSON.stringify(sub.errors)).toContain('FORBIDDEN');
    });
  });

  describe('read receipts', () => {
    let receiptRoom: string;
    let ids: string[];

    it.skipIf(skip)('moves a mark forward only, and streams it to other members', async () => {
      const room = await gql(t.url, `mutation ($i: CreateRoomInput!) { createRoom(input: $i) { id } }`, { i: { name: 'Reads', memberIds: [ben.id] } }, ana.token);
      receiptRoom = room.createRoom.id;
      ids = [];
      for (let i = 1; i <= 3; i++) {
        const m = await gql(t.url, SEND, { input: { roomId: receiptRoom, body: `r${i}`, clientId: `r-${i}` } }, ana.token);
        ids.push(m.sendMessage.id);
      }
      const anaWs = wsClient(t.wsUrl, ana.token);
      leftovers.push(anaWs);
      const receipts = collect(anaWs, RECEIPTS, { roomId: receiptRoom });
      await sleep(200);

      const before = await gql(t.url, ROOM_STATE, { id: receiptRoom }, ben.token);
      expect(before.room.unreadCount).toBe(3);

      const marked = await gql(t.url, MARK, { roomId: receiptRoom, messageId: ids[1] }, ben.token);
      expect(marked.markRead).toEqual({ lastReadSeq: 2, user: { name: 'Ben' } });
      const older = await gql(t.url, MARK, { roomId: receiptRoom, messageId: ids[0] }, ben.token);
      expect(older.markRead.lastReadSeq).toBe(2); // never backwards, and not an error
      const again = await gql(t.url, MARK, { roomId: receiptRoom, messageId: ids[1] }, ben.token);
      expect(again.markRead.lastReadSeq).toBe(2);

      await receipts.waitFor(1);
      await sleep(200);
      expect(receipts.values.map((r) => [r.readReceipts.user.name, r.readReceipts.lastReadSeq])).toEqual([['Ben', 2]]);
      expect(receipts.values[0].readReceipts.readAt).toMatch(/^\d{4}-\d\d-\d\dT/);

      const after = await gql(t.url, ROOM_STATE, { id: receiptRoom }, ben.token);
      expect(after.room.unreadCount).toBe(1);
      // Ana (the sender) sees who read what: message 1 and 2 read by Ben, 3 not yet.
      const asAna = await gql(t.url, ROOM_STATE, { id: receiptRoom }, ana.token);
      expect(asAna.room.messages.edges.map((e: any) => [e.node.seq, e.node.readCount])).toEqual([
        [1, 1],
        [2, 1],
        [3, 0],
      ]);
      expect(asAna.room.unreadCount).toBe(0); // her own messages are not unread to her
      receipts.dispose();
    });

    it.skipIf(skip)('rejects a message from another room and non-members', async () => {
      const wrongRoom = await http(t.url, MARK, { roomId, messageId: ids[0] }, ben.token);
      expect(errorCode(wrongRoom.body)).toBe('NOT_FOUND');
      const outsider = await http(t.url, MARK, { roomId: receiptRoom, messageId: ids[0] }, eve.token);
      expect(errorCode(outsider.body)).toBe('FORBIDDEN');
    });

    it.skipIf(skip)('keeps unread counts and read counts right after a restart', async () => {
      await t.dispose({ keep: true });
      await start(t.scratch);
      const after = await gql(t.url, ROOM_STATE, { id: receiptRoom }, ben.token);
      expect(after.room.unreadCount).toBe(1);
      expect(after.room.readReceipts.map((r: any) => [r.user.name, r.lastReadSeq])).toEqual([
        ['Ana', 3],
        ['Ben', 2],
      ]);
      expect(after.room.messages.edges.map((e: any) => e.node.readCount)).toEqual([1, 1, 0]);
    });
  });

  describe('presence', () => {
    it.skipIf(skip)('two tabs make one ONLINE event; closing both makes one OFFLINE after the grace period', async () => {
      const benWs = wsClient(t.wsUrl, ben.token);
      leftovers.push(benWs);
      const seen = collect(benWs, PRESENCE);
      await sleep(300);

      const tab1 = wsClient(t.wsUrl, ana.token);
      const tab2 = wsClient(t.wsUrl, ana.token);
      await Promise.all([tab1, tab2].map((c) => new Promise((r) => c.on('connected', r))));
      await seen.waitFor(1);
      const status = await gql(t.url, `query ($id: ID!) { room(id: $id) { members { name status } } }`, { id: roomId }, ben.token);
      expect(status.room.members.find((m: any) => m.name === 'Ana').status).toBe('ONLINE');

      await tab1.dispose();
      await sleep(900); // past the grace period: the second tab keeps her online
      expect(seen.values).toHaveLength(1);
      const closedAt = Date.now();
      await tab2.dispose();
      await seen.waitFor(2, 5000);
      expect(Date.now() - closedAt).toBeGreaterThanOrEqual(500);

      expect(seen.values.map((v) => [v.presenceChanged.user.name, v.presenceChanged.status])).toEqual([
        ['Ana', 'ONLINE'],
        ['Ana', 'OFFLINE'],
      ]);
      const lastSeenAt = seen.values[1].presenceChanged.lastSeenAt;
      expect(Date.parse(lastSeenAt)).toBeGreaterThan(closedAt - 1000);
      const me = await gql(t.url, `query ($id: ID!) { room(id: $id) { members { name status lastSeenAt } } }`, { id: roomId }, ben.token);
      expect(me.room.members.find((m: any) => m.name === 'Ana')).toEqual({ name: 'Ana', status: 'OFFLINE', lastSeenAt });
      seen.dispose();
    });

    it.skipIf(skip)('a reload within the grace period does not flap', async () => {
      const benWs = wsClient(t.wsUrl, ben.token);
      leftovers.push(benWs);
      const seen = collect(benWs, PRESENCE);
      await sleep(300);
      const first = wsClient(t.wsUrl, ana.token);
      await new Promise((r) => first.on('connected', r));
      await seen.waitFor(1);
      await first.dispose();
      await sleep(150);
      const reloaded = wsClient(t.wsUrl, ana.token);
      await new Promise((r) => reloaded.on('connected', r));
      await sleep(1200);
      expect(seen.values.map((v) => v.presenceChanged.status)).toEqual(['ONLINE']);
      await reloaded.dispose();
      await seen.waitFor(2, 5000);
      seen.dispose();
    });

    it.skipIf(skip)('tells only users who share a room', async () => {
      const benWs = wsClient(t.wsUrl, ben.token);
      leftovers.push(benWs);
      const seen = collect(benWs, PRESENCE);
      await sleep(300);
      const eveWs = wsClient(t.wsUrl, eve.token);
      await new Promise((r) => eveWs.on('connected', r));
      const anaWs = wsClient(t.wsUrl, ana.token);
      await new Promise((r) => anaWs.on('connected', r));
      await seen.waitFor(1);
      await sleep(300);
      expect(seen.values.map((v) => v.presenceChanged.user.name)).toEqual(['Ana']);
      await Promise.all([eveWs.dispose(), anaWs.dispose()]);
      await until(() => seen.values.length >= 2, 5000);
      await sleep(900);
      expect(seen.values.map((v) => v.presenceChanged.user.name)).toEqual(['Ana', 'Ana']);
      seen.dispose();
    });
  });
});
