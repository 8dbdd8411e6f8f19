import { CombinedError } from '@urql/core';
import { GraphQLError } from 'graphql';
import { fromBase64, toBase64 } from 'lib0/buffer';
import * as awarenessProtocol from 'y-protocols/awareness';
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { createConnectionStore, type ConnectionStatus } from '../../web/src/client/connection-state.ts';
import { memoryPersistence } from '../../web/src/docs/doc-persistence.ts';
import { createDocProvider, DOC_TEXT, type DocProvider } from '../../web/src/docs/doc-provider.ts';
import { PendingUpdates } from '../../web/src/docs/pending-updates.ts';
import { outcomeOf } from '../../web/src/docs/realtime-transport.ts';
import type { DocTransport, DocUpdateMessage, SendOutcome, SubscriptionHandlers } from '../../web/src/docs/transport.ts';
import { colorIndex, PEER_COLORS, userColor } from '../../web/src/docs/user-color.ts';
import { until } from '../helpers/client.ts';

/**
 * The provider's own bookkeeping (what is buffered, when it is sent, what is
 * dropped) over an in-memory transport. How it behaves against the real API
 * is covered in test/client/doc-provider.e2e.test.ts.
 */

function textUpdate(edit: (text: Y.Text) => void, clientID?: number): Uint8Array {
  const doc = new Y.Doc();
  if (clientID !== undefined) doc.clientID = clientID;
  let update: Uint8Array | undefined;
  doc.on('update', (u: Uint8Array) => (update = update ? Y.mergeUpdates([update, u]) : u));
  edit(doc.getText(DOC_TEXT));
  return update!;
}

function textOf(updates: Uint8Array[]): string {
  const doc = new Y.Doc();
  for (const u of updates) Y.applyUpdate(doc, u);
  return doc.getText(DOC_TEXT).toString();
}

describe('PendingUpdates', () => {
  it('drops a batch only when it is acknowledged, and keeps what arrived meanwhile', () => {
    const doc = new Y.Doc();
    const updates: Uint8Array[] = [];
    doc.on('update', (u: Uint8Array) => updates.push(u));
    const text = doc.getText(DOC_TEXT);
    const pending = new PendingUpdates();

    text.insert(0, 'ab');
    text.insert(2, 'cd');
    for (const u of updates.splice(0)) pending.add(u);
    const first = pending.take()!;
    expect(first.count).toBe(2);
    expect(pending.take()).toBeNull(); // one batch at a time

    text.insert(4, 'ef');
    for (const u of updates.splice(0)) pending.add(u);
    pending.release(); // the send failed
    expect(pending.size).toBe(3);
    const retry = pending.take()!;
    expect(retry.count).toBe(3);
    expect(textOf([retry.update])).toBe('abcdef');

    text.insert(6, 'gh');
    for (const u of updates.splice(0)) pending.add(u);
    pending.ack();
    expect(pending.size).toBe(1);
    expect(textOf([retry.update, pending.take()!.update])).toBe('abcdefgh');
  });

  it('splits batches by size and count, but always takes at least one update', () => {
    const pending = new PendingUpdates();
    const big = textUpdate((t) => t.insert(0, 'x'.repeat(1000)), 1);
    const small = textUpdate((t) => t.insert(0, 'y'), 2);
    pending.add(big);
    pending.add(small);
    expect(pending.take(10)!.count).toBe(1);
    pending.release();
    expect(pending.take(Infinity, 1)!.count).toBe(1);
    pending.release();
    expect(pending.take(5000)!.count).toBe(2);
  });

  it('compacts a long buffer without touching the batch that is out', () => {
    const doc = new Y.Doc();
    const pending = new PendingUpdates(10);
    doc.on('update', (u: Uint8Array) => pending.add(u));
    const text = doc.getText(DOC_TEXT);
    for (let i = 0; i < 5; i++) text.insert(text.length, String(i));
    const out = pending.take()!;
    expect(out.count).toBe(5);
    for (let i = 5; i < 40; i++) text.insert(text.length, String(i % 10));
    expect(pending.size).toBeLessThan(20);
    pending.ack();
    const rest = pending.take()!;
    expect(textOf([out.update, rest.update])).toBe(text.toString());
    pending.ack();
    expect(pending.size).toBe(0);
    expect(pending.byteLength).toBe(0);
  });
});

