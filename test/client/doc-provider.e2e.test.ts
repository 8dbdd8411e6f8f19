import { fromBase64 } from 'lib0/buffer';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { createMemoryStorage, createRealtimeClient, type RealtimeClient } from '../../web/src/client/index.ts';
import { createDocProvider, type DocProvider } from '../../web/src/docs/doc-provider.ts';
import { realtimeDocTransport } from '../../web/src/docs/realtime-transport.ts';
import { userColor } from '../../web/src/docs/user-color.ts';
import { gql, signUp, sleep, until, type TestUser } from '../helpers/client.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

/**
 * Web-client document providers against the real server, each user behind
 * its own TCP proxy so that one of them can lose the network while the
 * others keep editing.
 */

const FAST = { schedule: [0, 250, 500, 1_000], jitterRatio: 0.1, minJitterMs: 50 };
const CREATE_ROOM = `mutation ($input: CreateRoomInput!) { createRoom(input: $input) { id } }`;
const CREATE_DOCUMENT = `mutation ($roomId: ID!, $title: String!) { createDocument(roomId: $roomId, title: $title) { id } }`;

let t: TestServer;
let ana: TestUser;
let ben: TestUser;
let cy: TestUser;
const cleanup: (() => unknown)[] = [];

beforeAll(async () => {
  t = await startTestServer('pglite');
  [ana, ben, cy] = await Promise.all([signUp(t.url, 'Ana'), signUp(t.url, 'Ben'), signUp(t.url, 'Cy')]);
});

afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

afterAll(async () => {
  await t?.dispose();
});

async function newDocument(): Promise<string> {
  const room = await gql(t.url, CREATE_ROOM, { input: { name: 'Notes', memberIds: [ben.id, cy.id] } }, ana.token);
  const doc = await gql(t.url, CREATE_DOCUMENT, { roomId: room.createRoom.id, title: 'Plan' }, ana.token);
  return doc.createDocument.id;
}

interface Editor {
  user: TestUser;
  proxy: TcpProxy;
  client: RealtimeClient;
  provider: DocProvider;
  /** The state vectors `docUpdates` was (re)subscribed with, in order. */
  stateVectors: string[];
}

/** A user's web client (behind its own proxy) with the document open. */
async function open(user: TestUser, docId: string): Promise<Editor> {
  const proxy = await startTcpProxy(t.url);
  const client = createRealtimeClient({
    url: proxy.url,
    wsUrl: proxy.wsUrl,
    getToken: () => user.token,
    storage: createMemoryStorage(),
    webSocketImpl: WebSocket,
    reconnect: FAST,
    requestTimeoutMs: 5_000,
  });
  const transport = realtimeDocTransport(client);
  const stateVectors: string[] = [];
  const subscribeUpdates = transport.subscribeUpdates;
  transport.subscribeUpdates = (id, stateVector, handlers) =>
    subscribeUpdates(
      id,
      () => {
        stateVectors.push(stateVector());
        return stateVectors.at(-1)!;
      },
      handlers,
    );
  const provider = createDocProvider({ docId, transport, user: { id: user.id, name: user.name }, retry: FAST });
  cleanup.push(
    () => proxy.close(),
    () => client.dispose(),
    () => provider.destroy(),
  );
  return { user, proxy, client, provider, stateVectors };
}

/** A seeded generator, so a failure can be replayed. */
function random(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return s / 2 ** 32;
  };
}

/** Random inserts and deletes at random places, `count` of them, `gapMs` apart. */
async function randomEdits(editor: Editor, rnd: () => number, count: number, gapMs: number, tag: string) {
  const text = editor.provider.text;
  for (let i = 0; i < count; i++) {
    if (text.length > 0 && rnd() < 0.3) {
      const at = Math.floor(rnd() * text.length);
      text.delete(at, Math.min(text.length - at, 1 + Math.floor(rnd() * 3)));
    } else {
      text.insert(Math.floor(rnd() * (text.length + 1)), `${tag}${i} `);
    }
    await sleep(gapMs);
  }
}

const status = (e: Editor) => e.provider.getSnapshot().status;

