import { randomBytes } from 'node:crypto';
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Awareness, applyAwarenessUpdate, encodeAwarenessUpdate } from 'y-protocols/awareness';
import * as Y from 'yjs';
import { collect, errorCode, gql, http, signUp, sleep, until, wsClient, type TestUser } from './helpers/client.ts';
import { APPLY_DOC_UPDATE, DOC_UPDATES, DocEditor, execute, fromBase64, seededRandom, toBase64 } from './helpers/doc-editor.ts';
import { createScratchDatabase, postgresAvailable } from './helpers/postgres.ts';
import { killLeftovers, startApiProcess, type ApiProcess } from './helpers/processes.ts';
import { REDIS_TEST_URL, redisAvailable, redisServerInstalled, startOwnRedis, type OwnRedis } from './helpers/redis.ts';
import { startTestServer, type Backend, type TestServer } from './helpers/server.ts';

// Both throw in CI when their server is missing, so CI cannot silently skip these cases.
const pgUp = await postgresAvailable();
const redisUp = await redisAvailable();
const ownRedis = redisServerInstalled();

const CREATE_ROOM = `mutation ($input: CreateRoomInput!) { createRoom(input: $input) { id } }`;
const CREATE_DOCUMENT = `mutation ($roomId: ID!, $title: String!) { createDocument(roomId: $roomId, title: $title) { id roomId title createdBy { id name } createdAt updatedAt } }`;
const DOCUMENT = `query ($id: ID!) { document(id: $id) { id title roomId } }`;
const ROOM_DOCUMENTS = `query ($id: ID!) { room(id: $id) { documents { id title } } }`;
const APPLY_AWARENESS = `mutation ($docId: ID!, $update: String!) { applyDocAwareness(docId: $docId, update: $update) }`;
const DOC_AWARENESS = `subscription ($docId: ID!) { docAwareness(docId: $docId) { docId update } }`;

const COMPACT_EVERY = 20;

/** Runs `ops` random edits on each editor concurrently, a few ms apart; `during` runs alongside. */
async function editConcurrently(editors: DocEditor[], ops: number, seed: number, hooks: { at?: number; run?: () => Promise<void> }[] = []) {
  await Promise.all(
    editors.map(async (editor, index) => {
      const random = seededRandom(seed * 31 + index);
      for (let i = 0; i < ops; i++) {
        for (const hook of hooks) if (index === 0 && hook.at === i) await hook.run?.();
        editor.randomEdit(random);
        await sleep(Math.floor(random() * 6));
      }
    }),
  );
}

/** Waits until every editor holds the same text and state vector; returns the text. */
async function converged(editors: DocEditor[], timeoutMs = 20_000): Promise<string> {
  for (const editor of editors) await editor.settled();
  const key = (e: DocEditor) => `${e.text.toString()}|${toBase64(Y.encodeStateVector(e.doc))}`;
  try {
    await until(() => editors.every((e) => key(e) === key(editors[0]!)), timeoutMs);
  } catch (error) {
    throw new Error(`${(error as Error).message}: errors ${JSON.stringify(editors.map((e) => e.errors))}, texts ${JSON.stringify(editors.map((e) => e.text.toString()))}`);
  }
  return editors[0]!.text.toString();
}

/** Every editor's changes reached every other editor, and every marker survived exactly once. */
function expectNoLostKeystrokes(editors: DocEditor[], text: string) {
  for (const editor of editors) {
    expect(editor.errors, editor.name).toEqual([]);
    const own = Y.decodeStateVector(Y.encodeStateVector(editor.doc));
    for (const other of editors) {
      // Each client's own clock is the count of items it created: everyone has all of them.
      expect(own.get(other.doc.clientID), `${editor.name} has all of ${other.name}'s changes`).toBe(
        Y.decodeStateVector(Y.encodeStateVector(other.doc)).get(other.doc.clientID),
      );
    }
    for (const marker of editor.markers) expect(text.split(marker).length - 1, marker).toBe(1);
  }
}