describe('what the realtime transport makes of an API answer', () => {
  const apiError = (code: string, extensions: Record<string, unknown> = {}) =>
    new CombinedError({ graphQLErrors: [new GraphQLError(`failed: ${code}`, { extensions: { code, ...extensions } })] });

  it('retries when the API was not reached or said "not now", and gives up on a refusal', () => {
    expect(outcomeOf(undefined)).toEqual({ ok: true });
    expect(outcomeOf(new CombinedError({ networkError: new TypeError('fetch failed') }))).toEqual({ ok: false, retry: true });
    expect(outcomeOf(apiError('RATE_LIMITED', { retryAfter: 3 }))).toEqual({ ok: false, retry: true, afterMs: 3000 });
    expect(outcomeOf(apiError('UNAVAILABLE', { retryable: true }))).toEqual({ ok: false, retry: true, afterMs: 0 });
    expect(outcomeOf(apiError('PAYLOAD_TOO_LARGE', { limit: 262144 }))).toEqual({ ok: false, retry: false, message: 'failed: PAYLOAD_TOO_LARGE', code: 'PAYLOAD_TOO_LARGE' });
    expect(outcomeOf(apiError('FORBIDDEN'))).toMatchObject({ ok: false, retry: false, code: 'FORBIDDEN' });
  });
});

describe('user colours', () => {
  it('are stable per user id and come from the palette', () => {
    expect(colorIndex('user-1')).toBe(colorIndex('user-1'));
    const used = new Set(Array.from({ length: 50 }, (_, i) => colorIndex(`cm${i}xyz`)));
    expect(used.size).toBeGreaterThan(4);
    expect(PEER_COLORS).toContain(userColor('abc').color);
    expect(userColor('abc').colorLight).toBe(`${userColor('abc').color}33`);
  });
});

/** An in-memory API: stores every update it accepts; the test decides what each send returns. */
function fakeTransport(initial: ConnectionStatus = 'connecting') {
  const connection = createConnectionStore({ status: initial, queued: 0 });
  const stored: Uint8Array[] = [];
  const sent: Uint8Array[] = [];
  const awarenessSent: Uint8Array[] = [];
  const stateVectors: string[] = [];
  let updates: { stateVector: () => string; handlers: SubscriptionHandlers<DocUpdateMessage> } | undefined;
  let updateSubscriptions = 0;
  let awareness: SubscriptionHandlers<string> | undefined;
  let answer: (update: Uint8Array) => SendOutcome | Promise<SendOutcome> = () => ({ ok: true });

  /** Subscribes again (as after a reconnect) and sends the catch-up for the state vector read now. */
  function resubscribe() {
    const sv = updates!.stateVector();
    stateVectors.push(sv);
    const all = stored.length ? Y.mergeUpdates(stored) : Y.encodeStateAsUpdate(new Y.Doc());
    updates!.handlers.next({ update: toBase64(Y.diffUpdate(all, fromBase64(sv))), sync: true });
  }

  const transport: DocTransport = {
    connection,
    subscribeUpdates(_docId, stateVector, handlers) {
      updateSubscriptions++;
      updates = { stateVector, handlers };
      return () => (updates = undefined);
    },
    subscribeAwareness(_docId, handlers) {
      awareness = handlers;
      return () => (awareness = undefined);
    },
    async applyUpdate(_docId, update) {
      const bytes = fromBase64(update);
      sent.push(bytes);
      const outcome = await answer(bytes);
      if (outcome.ok) stored.push(bytes);
      return outcome;
    },
    async applyAwareness(_docId, update) {
      awarenessSent.push(fromBase64(update));
      return { ok: true };
    },
  };
  return {
    transport,
    stored,
    sent,
    awarenessSent,
    stateVectors,
    setStatus: (status: ConnectionStatus) => connection.set({ status }),
    connect() {
      connection.set({ status: 'connected' });
      resubscribe();
    },
    answer: (fn: typeof answer) => (answer = fn),
    /** Delivers a live update from another client. */
    push: (update: Uint8Array) => {
      stored.push(update);
      updates?.handlers.next({ update: toBase64(update), sync: false });
    },
    awarenessFrom: (update: Uint8Array) => awareness?.next(toBase64(update)),
    /** The API ends the `docUpdates` subscription with an error. */
    failUpdates: (error: { message: string; code?: string; retryable?: boolean }) => {
      const handlers = updates!.handlers;
      updates = undefined;
      handlers.error(error);
    },
    /** Sends the catch-up to the current subscription (as the API does when it starts). */
    catchUp: () => resubscribe(),
    get updateSubscriptions() {
      return updateSubscriptions;
    },
    get subscribed() {
      return updates !== undefined;
    },
  };
}

