import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { indexedDB as fakeIndexedDB } from 'fake-indexeddb';
import { createFileStorage } from '../../web/src/client/file-storage.ts';
import {
  browserStorage,
  ClientDisposedError,
  createMemoryStorage,
  createRealtimeClient,
  type ChatMessage,
  type BacklogTooLarge,
  type ConnectionState,
  type OfflineStorage,
  type RealtimeClient,
} from '../../web/src/client/index.ts';
import { RoomHistoryDocument } from '../../web/src/gql/graphql.ts';
import { collect, gql, signUp, sleep, until, wsClient, type TestUser } from '../helpers/client.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

// vitest sets NODE_ENV=test, and graphcache then never persists its cache to
// storage (it reads process.env.NODE_ENV on every write). The client under test
// must behave as in a browser, so this test process says "development". The
// in-process server is unaffected: its config is passed explicitly (NODE_ENV: 'test').
const originalNodeEnv = process.env.NODE_ENV;
process.env.NODE_ENV = 'development';

// The real schedule (0, 2, 5, 10, 30 s) is unit-tested; here it is scaled down
// so a 5 s outage costs seconds, not minutes.
const FAST = { schedule: [0, 250, 500, 1_000], jitterRatio: 0.1, minJitterMs: 50 };

const CREATE_ROOM = `mutation ($input: CreateRoomInput!) { createRoom(input: $input) { id } }`;
const SEND = `mutation ($input: SendMessageInput!) { sendMessage(input: $input) { seq } }`;
const SUBSCRIBE = `subscription ($roomId: ID!, $afterSeq: Int) { messageAdded(roomId: $roomId, afterSeq: $afterSeq) { seq body clientId } }`;

let t: TestServer;
let proxy: TcpProxy;
let ana: TestUser;
let ben: TestUser;
const cleanup: (() => unknown)[] = [];
// Set by a test to lose a response on its way back (see the replay test).
let tap: ((chunk: Buffer, direction: 'toServer' | 'toClient') => void) | undefined;

beforeAll(async () => {
  // The first test sends 200 messages from one user in a few seconds, above the
  // product's sendMessage limit; rate-limited replays are covered with a fake answer below.
  t = await startTestServer('pglite', { env: { RATE_LIMIT_SEND_MESSAGE: 'off' } });
  proxy = await startTcpProxy(t.url, { tap: (chunk, direction) => tap?.(chunk, direction) });
  [ana, ben] = await Promise.all([signUp(t.url, 'Ana'), signUp(t.url, 'Ben')]);
});

