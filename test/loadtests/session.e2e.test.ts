/**
 * The load tests' protocol modules against the real server: the same
 * GraphqlWsSession that k6 drives, here over a `ws` WebSocket, so the
 * protocol handling the load tests rely on is proven end to end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { classifyInterval, intervalStats } from '../../loadtests/lib/batches.ts';
import { deliveryLatencyMs, SeqTracker, stampBody } from '../../loadtests/lib/delivery.ts';
import {
  batchFrom,
  CREATE_ROOM,
  DASHBOARD,
  errorCode,
  JOIN_ROOM,
  messageFrom,
  MESSAGE_ADDED,
  PUBLISH_METRICS,
  SEND_MESSAGE,
  SIGN_IN,
  SIGN_UP,
} from '../../loadtests/lib/operations.ts';
import { LOADTEST_PASSWORD, metricKey, userEmail } from '../../loadtests/lib/plan.ts';
import { GRAPHQL_TRANSPORT_WS } from '../../loadtests/lib/protocol.ts';
import { GraphqlWsSession, type SessionEvent, type Step } from '../../loadtests/lib/session.ts';
import { gql, http, sleep, until } from '../helpers/client.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const RUN_ID = `e2e-${process.pid}`;
const PUBLISHER_EMAIL = `lt-publisher-${process.pid}@loadtest.example`;

/** A real socket driven by the session: what k6's connect() does with k6/websockets. */
interface Driven {
  ws: WebSocket;
  session: GraphqlWsSession;
  events: SessionEvent[];
  /** Frames the session sent, parsed, for assertions on the wire. */
  sent: Record<string, unknown>[];
  apply(step: Step): void;
  /** Resolves with the first event from `from` on that matches. */
  waitFor<T extends SessionEvent['type']>(type: T, match?: (e: Extract<SessionEvent, { type: T }>) => boolean, from?: number): Promise<Extract<SessionEvent, { type: T }>>;
}

function drive(wsUrl: string, session: GraphqlWsSession, protocol: string | null = GRAPHQL_TRANSPORT_WS): Driven {
  const ws = protocol === null ? new WebSocket(wsUrl) : new WebSocket(wsUrl, protocol);
  const driven: Driven = {
    ws,
    session,
    events: [],
    sent: [],
    apply(step) {
      for (const frame of step.send) {
        driven.sent.push(JSON.parse(frame));
        ws.send(frame);
      }
      driven.events.push(...step.events);
      if (step.close) ws.close(step.close.code, step.close.reason);
    },
    async waitFor(type, match = () => true, from = 0) {
      let found: SessionEvent | undefined;
      await until(
        () => (found = driven.events.slice(from).find((e) => e.type === type && match(e as never))) !== undefined,
        10_000,
        () => `no ${type} event; got ${JSON.stringify(driven.events)}`,
      );
      return found as never;
    },
  };
  ws.on('open', () => driven.apply(session.opened()));
  ws.on('message', (data) => driven.apply(session.received(String(data))));
  ws.on('close', (code, reason) => driven.apply(session.closed(code, reason.toString())));
  return driven;
}

interface User {
  id: string;
  token: string;
}

/** The k6 setup step's signUp-or-signIn, with the same documents. */
async function ensureUser(url: string, index: number): Promise<User> {
  const input = { email: userEmail(RUN_ID, index), name: `Load ${index}`, password: LOADTEST_PASSWORD };
  const up = await http<{ signUp: { token: string; user: { id: string } } }>(url, SIGN_UP, { input });
  if (up.body.data?.signUp) return { id: up.body.data.signUp.user.id, token: up.body.data.signUp.token };
  expect(errorCode(up.body)).toBe('CONFLICT');
  const inn = await gql<{ signIn: { token: string; user: { id: string } } }>(url, SIGN_IN, { input: { email: input.email, password: input.password } });
  return { id: inn.signIn.user.id, token: inn.signIn.token };
}