/** Reads a document as a client with no state: the sync event alone. */
async function loadAsNewClient(wsUrl: string, token: string, docId: string, stateVector?: Uint8Array) {
  const client = wsClient(wsUrl, token);
  try {
    const seen = collect<{ docUpdates: { update: string; sync: boolean } }>(client, DOC_UPDATES, {
      docId,
      ...(stateVector ? { stateVector: toBase64(stateVector) } : {}),
    });
    const [first] = await seen.waitFor(1);
    seen.dispose();
    return first!.docUpdates;
  } finally {
    await client.dispose();
  }
}

const backends: Backend[] = ['pglite', ...(pgUp ? (['postgres'] as const) : [])];
if (!pgUp) console.warn('PostgreSQL unreachable: skipping the PostgreSQL document cases.');

describe.each(backends)('shared documents on %s', (backend) => {
  let api: TestServer;
  let ana: TestUser;
  let ben: TestUser;
  let cai: TestUser;
  let roomId: string;
  const leftovers: { dispose(): Promise<void> | void }[] = [];

  const createDocument = async (title: string) => (await gql(api.url, CREATE_DOCUMENT, { roomId, title }, ana.token)).createDocument.id as string;
  const editor = (name: string, user: TestUser, docId: string) => {
    const e = new DocEditor(name, api.wsUrl, user.token, docId);
    leftovers.push(e);
    return e;
  };
  const updateRows = (docId: string) => api.server.services.db.documentUpdate.count({ where: { documentId: docId } });

  beforeAll(async () => {
    api = await startTestServer(backend, { env: { DOC_COMPACT_EVERY: String(COMPACT_EVERY) } });
    [ana, ben, cai] = await Promise.all([signUp(api.url, 'Ana'), signUp(api.url, 'Ben'), signUp(api.url, 'Cai')]);
    roomId = (await gql(api.url, CREATE_ROOM, { input: { name: 'Notes', memberIds: [ben.id, cai.id] } }, ana.token)).createRoom.id;
  });

  afterAll(async () => {
    for (const l of leftovers) await l.dispose();
    await api?.dispose();
  });

  it('two editors typing and deleting at once converge, with every keystroke kept', async () => {
    const docId = await createDocument('Two');
    const editors = [editor('A', ana, docId), editor('B', ben, docId)];
    await Promise.all(editors.map((e) => e.connect()));
    await editConcurrently(editors, 150, 1);
    const text = await converged(editors);
    expectNoLostKeystrokes(editors, text);
    expect(text.length).toBeGreaterThan(50);
    // The stored document (snapshot plus updates) reads the same.
    const stored = await loadAsNewClient(api.wsUrl, cai.token, docId);
    const fresh = new Y.Doc();
    Y.applyUpdate(fresh, fromBase64(stored.update));
    expect(fresh.getText('content').toString()).toBe(text);
    console.log(`[${backend}] 2 editors x 150 edits: ${text.length} chars, ${editors.map((e) => `${e.name} sent ${e.stats.sent} updates (${e.stats.sentBytes} B, max ${e.stats.maxUpdateBytes} B)`).join(', ')}; late sync ${fromBase64(stored.update).byteLength} B, ${await updateRows(docId)} update rows`);
  }, 60_000);

  it('three editors converge when one works offline for part of the run and resyncs with its state vector', async () => {
    const docId = await createDocument('Three');
    const editors = [editor('A', ana, docId), editor('B', ben, docId), editor('C', cai, docId)];
    await Promise.all(editors.map((e) => e.connect()));
    const offline = editors[2]!;
    let pendingWhileOffline = '';
    await editConcurrently(editors, 200, 2, [
      { at: 50, run: () => offline.disconnect() },
      {
        at: 150,
        run: async () => {
          // Offline, C kept editing: nobody else has its changes yet.
          pendingWhileOffline = offline.markers.filter((m) => !editors[0]!.text.toString().includes(m)).join('');
          await offline.connect();
        },
      },
    ]);
    const text = await converged(editors);
    expectNoLostKeystrokes(editors, text);
    expect(pendingWhileOffline.length).toBeGreaterThan(0);
    // Live updates are executed once and shared between the subscribers.
    expect(api.server.fanoutStats().reuses).toBeGreaterThan(0);
    console.log(`[${backend}] 3 editors x 200 edits, C offline for edits 50-150: ${text.length} chars, ${editors.map((e) => `${e.name}: ${e.markers.length} markers, ${e.stats.sent} updates`).join(', ')}; C's resync ${offline.stats.syncBytes} B`);
  }, 60_000);

  it('a late joiner after compaction reads the same text from snapshot plus updates; stored updates stay bounded', async () => {
    const docId = await createDocument('Compacted');
    const editors = [editor('A', ana, docId), editor('B', ben, docId)];
    await Promise.all(editors.map((e) => e.connect()));
    await editConcurrently(editors.slice(0, 1), 30, 3);
    const midway = await converged(editors);
    const stale = Y.encodeStateVector(editors[1]!.doc);
    const staleDoc = new Y.Doc();
    Y.applyUpdate(staleDoc, Y.encodeStateAsUpdate(editors[1]!.doc));
    await editConcurrently(editors, 100, 4);
    const text = await converged(editors);
    expect(text).not.toBe(midway);

    const row = await api.server.services.db.document.findUniqueOrThrow({ where: { id: docId }, select: { lastSeq: true, snapshotSeq: true, size: true } });
    const rows = await updateRows(docId);
    expect(row.snapshotSeq).toBeGreaterThan(0);
    expect(rows).toBe(row.lastSeq - row.snapshotSeq);
    expect(rows).toBeLessThanOrEqual(COMPACT_EVERY);

    const late = await loadAsNewClient(api.wsUrl, cai.token, docId);
    const joined = new Y.Doc();
    Y.applyUpdate(joined, fromBase64(late.update));
    expect(late.sync).toBe(true);
    expect(joined.getText('content').toString()).toBe(text);

    // A client that had the midway state gets only the difference.
    const diff = await loadAsNewClient(api.wsUrl, cai.token, docId, stale);
    Y.applyUpdate(staleDoc, fromBase64(diff.update));
    expect(staleDoc.getText('content').toString()).toBe(text);
    expect(fromBase64(diff.update).byteLength).toBeLessThan(fromBase64(late.update).byteLength);

    // A client that has everything still gets its sync event, empty.
    const none = await loadAsNewClient(api.wsUrl, cai.token, docId, Y.encodeStateVector(joined));
    const empty = new Y.Doc();
    Y.applyUpdate(empty, fromBase64(none.update));
    expect(empty.getText('content').length).toBe(0);
    console.log(`[${backend}] compaction every ${COMPACT_EVERY}: lastSeq ${row.lastSeq}, snapshotSeq ${row.snapshotSeq}, ${rows} update rows left, stored size ${row.size} B; full sync ${fromBase64(late.update).byteLength} B, diff from midway ${fromBase64(diff.update).byteLength} B, up-to-date sync ${fromBase64(none.update).byteLength} B`);
  }, 60_000);

  it('lists documents newest first and reads one; createDocument checks the title', async () => {
    const first = await createDocument('First');
    const second = await createDocument('Second');
    const { room } = await gql(api.url, ROOM_DOCUMENTS, { id: roomId }, ben.token);
    const ids = room.documents.map((d: { id: string }) => d.id);
    expect(ids.indexOf(second)).toBeLessThan(ids.indexOf(first));
    expect((await gql(api.url, DOCUMENT, { id: first }, cai.token)).document).toEqual({ id: first, title: 'First', roomId });
    for (const title of ['', '   ', 'x'.repeat(201)]) {
      const { body } = await http(api.url, CREATE_DOCUMENT, { roomId, title }, ana.token);
      expect(errorCode(body)).toBe('BAD_USER_INPUT');
      expect(body.errors?.[0]?.extensions?.field).toBe('title');
    }
  });
});