describe('document providers against the real server', () => {
  it('two clients editing concurrently, one offline for part of the run, converge with every offline insert kept', async () => {
    const docId = await newDocument();
    const a = await open(ana, docId);
    const b = await open(ben, docId);
    await Promise.all([a.provider.whenSynced(), b.provider.whenSynced()]);

    // Both online: random inserts and deletes at the same time.
    await Promise.all([randomEdits(a, random(1), 40, 15, 'a'), randomEdits(b, random(2), 40, 15, 'b')]);
    await until(() => status(a) === 'synced' && status(b) === 'synced' && a.provider.text.toString() === b.provider.text.toString(), 15_000, () => `${status(a)} / ${status(b)}`);

    // Ben loses the network and keeps typing; Ana keeps typing too.
    b.proxy.pause();
    b.proxy.cut();
    await until(() => status(b) === 'offline');
    // Marks go only where they cannot split another mark (at either end or
    // before a '<'), so each must survive whole.
    const marks: string[] = [];
    const rndA = random(3);
    const rndB = random(4);
    const boundary = (e: Editor, rnd: () => number) => {
      const text = e.provider.text.toString();
      const spots = [0, text.length, ...[...text.matchAll(/</g)].map((m) => m.index)];
      return spots[Math.floor(rnd() * spots.length)]!;
    };
    for (let i = 0; i < 30; i++) {
      b.provider.text.insert(boundary(b, rndB), `<B${i}>`);
      a.provider.text.insert(boundary(a, rndA), `<A${i}>`);
      marks.push(`<A${i}>`, `<B${i}>`);
      await sleep(10);
    }
    expect(status(b)).toBe('offline');
    expect(b.provider.getSnapshot().pendingUpdates).toBeGreaterThan(0);
    expect(a.provider.text.toString()).not.toContain('<B0>');

    // Back online: the catch-up brings Ana's edits, the buffer sends Ben's.
    b.proxy.resume();
    await until(
      () => status(a) === 'synced' && status(b) === 'synced' && a.provider.text.toString() === b.provider.text.toString(),
      20_000,
      () => `${status(a)} / ${status(b)}`,
    );
    const final = a.provider.text.toString();
    for (const mark of marks) expect(final).toContain(mark);
    // Ben resubscribed with the state vector he had when the connection came back, not the first one.
    const resubscribedWith = b.stateVectors.at(-1)!;
    expect(resubscribedWith).not.toBe(b.stateVectors[0]);
    expect(Y.decodeStateVector(fromBase64(resubscribedWith)).get(b.provider.doc.clientID)).toBeGreaterThan(0);

    // A late joiner loads the same text from the server.
    const c = await open(cy, docId);
    await c.provider.whenSynced();
    expect(c.provider.text.toString()).toBe(final);
  });

  it('three clients with random edits, one cut off twice, converge to identical text', async () => {
    const docId = await newDocument();
    const editors = await Promise.all([open(ana, docId), open(ben, docId), open(cy, docId)]);
    await Promise.all(editors.map((e) => e.provider.whenSynced()));
    const [, , c] = editors as [Editor, Editor, Editor];
    let cOffline = 0;
    let last = status(c);
    c.provider.subscribe((s) => {
      if (s.status === 'offline' && last !== 'offline') cOffline++;
      last = s.status;
    });
    const run = Promise.all(editors.map((e, i) => randomEdits(e, random(10 + i), 60, 12, `e${i}.`)));
    for (let cutNo = 0; cutNo < 2; cutNo++) {
      await sleep(150);
      c.proxy.pause();
      c.proxy.cut();
      await sleep(300);
      c.proxy.resume();
      await until(() => status(c) !== 'offline', 10_000);
    }
    await run;
    const texts = () => editors.map((e) => e.provider.text.toString());
    await until(() => editors.every((e) => status(e) === 'synced') && new Set(texts()).size === 1, 20_000, () => editors.map(status).join(' / '));
    expect(texts()[0]!.length).toBeGreaterThan(0);
    expect(cOffline).toBe(2);
  });

  it('shows who is in the document, with names and colours, and drops a client that closes', async () => {
    const docId = await newDocument();
    const a = await open(ana, docId);
    const b = await open(ben, docId);
    await Promise.all([a.provider.whenSynced(), b.provider.whenSynced()]);
    b.provider.awareness.setLocalStateField('cursor', { anchor: 1, head: 1 });
    const benSeenByAna = () => a.provider.awareness.getStates().get(b.provider.doc.clientID);
    await until(() => benSeenByAna()?.cursor?.head === 1, 10_000);
    expect(benSeenByAna()?.user).toEqual({ id: ben.id, name: 'Ben', ...userColor(ben.id) });
    await until(() => b.provider.awareness.getStates().get(a.provider.doc.clientID)?.user?.name === 'Ana', 10_000);

    b.provider.destroy();
    await until(() => !a.provider.awareness.getStates().has(b.provider.doc.clientID), 10_000);
  });
});