const providers: DocProvider[] = [];
function provider(transport: DocTransport, extra: Partial<Parameters<typeof createDocProvider>[0]> = {}) {
  const p = createDocProvider({ docId: 'd1', transport, minSendIntervalMs: 0, retry: { schedule: [20], minJitterMs: 1 }, ...extra });
  providers.push(p);
  return p;
}
afterEach(() => {
  for (const p of providers.splice(0)) p.destroy();
});

describe('DocProvider over an in-memory transport', () => {
  it('keeps offline edits and sends them, merged, once connected; synced when all are stored', async () => {
    const api = fakeTransport('offline');
    const p = provider(api.transport);
    expect(p.getSnapshot().status).toBe('connecting');
    p.text.insert(0, 'hello');
    p.text.insert(5, ' world');
    await Promise.resolve();
    expect(api.sent).toHaveLength(0);
    expect(p.getSnapshot().pendingUpdates).toBe(2);

    api.connect();
    await until(() => p.getSnapshot().status === 'synced');
    expect(api.sent).toHaveLength(1);
    expect(textOf(api.stored)).toBe('hello world');
    expect(p.getSnapshot().pendingUpdates).toBe(0);
  });

  it('resends after a failed or unanswered send and drops nothing typed meanwhile', async () => {
    const api = fakeTransport();
    const p = provider(api.transport);
    api.connect();
    let failNext = 2;
    api.answer(() => (failNext-- > 0 ? { ok: false, retry: true } : { ok: true }));
    p.text.insert(0, 'a');
    await until(() => api.sent.length === 1);
    p.text.insert(1, 'b');
    p.text.insert(2, 'c');
    await until(() => p.getSnapshot().status === 'synced');
    expect(api.sent.length).toBeGreaterThanOrEqual(3);
    expect(textOf(api.stored)).toBe('abc');
    // The retries carried the first edit again, merged with the later ones.
    expect(textOf([api.sent.at(-1)!])).toBe('abc');
  });

  it('goes offline with pending edits, and after a reconnect catches up from its current state vector', async () => {
    const api = fakeTransport();
    const p = provider(api.transport);
    api.connect();
    p.text.insert(0, 'one ');
    await until(() => p.getSnapshot().status === 'synced');

    api.setStatus('reconnecting');
    expect(p.getSnapshot().status).toBe('offline');
    p.text.insert(p.text.length, 'two ');
    await Promise.resolve();
    expect(p.getSnapshot()).toMatchObject({ status: 'offline', pendingUpdates: 1 });
    // Someone else edits while this client is away.
    const other = new Y.Doc();
    Y.applyUpdate(other, Y.mergeUpdates(api.stored));
    let theirs: Uint8Array | undefined;
    other.on('update', (u: Uint8Array) => (theirs = u));
    other.getText(DOC_TEXT).insert(0, 'zero ');
    api.stored.push(theirs!);

    api.connect();
    await until(() => p.getSnapshot().status === 'synced');
    expect(api.stateVectors).toHaveLength(2);
    // The second catch-up was asked from the state vector at reconnect time.
    expect(Y.decodeStateVector(fromBase64(api.stateVectors[1]!)).get(p.doc.clientID)).toBe(8);
    expect(p.text.toString()).toBe('zero one two ');
    expect(textOf(api.stored)).toBe('zero one two ');
  });

  it('applies remote updates without sending them back', async () => {
    const api = fakeTransport();
    const p = provider(api.transport);
    api.connect();
    api.push(textUpdate((t) => t.insert(0, 'from afar'), 99));
    expect(p.text.toString()).toBe('from afar');
    await new Promise((r) => setTimeout(r, 30));
    expect(api.sent).toHaveLength(0);
    expect(p.getSnapshot().status).toBe('synced');
  });

  it('finds the refused update in a merged batch, and stops there with the API message', async () => {
    const api = fakeTransport('offline');
    const p = provider(api.transport);
    p.text.insert(0, 'ok ');
    p.text.insert(3, 'TOO BIG');
    p.text.insert(10, ' fine');
    api.answer((u) =>
      textOf([u]).includes('TOO BIG') || (api.stored.length > 0 && textOf([...api.stored, u]).includes('TOO BIG'))
        ? { ok: false, retry: false, message: 'The update is too large', code: 'PAYLOAD_TOO_LARGE' }
        : { ok: true },
    );
    api.connect();
    await until(() => p.getSnapshot().status === 'error');
    expect(p.getSnapshot()).toMatchObject({ error: 'The update is too large', errorCode: 'PAYLOAD_TOO_LARGE', pendingUpdates: 2 });
    expect(textOf(api.stored)).toBe('ok ');
  });

  it('subscribes again after a retryable error (UNAVAILABLE), and stops on any other', async () => {
    const api = fakeTransport();
    const p = provider(api.transport);
    api.connect();
    await until(() => p.getSnapshot().status === 'synced');
    api.failUpdates({ message: 'Document editing is temporarily unavailable', code: 'UNAVAILABLE', retryable: true });
    expect(p.getSnapshot().status).toBe('syncing');
    await until(() => api.updateSubscriptions === 2);
    api.catchUp();
    expect(p.getSnapshot().status).toBe('synced');

    api.failUpdates({ message: 'Not a member of this room', code: 'FORBIDDEN' });
    expect(p.getSnapshot()).toMatchObject({ status: 'error', errorCode: 'FORBIDDEN' });
    await new Promise((r) => setTimeout(r, 50));
    expect(api.updateSubscriptions).toBe(2);
  });

  it('sends content the doc held before the provider attached', async () => {
    const doc = new Y.Doc();
    doc.getText(DOC_TEXT).insert(0, 'restored');
    const api = fakeTransport();
    provider(api.transport, { doc });
    api.connect();
    await until(() => api.stored.length === 1);
    expect(textOf(api.stored)).toBe('restored');
  });
});

