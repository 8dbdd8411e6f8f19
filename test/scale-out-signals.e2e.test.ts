import { randomBytes } from 'node:crypto';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, gql, signUp, sleep, until, wsClient, type TestUser } from './helpers/client.ts';
import { createScratchDatabase, postgresAvailable } from './helpers/postgres.ts';
import { killLeftovers, startApiProcess, type ApiProcess } from './helpers/processes.ts';
import { REDIS_TEST_URL, redisAvailable } from './helpers/redis.ts';

// Both throw in CI when their server is missing, so CI cannot silently skip this file.
const pgUp = await postgresAvailable();
const redisUp = await redisAvailable();

const PRESENCE_TTL_MS = 3000;
const TYPING = `subscription ($roomId: ID!) { typing(roomId: $roomId) { users { name } } }`;
const SET_TYPING = `mutation ($roomId: ID!, $on: Boolean!) { setTyping(roomId: $roomId, isTyping: $on) }`;
const RECEIPTS = `subscription ($roomId: ID!) { readReceipts(roomId: $roomId) { lastReadSeq user { name } } }`;
const PRESENCE = `subscription { presenceChanged { status lastSeenAt user { name } } }`;
const STATUS = `query ($id: ID!) { room(id: $id) { members { name status } } }`;

describe.skipIf(!pgUp || !redisUp)('scale-out: typing, receipts and presence across two processes', () => {
  let scratch: { url: string; drop(): Promise<void> } | undefined;
  let a: ApiProcess;
  let b: ApiProcess;
  let ana: TestUser;
  let ben: TestUser;
  let roomId: string;
  const clients: Client[] = [];
  const client = (wsUrl: string, token: string) => {
    const c = wsClient(wsUrl, token, { onNonLazyError: () => {} });
    clients.push(c);
    return c;
  };
  const connected = (c: Client) => new Promise((r) => c.on('connected', r));
  const status = async (url: string, token: string, name: string) =>
    (await gql(url, STATUS, { id: roomId }, token)).room.members.find((m: { name: string }) => m.name === name).status;

  beforeAll(async () => {
    scratch = await createScratchDatabase('scaleout_signals');
    const env = {
      DATABASE_URL: scratch.url,
      REDIS_URL: REDIS_TEST_URL,
      // A prefix of its own keeps this cluster's presence apart from other runs on the same Redis.
      REDIS_PREFIX: `t${randomBytes(4).toString('hex')}:`,
      JWT_SECRET: randomBytes(32).toString('hex'),
      PRESENCE_TTL_MS: String(PRESENCE_TTL_MS),
      PRESENCE_GRACE_MS: '500',
      TYPING_TTL_MS: '1500',
    };
    [a, b] = await Promise.all([startApiProcess('signals-a', env), startApiProcess('signals-b', env)]);
    ana = await signUp(a.url, 'Ana');
    ben = await signUp(b.url, 'Ben');
    roomId = (await gql(a.url, `mutation ($i: CreateRoomInput!) { createRoom(input: $i) { id } }`, { i: { name: 'Both', memberIds: [ben.id] } }, ana.token))
      .createRoom.id;
  }, 180_000);

  afterAll(async () => {
    for (const c of clients) await c.dispose();
    await a?.dispose();
    await b?.dispose();
    await killLeftovers();
    await scratch?.drop();
  });

  it('typing on one process shows on the other, as one full set, and expires', async () => {
    const anaSees = collect(client(a.wsUrl, ana.token), TYPING, { roomId });
    const benSees = collect(client(b.wsUrl, ben.token), TYPING, { roomId });
    await sleep(300);
    await gql(a.url, SET_TYPING, { roomId, on: true }, ana.token);
    await benSees.waitFor(1);
    expect(benSees.values[0].typing.users.map((u: any) => u.name)).toEqual(['Ana']);
    await gql(b.url, SET_TYPING, { roomId, on: true }, ben.token);
    await until(() => anaSees.values.some((v) => v.typing.users.length === 2), 5000);
    expect(anaSees.values.at(-1).typing.users.map((u: any) => u.name)).toEqual(['Ana', 'Ben']);
    // Nobody renews: both expire (swept by whichever process gets there first).
    await until(() => benSees.values.at(-1)?.typing.users.length === 0, 6000, () => JSON.stringify(benSees.values));
    await until(() => anaSees.values.at(-1)?.typing.users.length === 0, 6000);
  });

  it('a read mark set through one process streams to a member on the other', async () => {
    const sent = await gql(a.url, `mutation ($i: SendMessageInput!) { sendMessage(input: $i) { id seq } }`, { i: { roomId, body: 'read me', clientId: 'read-me' } }, ana.token);
    const receipts = collect(client(a.wsUrl, ana.token), RECEIPTS, { roomId });
    await sleep(300);
    await gql(b.url, `mutation ($r: ID!, $m: ID!) { markRead(roomId: $r, messageId: $m) { lastReadSeq } }`, { r: roomId, m: sent.sendMessage.id }, ben.token);
    await receipts.waitFor(1);
    expect(receipts.values[0].readReceipts).toEqual({ lastReadSeq: sent.sendMessage.seq, user: { name: 'Ben' } });
    const unread = await gql(b.url, `query ($id: ID!) { room(id: $id) { unreadCount } }`, { id: roomId }, ben.token);
    expect(unread.room.unreadCount).toBe(0);
  });

  it('presence is shared, and users of a killed process go offline within the bound', async () => {
    // Cy has never connected; Ben shares a room with him and watches.
    const cy = await signUp(a.url, 'Cy');
    roomId = (await gql(a.url, `mutation ($i: CreateRoomInput!) { createRoom(input: $i) { id } }`, { i: { name: 'Watch', memberIds: [ben.id] } }, cy.token))
      .createRoom.id;
    const benWs = client(b.wsUrl, ben.token);
    const seen = collect(benWs, PRESENCE);
    await connected(benWs);
    await sleep(300);
    const cyOnA = client(a.wsUrl, cy.token);
    await connected(cyOnA);
    await until(() => seen.values.some((v) => v.presenceChanged.status === 'ONLINE'), 5000);
    expect(seen.values.map((v) => [v.presenceChanged.user.name, v.presenceChanged.status])).toEqual([['Cy', 'ONLINE']]);
    // B answers from the shared store, though Cy is connected to A.
    expect(await status(b.url, ben.token, 'Cy')).toBe('ONLINE');
    expect(await status(a.url, cy.token, 'Ben')).toBe('ONLINE');

    // Ana (with her earlier subscriptions on A) and Cy were both connected only to A.
    const cyEvents = () => seen.values.map((v) => v.presenceChanged).filter((e) => e.user.name === 'Cy');
    const killedAt = Date.now();
    await a.kill('SIGKILL');
    await until(() => cyEvents().length >= 2, PRESENCE_TTL_MS * 3, () => `no OFFLINE: ${JSON.stringify(seen.values)}\n${b.output().slice(-2000)}`);
    const offlineAfter = Date.now() - killedAt;
    console.log(`users of a SIGKILLed process reported offline after ${offlineAfter} ms (PRESENCE_TTL_MS=${PRESENCE_TTL_MS})`);
    expect(cyEvents()[1]).toMatchObject({ status: 'OFFLINE', user: { name: 'Cy' } });
    expect(Date.parse(cyEvents()[1]!.lastSeenAt)).toBeGreaterThanOrEqual(killedAt);
    await until(() => seen.values.some((v) => v.presenceChanged.user.name === 'Ana' && v.presenceChanged.status === 'OFFLINE'), 5000);
    expect(offlineAfter).toBeLessThan(PRESENCE_TTL_MS * 2 + 1000);
    expect(await status(b.url, ben.token, 'Cy')).toBe('OFFLINE');

    // His client reconnects to the surviving process: online again, once.
    const cyOnB = client(b.wsUrl, cy.token);
    await connected(cyOnB);
    await until(() => cyEvents().length >= 3, 5000);
    expect(cyEvents()[2]).toMatchObject({ status: 'ONLINE', user: { name: 'Cy' } });
    await sleep(PRESENCE_TTL_MS + 1000); // B's heartbeat keeps his connection from lapsing
    expect(cyEvents()).toHaveLength(3);
    expect(await status(b.url, ben.token, 'Cy')).toBe('ONLINE');
  });
});