describe('load-test protocol modules against the server', () => {
  let t: TestServer;
  let ana: User;
  let ben: User;
  let roomId: string;
  const sockets: WebSocket[] = [];
  const open = (session: GraphqlWsSession, protocol?: string | null) => {
    const d = drive(t.wsUrl, session, protocol);
    sockets.push(d.ws);
    return d;
  };

  beforeAll(async () => {
    t = await startTestServer('pglite', { env: { METRICS_PUBLISHER_EMAILS: PUBLISHER_EMAIL } });
    [ana, ben] = await Promise.all([ensureUser(t.url, 0), ensureUser(t.url, 1)]);
    roomId = (await gql<{ createRoom: { id: string } }>(t.url, CREATE_ROOM, { input: { name: 'Load room' } }, ana.token)).createRoom.id;
    await gql(t.url, JOIN_ROOM, { roomId }, ben.token);
  });
  afterAll(async () => {
    for (const ws of sockets) ws.terminate();
    await t?.dispose();
  });

  it('signs in a user that already exists, as a rerun of setup does', async () => {
    const again = await ensureUser(t.url, 0);
    expect(again.id).toBe(ana.id);
  });

  it('init → ack → subscribe messageAdded → next after an HTTP send → complete', async () => {
    const d = open(new GraphqlWsSession({ token: ben.token }));
    // Subscribing before the ack is held by the session and sent after it.
    const { id, step } = d.session.subscribe({ query: MESSAGE_ADDED, variables: { roomId } });
    d.apply(step);
    await d.waitFor('ack');
    expect(d.sent[0]).toEqual({ type: 'connection_init', payload: { authorization: `Bearer ${ben.token}` } });
    expect(d.sent[1]).toMatchObject({ type: 'subscribe', id });
    // graphql-transport-ws does not confirm a subscribe; give the server a moment to register it.
    await sleep(200);

    const seqs = new SeqTracker();
    for (let n = 1; n <= 3; n++) {
      const body = stampBody({ sentAt: Date.now(), from: 'u0', n });
      const from = d.events.length;
      const sent = await gql<{ sendMessage: { id: string; seq: number } }>(t.url, SEND_MESSAGE, { input: { roomId, body, clientId: `${RUN_ID}-${n}` } }, ana.token);
      const next = await d.waitFor('next', (e) => e.id === id, from);
      const message = messageFrom(next.result.data);
      expect(message).toMatchObject({ id: sent.sendMessage.id, seq: sent.sendMessage.seq, body, roomId });
      const latency = deliveryLatencyMs(message!.body, Date.now());
      expect(latency).toBeGreaterThanOrEqual(0);
      expect(latency).toBeLessThan(5_000);
      expect(seqs.observe(roomId, message!.seq)).toEqual({ missed: 0, duplicate: false });
    }

    d.apply(d.session.complete(id));
    expect(d.sent.at(-1)).toEqual({ type: 'complete', id });
    const before = d.events.filter((e) => e.type === 'next').length;
    await gql(t.url, SEND_MESSAGE, { input: { roomId, body: 'after complete', clientId: `${RUN_ID}-after` } }, ana.token);
    // Proves the server stopped sending rather than the session dropping: a fresh operation still works.
    const probe = d.session.subscribe({ query: `query { me { id } }` });
    d.apply(probe.step);
    const answer = await d.waitFor('next', (e) => e.id === probe.id);
    expect(answer.result.data).toEqual({ me: { id: ben.id } });
    await d.waitFor('complete', (e) => e.id === probe.id);
    expect(d.events.filter((e) => e.type === 'next').length).toBe(before + 1);
    expect(d.events.some((e) => e.type === 'protocol_error')).toBe(false);

    d.session.closing();
    d.ws.close(1000, 'done');
    expect(await d.waitFor('closed')).toMatchObject({ code: 1000, expected: true });
  });

  it('ping → pong, echoing the payload', async () => {
    const d = open(new GraphqlWsSession({ token: ana.token }));
    await d.waitFor('ack');
    d.apply(d.session.ping({ sentAt: 123 }));
    expect(await d.waitFor('pong')).toEqual({ type: 'pong', payload: { sentAt: 123 } });
  });

  it('sees a refused subscription as a next carrying the error, then complete, the socket staying up', async () => {
    const outsider = await ensureUser(t.url, 2);
    const d = open(new GraphqlWsSession({ token: outsider.token }));
    await d.waitFor('ack');
    const { id, step } = d.session.subscribe({ query: MESSAGE_ADDED, variables: { roomId } });
    d.apply(step);
    await d.waitFor('complete', (e) => e.id === id);
    // The resolver refuses, so graphql-ws sends the error as a result (k6's connect() counts these as operation errors).
    const next = await d.waitFor('next', (e) => e.id === id);
    expect(next.result.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(d.session.activeIds).toEqual([]);
    expect(d.ws.readyState).toBe(WebSocket.OPEN);

    // An invalid document is refused at subscribe instead: an error frame.
    const invalid = d.session.subscribe({ query: 'subscription { noSuchField }' });
    d.apply(invalid.step);
    const error = await d.waitFor('error', (e) => e.id === invalid.id);
    expect(error.errors[0]?.message).toMatch(/noSuchField/);
    expect(d.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('sees the refusals as unexpected closes: no token 4401, bad token 4403', async () => {
    const none = open(new GraphqlWsSession());
    expect(await none.waitFor('closed')).toMatchObject({ code: 4401, expected: false });
    const bad = open(new GraphqlWsSession({ token: 'not-a-token' }));
    expect(await bad.waitFor('closed')).toMatchObject({ code: 4403, expected: false });
    expect(bad.events.some((e) => e.type === 'ack')).toBe(false);
  });

  it('needs the graphql-transport-ws subprotocol (why the k6 scripts send the header)', async () => {
    const d = open(new GraphqlWsSession({ token: ana.token }), null);
    expect(await d.waitFor('closed')).toMatchObject({ code: 4406, expected: false });
    expect(d.events.some((e) => e.type === 'ack')).toBe(false);
  });

  it('measures dashboard batches about every 250 ms while a publisher pushes 100 updates/s', async () => {
    const publisher = await http<{ signUp: { token: string } }>(t.url, SIGN_UP, { input: { email: PUBLISHER_EMAIL, name: 'Publisher', password: LOADTEST_PASSWORD } });
    const token = publisher.body.data!.signUp.token;
    const keys = [metricKey(0), metricKey(1), metricKey(2)];
    const d = open(new GraphqlWsSession({ token: ana.token }));
    await d.waitFor('ack');
    const { id, step } = d.session.subscribe({ query: DASHBOARD, variables: { keys } });
    d.apply(step);
    await sleep(200);

    const arrivals: number[] = [];
    const built: number[] = [];
    const seen = new Set<string>();
    let read = 0;
    const collect = () => {
      for (; read < d.events.length; read++) {
        const e = d.events[read]!;
        if (e.type !== 'next' || e.id !== id) continue;
        const batch = batchFrom(e.result.data);
        if (!batch) continue;
        arrivals.push(Date.now());
        built.push(Date.parse(batch.at));
        for (const u of batch.updates) seen.add(u.key);
      }
    };
    // 100 updates/s for 2 s, in 10 ms steps, as the k6 publisher does with UPDATES_PER_REQUEST=1.
    for (let i = 0; i < 200; i++) {
      const res = await http<{ publishMetrics: number }>(t.url, PUBLISH_METRICS, { input: [{ key: keys[i % keys.length], value: i, at: new Date().toISOString() }] }, token);
      expect(res.body.data?.publishMetrics).toBe(1);
      collect();
      await sleep(10);
    }
    await sleep(400);
    collect();

    expect(seen).toEqual(new Set(keys));
    const stats = intervalStats(built.slice(1));
    expect(stats, JSON.stringify(built)).toBeDefined();
    // Merged, not one frame per update: 200 updates reach the dashboard as a handful of batches.
    expect(arrivals.length).toBeLessThan(20);
    expect(arrivals.length).toBeGreaterThanOrEqual(5);
    expect(stats!.min).toBeGreaterThanOrEqual(250 * 0.95);
    expect(classifyInterval(stats!.p50, 250)).toBe('on_time');
  });
});