describe('DocProvider persistence', () => {
  it('keeps offline edits across a reload: shown at once, sent once connected', async () => {
    const saved = memoryPersistence();
    const first = fakeTransport('offline');
    const before = provider(first.transport, { persistence: saved, saveDelayMs: 5 });
    await new Promise((r) => setTimeout(r, 10)); // restored (nothing saved yet)
    before.text.insert(0, 'typed offline');
    await until(() => saved.map.get('d1')?.pending != null);
    before.destroy(); // the page is closed

    const api = fakeTransport('offline');
    const after = provider(api.transport, { persistence: saved, saveDelayMs: 5 });
    await until(() => after.text.toString() === 'typed offline');
    await until(() => after.getSnapshot().pendingUpdates === 1);
    api.connect();
    await until(() => after.getSnapshot().status === 'synced');
    expect(textOf(api.stored)).toBe('typed offline');
    // Once confirmed, the saved copy has no pending edits left, but still the text.
    await until(() => saved.map.get('d1')?.pending === null);
    expect(textOf([saved.map.get('d1')!.state])).toBe('typed offline');
  });

  it('does not overwrite saved edits before they are restored', async () => {
    const saved = memoryPersistence();
    const doc = new Y.Doc();
    doc.getText(DOC_TEXT).insert(0, 'kept');
    await saved.save('d1', { state: Y.encodeStateAsUpdate(doc), pending: Y.encodeStateAsUpdate(doc) });
    let release!: () => void;
    const slow = { ...saved, load: async (id: string) => (await new Promise<void>((r) => (release = r)), saved.load(id)) };
    const api = fakeTransport();
    const p = provider(api.transport, { persistence: slow, saveDelayMs: 1 });
    api.connect();
    api.push(textUpdate((t) => t.insert(0, 'remote '), 7));
    await new Promise((r) => setTimeout(r, 20));
    expect(saved.map.get('d1')!.pending).not.toBeNull();
    release();
    await until(() => textOf(api.stored).includes('kept'));
    await until(() => p.getSnapshot().status === 'synced');
    expect(p.text.toString()).toMatch(/^(kept)?remote (kept)?$/);
  });
});