afterEach(async () => {
  tap = undefined;
  proxy.resume();
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

afterAll(async () => {
  await proxy?.close();
  await t?.dispose();
  process.env.NODE_ENV = originalNodeEnv;
});

async function newRoom(): Promise<string> {
  const data = await gql(t.url, CREATE_ROOM, { input: { name: 'Room', memberIds: [ben.id] } }, ana.token);
  return data.createRoom.id;
}

/** A client for `user` that reaches the API only through the proxy. */
function clientFor(user: TestUser, storage: OfflineStorage = createMemoryStorage()): RealtimeClient & { states: ConnectionState[] } {
  const client = createRealtimeClient({
    url: proxy.url,
    wsUrl: proxy.wsUrl,
    getToken: () => user.token,
    storage,
    webSocketImpl: WebSocket,
    reconnect: FAST,
    requestTimeoutMs: 5_000,
  });
  const states: ConnectionState[] = [client.connection.getSnapshot()];
  client.connection.subscribe((s) => states.push(s));
  cleanup.push(() => client.dispose());
  return Object.assign(client, { states });
}

const status = (c: RealtimeClient) => c.connection.getSnapshot().status;

/** Like until(), for conditions that need the database. */
async function eventually(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('Timed out');
    await sleep(25);
  }
}

async function storedMessages(roomId: string) {
  return t.server.services.db.message.findMany({ where: { roomId }, orderBy: { seq: 'asc' }, select: { seq: true, body: true, clientId: true } });
}

describe('realtime client against the real server, through a TCP proxy', () => {
  it('a subscriber cut off for 5 s while 200 messages are sent gets all of them, in order, once', async () => {
    const roomId = await newRoom();
    const benClient = clientFor(ben);
    const seen: ChatMessage[] = [];
    benClient.subscribeMessages(roomId, (m) => seen.push(m), { afterSeq: 0 });
    await until(() => status(benClient) === 'connected');
    await gql(t.url, SEND, { input: { roomId, body: 'before', clientId: 'cut-0' } }, ana.token);
    await until(() => seen.length === 1);

    proxy.pause();
    proxy.cut();
    const outageStarted = Date.now();
    for (let i = 1; i <= 200; i++) {
      await gql(t.url, SEND, { input: { roomId, body: `m${i}`, clientId: `cut-${i}` } }, ana.token);
    }
    await until(() => status(benClient) === 'offline');
    expect(seen).toHaveLength(1);
    await sleep(5_000 - (Date.now() - outageStarted));
    proxy.resume();

    await until(() => seen.length >= 201, 20_000, () => `got ${seen.length}`);
    await sleep(200); // nothing more may trickle in
    expect(seen.map((m) => m.seq)).toEqual(Array.from({ length: 201 }, (_, i) => i + 1));
    expect(seen.map((m) => m.body)).toEqual(['before', ...Array.from({ length: 200 }, (_, i) => `m${i + 1}`)]);
    expect(status(benClient)).toBe('connected');
  });

  it('20 messages sent offline are delivered once each, in order, even when the replay is cut halfway', async () => {
    const roomId = await newRoom();
    const benWs = wsClient(t.wsUrl, ben.token);
    cleanup.push(() => benWs.dispose());
    const benSees = collect(benWs, SUBSCRIBE, { roomId, afterSeq: 0 });

    proxy.pause();
    proxy.cut();
    const anaClient = clientFor(ana);
    await anaClient.ready;
    const pending = Array.from({ length: 20 }, (_, i) => anaClient.sendMessage({ roomId, body: `offline ${i + 1}`, clientId: `off-${i + 1}` }));
    await until(() => anaClient.connection.getSnapshot().queued === 20);
    await sleep(300);
    expect(await storedMessages(roomId)).toEqual([]);

    // Lose the 10th replayed response after the server stored the message:
    // the replay stops there, and the retry of #10 must not store it twice.
    let responses = 0;
    let requests = 0;
    tap = (chunk, direction) => {
      if (direction === 'toServer' && chunk.includes('mutation SendMessage')) requests++;
      if (direction === 'toClient' && chunk.includes('"sendMessage"') && ++responses === 10) {
        proxy.pause();
        proxy.cut();
        setTimeout(() => proxy.resume(), 1_000);
      }
    };
    proxy.resume();

    const sent = await Promise.all(pending.map((p) => p.sent));
    expect(responses).toBeGreaterThanOrEqual(10);
    expect(requests).toBeGreaterThan(20); // #10 went twice: its first answer was lost
    expect(sent.map((m) => m.clientId)).toEqual(Array.from({ length: 20 }, (_, i) => `off-${i + 1}`));
    const stored = await storedMessages(roomId);
    expect(stored.map((m) => m.body)).toEqual(Array.from({ length: 20 }, (_, i) => `offline ${i + 1}`));
    expect(stored.map((m) => m.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await benSees.waitFor(20);
    await sleep(200);
    expect(benSees.values.map((v) => v.messageAdded.clientId)).toEqual(Array.from({ length: 20 }, (_, i) => `off-${i + 1}`));
    await until(() => anaClient.connection.getSnapshot().queued === 0);
  });

  describe.each([
    ['memory storage', async () => createMemoryStorage()],
    [
      'a file storage',
      async () => {
        const dir = await mkdtemp(join(tmpdir(), 'rt-client-'));
        cleanup.push(() => rm(dir, { recursive: true, force: true }));
        return createFileStorage(join(dir, 'cache.json'));
      },
    ],
    [
      'IndexedDB (browser) storage',
      async () => {
        // What a browser has: IndexedDB (in-memory here) and a window for the `online` event.
        const globals = globalThis as { indexedDB?: unknown; window?: unknown };
        globals.indexedDB = fakeIndexedDB;
        globals.window = new EventTarget();
        cleanup.push(() => {
          delete globals.indexedDB;
          delete globals.window;
        });
        return browserStorage({ idbName: `test-${Date.now()}` });
      },
    ],
  ] as const)('over %s', (_name, makeStorage) => {
    it('messages queued offline survive a reload: a new client over the same storage sends exactly those', async () => {
      const roomId = await newRoom();
      const storage = await makeStorage();
      proxy.pause();
      proxy.cut();

      const first = clientFor(ana, storage);
      await first.ready;
      const pending = ['one', 'two', 'three'].map((body) => first.sendMessage({ roomId, body }));
      const outcomes = Promise.allSettled(pending.map((p) => p.sent));
      await until(() => first.connection.getSnapshot().queued === 3);
      await sleep(100); // the queue is written in a microtask; the file storage then renames
      await first.dispose();
      for (const outcome of await outcomes) expect(outcome.status === 'rejected' && outcome.reason).toBeInstanceOf(ClientDisposedError);
      expect((await storage.readMetadata())?.length).toBe(3);
      expect(await storedMessages(roomId)).toEqual([]);

      proxy.resume();
      const second = clientFor(ana, storage);
      await second.ready;
      expect(second.connection.getSnapshot().queued).toBe(3);
      await until(() => second.connection.getSnapshot().status === 'connected');
      await eventually(async () => (await storedMessages(roomId)).length >= 3);
      await sleep(300);
      const stored = await storedMessages(roomId);
      expect(stored.map((m) => m.body)).toEqual(['one', 'two', 'three']);
      expect(stored.map((m) => m.clientId)).toEqual(pending.map((p) => p.clientId));
      await eventually(async () => (await storage.readMetadata())?.length === 0);
      // With NODE_ENV no longer "test", graphcache persisted its cache too.
      expect(Object.keys(await storage.readData()).length).toBeGreaterThan(0);
    });
  });

  it('surfaces BACKLOG_TOO_LARGE with lastSeq, then continues from there', async () => {
    const roomId = await newRoom();
    for (let i = 1; i <= 30; i++) await gql(t.url, SEND, { input: { roomId, body: `old ${i}`, clientId: `bl-${i}` } }, ana.token);
    // The product limit is 1000; the server reads it from its services on each
    // subscribe, so a smaller one keeps the test from sending 1001 messages.
    const limits = t.server.services.limits;
    const original = limits.maxReplay;
    limits.maxReplay = 20;
    cleanup.push(() => (limits.maxReplay = original));

    const client = clientFor(ben);
    const reports: BacklogTooLarge[] = [];
    const seen: number[] = [];
    let history: number[] = [];
    client.subscribeMessages(roomId, (m) => seen.push(m.seq), {
      afterSeq: 0,
      onBacklogTooLarge: async (info) => {
        reports.push(info);
        const page = await client.urql.query(RoomHistoryDocument, { id: roomId, last: 5 }, { requestPolicy: 'network-only' }).toPromise();
        history = page.data!.room.messages.edges.map((e) => e.node.seq);
        // A message sent while history loads: the resubscription must bring it.
        await gql(t.url, SEND, { input: { roomId, body: 'meanwhile', clientId: 'bl-31' } }, ana.token);
        return history.at(-1);
      },
    });
    await until(() => reports.length === 1);
    expect(reports[0]).toEqual({ roomId, afterSeq: 0, lastSeq: 30 });
    await until(() => seen.length === 1);
    await gql(t.url, SEND, { input: { roomId, body: 'new', clientId: 'bl-32' } }, ana.token);
    await until(() => seen.length === 2);
    await sleep(100);
    expect(history).toEqual([26, 27, 28, 29, 30]);
    expect(seen).toEqual([31, 32]);
  });

  it('reports connected → reconnecting in N ms → connected, and offline while the network is down', async () => {
    const client = clientFor(ana);
    await until(() => status(client) === 'connected');

    proxy.cut();
    await until(() => status(client) === 'connected' && client.states.some((s) => s.status === 'reconnecting'));
    const reconnecting = client.states.find((s) => s.status === 'reconnecting')!;
    expect(reconnecting.retryInMs).toBeGreaterThanOrEqual(0);
    expect(reconnecting.retryInMs).toBeLessThanOrEqual(50);
    expect(reconnecting.closeCode).toBe(1006);

    client.states.length = 0;
    proxy.pause();
    proxy.cut();
    await until(() => status(client) === 'offline');
    const offline = client.connection.getSnapshot();
    expect(offline.retryInMs).toBeGreaterThan(0);
    expect(offline.retryAt).toBeGreaterThan(Date.now() - 2_000);
    proxy.resume();
    await until(() => status(client) === 'connected', 5_000);
    const seq = client.states.map((s) => s.status).filter((s, i, all) => s !== all[i - 1]);
    expect(seq[0]).toBe('reconnecting');
    expect(seq).toContain('offline');
    expect(seq.at(-1)).toBe('connected');
  });

  it('replays the queue when only HTTP failed and the WebSocket stayed up', async () => {
    const roomId = await newRoom();
    let httpDown = false;
    const client = createRealtimeClient({
      url: proxy.url,
      wsUrl: proxy.wsUrl,
      getToken: () => ana.token,
      storage: createMemoryStorage(),
      webSocketImpl: WebSocket,
      reconnect: FAST,
      fetch: (input, init) => (httpDown ? Promise.reject(new TypeError('fetch failed')) : fetch(input, init)),
    });
    cleanup.push(() => client.dispose());
    await until(() => status(client) === 'connected');

    httpDown = true;
    const pending = ['x', 'y', 'z'].map((body) => client.sendMessage({ roomId, body }));
    await until(() => client.connection.getSnapshot().queued === 3);
    await sleep(600); // at least one timed retry fails too
    httpDown = false;
    await Promise.all(pending.map((p) => p.sent));
    expect((await storedMessages(roomId)).map((m) => m.body)).toEqual(['x', 'y', 'z']);
    expect(status(client)).toBe('connected');
  });

  it('keeps a rate-limited replay queued and sends it after retryAfter, in order, once', async () => {
    const roomId = await newRoom();
    let limitedAnswers = 2;
    const client = createRealtimeClient({
      url: proxy.url,
      wsUrl: proxy.wsUrl,
      getToken: () => ana.token,
      storage: createMemoryStorage(),
      webSocketImpl: WebSocket,
      reconnect: FAST,
      // The API's answer over the limit, without waiting for the real limit.
      fetch: async (input, init) => {
        if (!String(init?.body).includes('SendMessage') || limitedAnswers-- <= 0) return fetch(input, init);
        const errors = [{ message: 'Too many requests; try again in 1 s.', path: ['sendMessage'], extensions: { code: 'RATE_LIMITED', retryAfter: 1 } }];
        return new Response(JSON.stringify({ data: null, errors }), { headers: { 'content-type': 'application/json' } });
      },
    });
    cleanup.push(() => client.dispose());
    await until(() => status(client) === 'connected'); // a (re)connect would replay at once
    const started = Date.now();
    const pending = ['r1', 'r2', 'r3'].map((body) => client.sendMessage({ roomId, body }));
    await Promise.all(pending.map((p) => p.sent));
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000); // waited retryAfter, twice
    expect((await storedMessages(roomId)).map((m) => m.body)).toEqual(['r1', 'r2', 'r3']);
    expect(client.connection.getSnapshot().queued).toBe(0);
  });

  it('notices a stalled link by the missing pong, reconnects and resumes', async () => {
    const roomId = await newRoom();
    const client = createRealtimeClient({
      url: proxy.url,
      wsUrl: proxy.wsUrl,
      getToken: () => ben.token,
      storage: createMemoryStorage(),
      webSocketImpl: WebSocket,
      reconnect: FAST,
      keepAliveMs: 300,
      pongTimeoutMs: 300,
    });
    cleanup.push(() => client.dispose());
    const seen: number[] = [];
    client.subscribeMessages(roomId, (m) => seen.push(m.seq), { afterSeq: 0 });
    await until(() => status(client) === 'connected');
    await gql(t.url, SEND, { input: { roomId, body: 'one', clientId: 'st-1' } }, ana.token);
    await until(() => seen.length === 1);

    proxy.stall();
    await gql(t.url, SEND, { input: { roomId, body: 'two', clientId: 'st-2' } }, ana.token);
    await until(() => client.connection.getSnapshot().closeCode === 4499, 5_000); // terminated by the client
    await until(() => seen.length === 2 && status(client) === 'connected', 5_000);
    expect(seen).toEqual([1, 2]);
  });

  it('uses the real schedule by default (0–1 s, then 2–3 s), and retryNow() skips the wait', async () => {
    const client = createRealtimeClient({
      url: proxy.url,
      wsUrl: proxy.wsUrl,
      getToken: () => ana.token,
      storage: createMemoryStorage(),
      webSocketImpl: WebSocket,
    });
    cleanup.push(() => client.dispose());
    const states: ConnectionState[] = [];
    client.connection.subscribe((s) => states.push(s));
    await until(() => status(client) === 'connected');

    proxy.pause();
    proxy.cut();
    await until(() => status(client) === 'offline', 3_000); // the first retry (within 1 s) is refused
    const first = states.find((s) => s.status === 'reconnecting')!;
    expect(first.retryInMs).toBeLessThanOrEqual(1_000);
    const second = client.connection.getSnapshot();
    expect(second.retryInMs).toBeGreaterThanOrEqual(2_000);
    expect(second.retryInMs).toBeLessThanOrEqual(3_000);

    proxy.resume();
    const resumedAt = Date.now();
    client.retryNow();
    await until(() => status(client) === 'connected', 1_500);
    expect(Date.now() - resumedAt).toBeLessThan(1_500);
  });

  it('reconnects after the server drains with 1012 and resumes the subscription from the last seq', async () => {
    // A server the test can restart; the client reaches it through its own proxy.
    const first = await startTestServer('pglite', { keepData: true });
    const dataDir = first.dataDir;
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    const link = await startTcpProxy(first.url);
    cleanup.push(() => link.close());
    const user = await signUp(first.url, 'Ana');
    const { createRoom } = await gql(first.url, CREATE_ROOM, { input: { name: 'Drain', memberIds: [] } }, user.token);
    const roomId: string = createRoom.id;
    const client = createRealtimeClient({
      url: link.url,
      wsUrl: link.wsUrl,
      getToken: () => user.token,
      storage: createMemoryStorage(),
      webSocketImpl: WebSocket,
      reconnect: FAST,
    });
    cleanup.push(() => client.dispose());
    const closeCodes: number[] = [];
    client.connection.subscribe((s) => s.closeCode !== undefined && closeCodes.push(s.closeCode));
    const seen: string[] = [];
    client.subscribeMessages(roomId, (m) => seen.push(`${m.seq}:${m.body}`), { afterSeq: 0 });
    await until(() => status(client) === 'connected');
    await gql(first.url, SEND, { input: { roomId, body: 'a', clientId: 'd-1' } }, user.token);
    await until(() => seen.length === 1);

    await first.dispose({ keep: true });
    expect(closeCodes[0]).toBe(1012);
    await until(() => status(client) === 'offline'); // the old API is gone

    // Same data folder (and so the same signing key): the token stays valid.
    const second = await startTestServer('pglite', { dataDir });
    cleanup.push(() => second.dispose());
    await gql(second.url, SEND, { input: { roomId, body: 'b', clientId: 'd-2' } }, user.token);
    link.setTarget(second.url);
    await until(() => seen.length === 2, 10_000);
    await gql(second.url, SEND, { input: { roomId, body: 'c', clientId: 'd-3' } }, user.token);
    await until(() => seen.length === 3);
    await sleep(100);
    expect(seen).toEqual(['1:a', '2:b', '3:c']);
  });
});