describe('shared documents: access, limits and awareness (PGlite)', () => {
  let api: TestServer;
  let small: TestServer;
  let ana: TestUser;
  let ben: TestUser;
  let eve: TestUser;
  let roomId: string;
  let docId: string;
  const clients: Client[] = [];
  const client = (token: string) => {
    const c = wsClient(api.wsUrl, token, { onNonLazyError: () => {} });
    clients.push(c);
    return c;
  };
  const typed = (text: string) => {
    const doc = new Y.Doc();
    doc.getText('content').insert(0, text);
    return Y.encodeStateAsUpdate(doc);
  };

  beforeAll(async () => {
    api = await startTestServer('pglite', { env: { PRESENCE_GRACE_MS: '200', DOC_AWARENESS_TIMEOUT_MS: '1500' } });
    small = await startTestServer('pglite', { env: { DOC_UPDATE_MAX_BYTES: '1024', DOC_MAX_BYTES: '2048', DOC_COMPACT_EVERY: '1000' } });
    [ana, ben, eve] = await Promise.all([signUp(api.url, 'Ana'), signUp(api.url, 'Ben'), signUp(api.url, 'Eve')]);
    roomId = (await gql(api.url, CREATE_ROOM, { input: { name: 'Private notes', memberIds: [ben.id], isPrivate: true } }, ana.token)).createRoom.id;
    docId = (await gql(api.url, CREATE_DOCUMENT, { roomId, title: 'Plan' }, ana.token)).createDocument.id;
  });

  afterAll(async () => {
    for (const c of clients) await c.dispose();
    await api?.dispose();
    await small?.dispose();
  });

  it('refuses a non-member everywhere (FORBIDDEN) and an unknown document (NOT_FOUND)', async () => {
    const update = toBase64(typed('hello'));
    expect(errorCode((await http(api.url, DOCUMENT, { id: docId }, eve.token)).body)).toBe('FORBIDDEN');
    expect(errorCode((await http(api.url, APPLY_DOC_UPDATE, { docId, update }, eve.token)).body)).toBe('FORBIDDEN');
    expect(errorCode((await http(api.url, APPLY_AWARENESS, { docId, update: 'AA==' }, eve.token)).body)).toBe('FORBIDDEN');
    expect(errorCode((await http(api.url, CREATE_DOCUMENT, { roomId, title: 'Mine' }, eve.token)).body)).toBe('FORBIDDEN');
    const eveWs = client(eve.token);
    for (const [query, name] of [[DOC_UPDATES, 'docUpdates'], [DOC_AWARENESS, 'docAwareness']] as const) {
      const seen = collect(eveWs, query, { docId });
      await seen.ended();
      expect((seen.errors[0] as { extensions?: { code?: string } }).extensions?.code, name).toBe('FORBIDDEN');
      expect(seen.values, name).toEqual([]);
    }
    const unknown = '00000000-0000-4000-8000-000000000000';
    expect(errorCode((await http(api.url, DOCUMENT, { id: unknown }, ana.token)).body)).toBe('NOT_FOUND');
    expect(errorCode((await http(api.url, DOCUMENT, { id: 'nope' }, ana.token)).body)).toBe('NOT_FOUND');
    expect(errorCode((await http(api.url, APPLY_DOC_UPDATE, { docId: unknown, update }, ana.token)).body)).toBe('NOT_FOUND');
    const anaWs = wsClient(api.wsUrl, ana.token);
    const seen = collect(anaWs, DOC_UPDATES, { docId: unknown });
    await seen.ended();
    await anaWs.dispose();
    expect((seen.errors[0] as { extensions?: { code?: string } }).extensions?.code).toBe('NOT_FOUND');
    const stored = await api.server.services.db.documentUpdate.count({ where: { documentId: docId } });
    expect(stored).toBe(0);
  });

  it('refuses garbage (BAD_USER_INPUT) and oversize updates (PAYLOAD_TOO_LARGE), storing nothing', async () => {
    const db = api.server.services.db;
    const before = await db.document.findUniqueOrThrow({ where: { id: docId }, select: { lastSeq: true } });
    for (const update of ['not base64!', '@@@@', 'AAA', toBase64(new Uint8Array([255, 255, 255, 255, 255, 255, 255, 255, 255, 1]))]) {
      const { body } = await http(api.url, APPLY_DOC_UPDATE, { docId, update }, ana.token);
      expect(errorCode(body), update).toBe('BAD_USER_INPUT');
      expect(body.errors?.[0]?.extensions?.field).toBe('update');
    }
    const huge = toBase64(randomBytes(256 * 1024 + 1));
    const { body } = await http(api.url, APPLY_DOC_UPDATE, { docId, update: huge }, ana.token);
    expect(errorCode(body)).toBe('PAYLOAD_TOO_LARGE');
    expect(body.errors?.[0]?.extensions?.limit).toBe(256 * 1024);
    expect(body.errors?.[0]?.message).toMatch(/at most 262144/);
    const anaWs = wsClient(api.wsUrl, ana.token);
    const badVector = collect(anaWs, DOC_UPDATES, { docId, stateVector: '!!' });
    await badVector.ended();
    await anaWs.dispose();
    expect((badVector.errors[0] as { extensions?: { code?: string } }).extensions?.code).toBe('BAD_USER_INPUT');
    const after = await db.document.findUniqueOrThrow({ where: { id: docId }, select: { lastSeq: true } });
    expect(after.lastSeq).toBe(before.lastSeq);
    expect(await db.documentUpdate.count({ where: { documentId: docId } })).toBe(0);

    // The document's own size limit: updates that would grow it past DOC_MAX_BYTES are refused.
    const [owner] = await Promise.all([signUp(small.url, 'Owner')]);
    const smallRoom = (await gql(small.url, CREATE_ROOM, { input: { name: 'Small' } }, owner.token)).createRoom.id;
    const smallDoc = (await gql(small.url, CREATE_DOCUMENT, { roomId: smallRoom, title: 'Tiny' }, owner.token)).createDocument.id;
    const tooBig = await http(small.url, APPLY_DOC_UPDATE, { docId: smallDoc, update: toBase64(typed('x'.repeat(1100))) }, owner.token);
    expect(errorCode(tooBig.body)).toBe('PAYLOAD_TOO_LARGE');
    const doc = new Y.Doc();
    const text = doc.getText('content');
    const results: (string | undefined)[] = [];
    for (let i = 0; i < 4; i++) {
      const sv = Y.encodeStateVector(doc);
      text.insert(text.length, `${i}`.repeat(700));
      const { body: res } = await http(small.url, APPLY_DOC_UPDATE, { docId: smallDoc, update: toBase64(Y.encodeStateAsUpdate(doc, sv)) }, owner.token);
      results.push(errorCode(res) ?? String(res.data?.applyDocUpdate));
      if (errorCode(res)) expect(res.errors?.[0]?.message).toMatch(/size limit of 2048 bytes/);
    }
    expect(results).toEqual(['true', 'true', 'PAYLOAD_TOO_LARGE', 'PAYLOAD_TOO_LARGE']);
    const smallRow = await small.server.services.db.document.findUniqueOrThrow({ where: { id: smallDoc }, select: { lastSeq: true, size: true } });
    expect(smallRow.lastSeq).toBe(2);
    expect(smallRow.size).toBeLessThanOrEqual(2048);
  });

  it('stamps awareness states with their sender, binds clientIDs to users, and removes states on close and on expiry', async () => {
    // Ben watches.
    const benAwareness = new Awareness(new Y.Doc());
    const watch = collect<{ docAwareness: { update: string } }>(client(ben.token), DOC_AWARENESS, { docId });
    await watch.waitFor(1);
    expect(fromBase64(watch.values[0]!.docAwareness.update)).toEqual(new Uint8Array([0])); // nobody yet, still sent
    let applied = 0;
    const follow = () => {
      for (; applied < watch.values.length; applied++) applyAwarenessUpdate(benAwareness, fromBase64(watch.values[applied]!.docAwareness.update), 'server');
    };

    // Ana claims to be Ben, with a cursor color.
    const anaDoc = new Y.Doc();
    const anaAwareness = new Awareness(anaDoc);
    clearInterval(anaAwareness._checkInterval);
    anaAwareness.setLocalState({ user: { id: ben.id, name: 'Ben', color: '#30bced' }, cursor: { anchor: 3, head: 5 } });
    const anaWs = client(ana.token);
    const send = async (ws: Client, awareness: Awareness, clients = [awareness.clientID]) =>
      execute(ws, APPLY_AWARENESS, { docId, update: toBase64(encodeAwarenessUpdate(awareness, clients)) });
    expect((await send(anaWs, anaAwareness)).data?.applyDocAwareness).toBe(true);
    await until(() => (follow(), benAwareness.getStates().has(anaDoc.clientID)));
    expect(benAwareness.getStates().get(anaDoc.clientID)).toEqual({
      user: { id: ana.id, name: 'Ana', color: '#30bced' },
      cursor: { anchor: 3, head: 5 },
    });

    // Ben cannot speak for Ana's client.
    const forged = new Awareness(new Y.Doc());
    clearInterval(forged._checkInterval);
    applyAwarenessUpdate(forged, encodeAwarenessUpdate(anaAwareness, [anaDoc.clientID]), null);
    forged.states.set(anaDoc.clientID, { cursor: { anchor: 99, head: 99 } });
    forged.meta.set(anaDoc.clientID, { clock: 50, lastUpdated: Date.now() });
    const { errors } = await send(client(ben.token), forged, [anaDoc.clientID]);
    expect(errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    // Garbage and oversize awareness updates.
    expect(errorCode((await http(api.url, APPLY_AWARENESS, { docId, update: toBase64(new Uint8Array([1, 7, 1, 3, 123])) }, ana.token)).body)).toBe('BAD_USER_INPUT');
    expect(errorCode((await http(api.url, APPLY_AWARENESS, { docId, update: toBase64(randomBytes(8 * 1024 + 1)) }, ana.token)).body)).toBe('PAYLOAD_TOO_LARGE');

    // A late subscriber gets the current states first.
    const late = collect<{ docAwareness: { update: string } }>(client(ben.token), DOC_AWARENESS, { docId });
    await late.waitFor(1);
    const lateAwareness = new Awareness(new Y.Doc());
    applyAwarenessUpdate(lateAwareness, fromBase64(late.values[0]!.docAwareness.update), 'server');
    expect(lateAwareness.getStates().get(anaDoc.clientID)?.user).toEqual({ id: ana.id, name: 'Ana', color: '#30bced' });
    late.dispose();

    // Ana's only connection closes: her state goes (after PRESENCE_GRACE_MS).
    await anaWs.dispose();
    const closedAt = Date.now();
    await until(() => (follow(), !benAwareness.getStates().has(anaDoc.clientID)), 5000);
    const removedAfterClose = Date.now() - closedAt;

    // Ana again, on a new connection, stops renewing: her state expires (DOC_AWARENESS_TIMEOUT_MS).
    const anaAgain = client(ana.token);
    anaAwareness.setLocalState({ user: { name: 'Ana' }, cursor: { anchor: 1, head: 1 } });
    const sentAt = Date.now();
    expect((await send(anaAgain, anaAwareness)).data?.applyDocAwareness).toBe(true);
    await until(() => (follow(), benAwareness.getStates().has(anaDoc.clientID)));
    await until(() => (follow(), !benAwareness.getStates().has(anaDoc.clientID)), 5000);
    const expiredAfter = Date.now() - sentAt;
    expect(expiredAfter).toBeGreaterThanOrEqual(1400);
    console.log(`awareness: removed ${removedAfterClose} ms after the connection closed (grace 200 ms), expired ${expiredAfter} ms after the last renewal (timeout 1500 ms)`);

    // With no subscriber and no state left, the process forgets the document.
    watch.dispose();
    anaAwareness.destroy();
    benAwareness.destroy();
    forged.destroy();
    lateAwareness.destroy();
    const hub = api.server.services.docAwareness as unknown as { size: number };
    await until(() => hub.size === 0, 5000);
  });

  it('leaving the room ends both subscriptions and removes the leaver’s awareness state', async () => {
    const benWs = client(ben.token);
    const updates = collect(benWs, DOC_UPDATES, { docId });
    const awareness = collect(benWs, DOC_AWARENESS, { docId });
    await updates.waitFor(1);
    await awareness.waitFor(1);
    const benAwareness = new Awareness(new Y.Doc());
    clearInterval(benAwareness._checkInterval);
    benAwareness.setLocalState({ cursor: { anchor: 0, head: 0 } });
    await execute(benWs, APPLY_AWARENESS, { docId, update: toBase64(encodeAwarenessUpdate(benAwareness, [benAwareness.clientID])) });

    const anaAwareness = new Awareness(new Y.Doc());
    const watch = collect<{ docAwareness: { update: string } }>(client(ana.token), DOC_AWARENESS, { docId });
    const follow = () => {
      for (const v of watch.values.splice(0)) applyAwarenessUpdate(anaAwareness, fromBase64(v.docAwareness.update), 'server');
      return anaAwareness.getStates();
    };
    await until(() => follow().get(benAwareness.clientID)?.user?.id === ben.id);

    expect((await gql(api.url, `mutation ($roomId: ID!) { leaveRoom(roomId: $roomId) }`, { roomId }, ben.token)).leaveRoom).toBe(true);
    await updates.ended();
    await awareness.ended();
    expect(updates.errors).toEqual([]);
    await until(() => !follow().has(benAwareness.clientID));
    expect(errorCode((await http(api.url, APPLY_DOC_UPDATE, { docId, update: toBase64(typed('x')) }, ben.token)).body)).toBe('FORBIDDEN');
    watch.dispose();
    benAwareness.destroy();
    anaAwareness.destroy();
  });
});

describe.skipIf(!pgUp || !redisUp)('shared documents across two API processes (PostgreSQL + Redis)', () => {
  let scratch: { url: string; drop(): Promise<void> } | undefined;
  let a: ApiProcess;
  let b: ApiProcess;
  const leftovers: { dispose(): Promise<void> | void }[] = [];

  beforeAll(async () => {
    scratch = await createScratchDatabase('docs');
    const env = {
      DATABASE_URL: scratch.url,
      REDIS_URL: REDIS_TEST_URL,
      REDIS_PREFIX: `docs-${randomBytes(4).toString('hex')}:`,
      JWT_SECRET: randomBytes(32).toString('hex'),
      DOC_COMPACT_EVERY: '25',
    };
    [a, b] = await Promise.all([startApiProcess('docs-a', env), startApiProcess('docs-b', env)]);
  }, 180_000);

  afterAll(async () => {
    for (const l of leftovers) await l.dispose();
    await a?.dispose();
    await b?.dispose();
    await killLeftovers();
    await scratch?.drop();
  });

  it('editors on different processes converge, and see each other’s awareness', async () => {
    const [ana, ben, cai] = await Promise.all([signUp(a.url, 'Ana'), signUp(b.url, 'Ben'), signUp(a.url, 'Cai')]);
    const roomId = (await gql(a.url, CREATE_ROOM, { input: { name: 'Across', memberIds: [ben.id, cai.id] } }, ana.token)).createRoom.id;
    const docId = (await gql(b.url, CREATE_DOCUMENT, { roomId, title: 'Shared' }, ben.token)).createDocument.id;
    const editors = [new DocEditor('A', a.wsUrl, ana.token, docId), new DocEditor('B', b.wsUrl, ben.token, docId), new DocEditor('C', a.wsUrl, cai.token, docId)];
    leftovers.push(...editors);
    await Promise.all(editors.map((e) => e.connect()));
    const moving = editors[2]!;
    await editConcurrently(editors, 150, 5, [
      { at: 40, run: () => moving.disconnect() },
      { at: 100, run: () => moving.connect(b.wsUrl) }, // comes back through the other process
    ]);
    let text: string;
    try {
      text = await converged(editors);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n--- a:\n${a.output().slice(-2000)}\n--- b:\n${b.output().slice(-2000)}`);
    }
    expectNoLostKeystrokes(editors, text);
    console.log(`across processes: 3 editors x 150 edits converged on ${text.length} chars`);

    // Awareness: Ana sends to A, Ben watches on B.
    const benWs = wsClient(b.wsUrl, ben.token);
    const anaWs = wsClient(a.wsUrl, ana.token);
    leftovers.push(benWs, anaWs);
    const watch = collect<{ docAwareness: { update: string } }>(benWs, DOC_AWARENESS, { docId });
    await watch.waitFor(1);
    const anaAwareness = new Awareness(new Y.Doc());
    clearInterval(anaAwareness._checkInterval);
    anaAwareness.setLocalState({ user: { name: 'Not Ana' }, cursor: { anchor: 2, head: 2 } });
    await execute(anaWs, APPLY_AWARENESS, { docId, update: toBase64(encodeAwarenessUpdate(anaAwareness, [anaAwareness.clientID])) });
    const benAwareness = new Awareness(new Y.Doc());
    await until(() => {
      for (const v of watch.values.splice(0)) applyAwarenessUpdate(benAwareness, fromBase64(v.docAwareness.update), 'server');
      return benAwareness.getStates().has(anaAwareness.clientID);
    }, 10_000);
    expect(benAwareness.getStates().get(anaAwareness.clientID)?.user).toEqual({ id: ana.id, name: 'Ana' });
    // A subscriber arriving later on B gets Ana's state (held for A's client) in its first event.
    const caiWs = wsClient(b.wsUrl, cai.token);
    leftovers.push(caiWs);
    const late = collect<{ docAwareness: { update: string } }>(caiWs, DOC_AWARENESS, { docId });
    await late.waitFor(1);
    const lateAwareness = new Awareness(new Y.Doc());
    applyAwarenessUpdate(lateAwareness, fromBase64(late.values[0]!.docAwareness.update), 'server');
    expect(lateAwareness.getStates().get(anaAwareness.clientID)?.user).toEqual({ id: ana.id, name: 'Ana' });
    late.dispose();

    // A process that starts following a document asks the others for its current states:
    // Ana's state, held by A only, reaches a first subscriber on B without waiting for a renewal.
    const quietDoc = (await gql(a.url, CREATE_DOCUMENT, { roomId, title: 'Quiet' }, ana.token)).createDocument.id;
    await execute(anaWs, APPLY_AWARENESS, { docId: quietDoc, update: toBase64(encodeAwarenessUpdate(anaAwareness, [anaAwareness.clientID])) });
    const first = collect<{ docAwareness: { update: string } }>(caiWs, DOC_AWARENESS, { docId: quietDoc });
    const firstAwareness = new Awareness(new Y.Doc());
    await until(() => {
      for (const v of first.values.splice(0)) applyAwarenessUpdate(firstAwareness, fromBase64(v.docAwareness.update), 'server');
      return firstAwareness.getStates().has(anaAwareness.clientID);
    }, 5000);
    expect(firstAwareness.getStates().get(anaAwareness.clientID)?.user).toEqual({ id: ana.id, name: 'Ana' });
    first.dispose();
    firstAwareness.destroy();
    anaAwareness.destroy();
    benAwareness.destroy();
    lateAwareness.destroy();
  }, 60_000);
});

describe.skipIf(!ownRedis)('a document subscriber across a Redis restart', () => {
  let redis: OwnRedis;
  let api: TestServer;
  const leftovers: { dispose(): Promise<void> | void }[] = [];

  beforeAll(async () => {
    redis = await startOwnRedis();
    api = await startTestServer('pglite', { env: { REDIS_URL: redis.url, DOC_COMPACT_EVERY: '5' } });
  });
  afterAll(async () => {
    for (const l of leftovers) await l.dispose();
    await api?.dispose();
    await redis?.dispose();
  });

  it('receives the updates stored while Redis was down as soon as it is back', async () => {
    const [ana, ben] = await Promise.all([signUp(api.url, 'Ana'), signUp(api.url, 'Ben')]);
    const roomId = (await gql(api.url, CREATE_ROOM, { input: { name: 'Outage', memberIds: [ben.id] } }, ana.token)).createRoom.id;
    const docId = (await gql(api.url, CREATE_DOCUMENT, { roomId, title: 'Outage' }, ana.token)).createDocument.id;
    const watcher = new DocEditor('B', api.wsUrl, ben.token, docId);
    leftovers.push(watcher);
    await watcher.connect();

    const doc = new Y.Doc();
    const text = doc.getText('content');
    const type = async (chars: string) => {
      const sv = Y.encodeStateVector(doc);
      text.insert(text.length, chars);
      const { body } = await http(api.url, APPLY_DOC_UPDATE, { docId, update: toBase64(Y.encodeStateAsUpdate(doc, sv)) }, ana.token);
      expect(body.errors).toBeUndefined();
    };
    await type('before ');
    await until(() => watcher.text.toString() === 'before ');

    await redis.kill();
    // Stored while the events cannot be published; enough of them to be compacted meanwhile.
    for (const word of ['one ', 'two ', 'three ', 'four ', 'five ', 'six ', 'seven ']) await type(word);
    expect(watcher.text.toString()).toBe('before ');
    await redis.restart();
    await until(() => watcher.text.toString() === text.toString(), 15_000);
    expect(watcher.errors).toEqual([]);
    await type('after');
    await until(() => watcher.text.toString() === 'before one two three four five six seven after', 5000);
  }, 60_000);
});