describe('DocProvider awareness', () => {
  it('publishes the local user with its colour, throttles cursor moves, and publishes null on destroy', async () => {
    const api = fakeTransport();
    const p = provider(api.transport, { user: { id: 'u1', name: 'Ana' }, awarenessThrottleMs: 80 });
    api.connect();
    await until(() => api.awarenessSent.length === 1);
    for (let i = 0; i < 10; i++) p.awareness.setLocalStateField('cursor', { i });
    await new Promise((r) => setTimeout(r, 40));
    expect(api.awarenessSent.length).toBeLessThanOrEqual(2);
    await until(() => api.awarenessSent.length === 2);
    const other = new awarenessProtocol.Awareness(new Y.Doc());
    awarenessProtocol.applyAwarenessUpdate(other, api.awarenessSent.at(-1)!, null);
    expect(other.getStates().get(p.doc.clientID)).toEqual({ user: { id: 'u1', name: 'Ana', ...userColor('u1') }, cursor: { i: 9 } });

    p.destroy();
    awarenessProtocol.applyAwarenessUpdate(other, api.awarenessSent.at(-1)!, null);
    expect(other.getStates().has(p.doc.clientID)).toBe(false);
    other.destroy();
  });

  it('colours collaborators by their id, and forgets them while offline until the server sends them again', async () => {
    const api = fakeTransport();
    const p = provider(api.transport, { user: { id: 'u1', name: 'Ana' } });
    api.connect();
    const ben = new awarenessProtocol.Awareness(new Y.Doc());
    // As the API relays it: `user` replaced by the sender's { id, name }.
    ben.setLocalState({ user: { id: 'u2', name: 'Ben' }, cursor: null });
    const full = awarenessProtocol.encodeAwarenessUpdate(ben, [ben.clientID]);
    api.awarenessFrom(full);
    expect(p.awareness.getStates().get(ben.clientID)?.user).toEqual({ id: 'u2', name: 'Ben', ...userColor('u2') });

    api.setStatus('offline');
    expect(p.awareness.getStates().has(ben.clientID)).toBe(false);
    const before = api.awarenessSent.length;
    api.connect();
    api.awarenessFrom(full);
    expect(p.awareness.getStates().has(ben.clientID)).toBe(true);
    // And this client's own state goes out again for the new connection.
    await until(() => api.awarenessSent.length > before);
    ben.destroy();
  });
});
