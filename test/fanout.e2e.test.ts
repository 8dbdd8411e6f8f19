import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, gql, signUp, sleep, until, wsClient, type Collected, type TestUser } from './helpers/client.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const SEND = `mutation ($input: SendMessageInput!) { sendMessage(input: $input) { seq } }`;
const PLAIN = `subscription ($roomId: ID!, $afterSeq: Int) { messageAdded(roomId: $roomId, afterSeq: $afterSeq) { seq body sender { name } } }`;
const WITH_EMAIL = `subscription ($roomId: ID!) { messageAdded(roomId: $roomId) { seq body sender { name email } } }`;

describe('shared fan-out of subscription events', () => {
  let t: TestServer;
  let ana: TestUser;
  let ben: TestUser;
  let roomId: string;
  const clients: { dispose(): unknown }[] = [];

  beforeAll(async () => {
    t = await startTestServer('pglite');
    [ana, ben] = await Promise.all([signUp(t.url, 'Ana'), signUp(t.url, 'Ben')]);
    roomId = (await gql(t.url, `mutation ($i: CreateRoomInput!) { createRoom(input: $i) { id } }`, { i: { name: 'Fan', memberIds: [ben.id] } }, ana.token))
      .createRoom.id;
  });
  afterAll(async () => {
    for (const c of clients) await c.dispose();
    await t?.dispose();
  });

  it('executes an event once for many subscribers of the same operation, whatever their afterSeq', async () => {
    const subscribers = [];
    for (let i = 0; i < 10; i++) {
      const ws = wsClient(t.wsUrl, i % 2 ? ana.token : ben.token);
      clients.push(ws);
      // Different afterSeq values still share: it only decides where each starts.
      subscribers.push(collect(ws, PLAIN, i < 5 ? { roomId } : { roomId, afterSeq: 0 }));
    }
    // Live once the room's feed serves all ten.
    await until(() => t.server.fanoutStats().feedSubscribers === 10, 10_000, () => `feed subscribers: ${t.server.fanoutStats().feedSubscribers}`);
    const before = t.server.fanoutStats();
    await gql(t.url, SEND, { input: { roomId, body: 'to all', clientId: 'fan-1' } }, ana.token);
    for (const s of subscribers) await s.waitFor(1);
    const after = t.server.fanoutStats();
    // One execution for all ten (their room's feed executes once per distinct operation).
    expect(after.executions - before.executions).toBe(1);
    for (const s of subscribers) expect(s.values).toEqual([{ messageAdded: { seq: 1, body: 'to all', sender: { name: 'Ana' } } }]);
    for (const s of subscribers) s.dispose();
  });

  it('executes per subscriber when the selection depends on the viewer, so nobody sees another’s view', async () => {
    const anaWs = wsClient(t.wsUrl, ana.token);
    const benWs = wsClient(t.wsUrl, ben.token);
    clients.push(anaWs, benWs);
    const anaSees = collect(anaWs, WITH_EMAIL, { roomId });
    const benSees = collect(benWs, WITH_EMAIL, { roomId });
    await sleep(400);
    const before = t.server.fanoutStats();
    await gql(t.url, SEND, { input: { roomId, body: 'private view', clientId: 'fan-2' } }, ana.token);
    await anaSees.waitFor(1);
    await benSees.waitFor(1);
    // Ana sees her own email; Ben sees null for hers.
    expect(anaSees.values[0].messageAdded.sender.email).toBe(ana.email);
    expect(benSees.values[0].messageAdded.sender.email).toBeNull();
    const after = t.server.fanoutStats();
    expect(after.reuses - before.reuses).toBe(0);
  });

  it('subscribers that join with afterSeq while messages keep coming get each one once, in order', async () => {
    const room = (await gql(t.url, `mutation ($i: CreateRoomInput!) { createRoom(input: $i) { id } }`, { i: { name: 'Busy', memberIds: [ben.id] } }, ana.token))
      .createRoom.id;
    const total = 40;
    const earlyWs = wsClient(t.wsUrl, ana.token);
    clients.push(earlyWs);
    const early = collect(earlyWs, PLAIN, { roomId: room });
    await sleep(300);
    const joiners: { from: number; seen: Collected<{ messageAdded: { seq: number } }> }[] = [];
    for (let n = 1; n <= total; n++) {
      // Sends without waiting for the answer: several messages in flight at
      // once while new subscribers replay from the database and hand over to
      // the room's live feed.
      void gql(t.url, SEND, { input: { roomId: room, body: `m${n}`, clientId: `busy-${n}` } }, n % 2 ? ana.token : ben.token);
      if (n % 5 === 0) {
        const ws = wsClient(t.wsUrl, n % 10 ? ben.token : ana.token);
        clients.push(ws);
        const from = n % 3 === 0 ? 0 : n - 3;
        joiners.push({ from, seen: collect(ws, PLAIN, { roomId: room, afterSeq: from }) });
      }
      await sleep(15);
    }
    const seqs = (values: { messageAdded: { seq: number } }[]) => values.map((v) => v.messageAdded.seq);
    expect(seqs(await early.waitFor(total, 20_000))).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    for (const { from, seen } of joiners) {
      const values = await seen.waitFor(total - from, 20_000);
      expect(seqs(values)).toEqual(Array.from({ length: total - from }, (_, k) => from + k + 1));
      expect(seen.errors).toEqual([]);
    }
    await sleep(300);
    // Nothing more arrives afterwards (no duplicates).
    expect(early.values).toHaveLength(total);
    for (const { from, seen } of joiners) expect(seen.values).toHaveLength(total - from);
  });

  it('still refuses non-members and ends on leave with sharing on', async () => {
    const eve = await signUp(t.url, 'Eve');
    const eveWs = wsClient(t.wsUrl, eve.token);
    clients.push(eveWs);
    const refused = collect(eveWs, PLAIN, { roomId });
    await refused.ended();
    expect(JSON.stringify(refused.errors)).toContain('FORBIDDEN');
  });
});
