import { describe, expect, it } from 'vitest';
import { CloseCodes, closeCodeName, decodeServerMessage, encodeClientMessage, ProtocolError } from '../../loadtests/lib/protocol.ts';
import { GraphqlWsSession, type SessionEvent } from '../../loadtests/lib/session.ts';

const frames = (send: string[]) => send.map((s) => JSON.parse(s) as Record<string, unknown>);
const types = (events: SessionEvent[]) => events.map((e) => e.type);

describe('graphql-transport-ws messages', () => {
  it('encodes client frames as JSON', () => {
    expect(JSON.parse(encodeClientMessage({ type: 'subscribe', id: '1', payload: { query: '{ me { id } }' } }))).toEqual({
      type: 'subscribe',
      id: '1',
      payload: { query: '{ me { id } }' },
    });
  });

  it('decodes every server frame type', () => {
    expect(decodeServerMessage('{"type":"connection_ack"}')).toEqual({ type: 'connection_ack' });
    expect(decodeServerMessage('{"type":"connection_ack","payload":{"a":1}}')).toEqual({ type: 'connection_ack', payload: { a: 1 } });
    expect(decodeServerMessage('{"type":"ping","payload":null}')).toEqual({ type: 'ping' });
    expect(decodeServerMessage('{"type":"pong","payload":{"t":5}}')).toEqual({ type: 'pong', payload: { t: 5 } });
    expect(decodeServerMessage('{"type":"next","id":"1","payload":{"data":{"x":1}}}')).toEqual({ type: 'next', id: '1', payload: { data: { x: 1 } } });
    expect(decodeServerMessage('{"type":"error","id":"1","payload":[{"message":"no"}]}')).toEqual({ type: 'error', id: '1', payload: [{ message: 'no' }] });
    expect(decodeServerMessage('{"type":"complete","id":"1"}')).toEqual({ type: 'complete', id: '1' });
  });

  it('refuses frames that break the protocol', () => {
    for (const bad of [
      'not json',
      '[]',
      '{"type":"nope"}',
      '{"type":"next","payload":{}}',
      '{"type":"next","id":"1","payload":[]}',
      '{"type":"error","id":"1","payload":[]}',
      '{"type":"error","id":"1","payload":[{"msg":"x"}]}',
      '{"type":"complete","id":""}',
      '{"type":"ping","payload":"x"}',
    ]) {
      expect(() => decodeServerMessage(bad), bad).toThrow(ProtocolError);
    }
  });

  it('names close codes', () => {
    expect(closeCodeName(4401)).toBe('Unauthorized');
    expect(closeCodeName(1012)).toBe('ServiceRestart');
    expect(closeCodeName(4999)).toBe('code_4999');
  });
});

describe('GraphqlWsSession', () => {
  it('authenticates in connection_init with the bearer token', () => {
    const session = new GraphqlWsSession({ token: 'abc', connectionParams: { client: 'k6' } });
    const step = session.opened();
    expect(frames(step.send)).toEqual([{ type: 'connection_init', payload: { client: 'k6', authorization: 'Bearer abc' } }]);
    expect(session.state).toBe('awaiting_ack');
  });

  it('holds subscriptions until the ack, then sends them in order', () => {
    const session = new GraphqlWsSession({ token: 't' });
    session.opened();
    const a = session.subscribe({ query: 'subscription { a }' });
    const b = session.subscribe({ query: 'subscription { b }' }, 'custom');
    expect(a.step.send).toEqual([]);
    expect(b.id).toBe('custom');
    const ack = session.received('{"type":"connection_ack"}');
    expect(types(ack.events)).toEqual(['ack']);
    expect(frames(ack.send)).toEqual([
      { type: 'subscribe', id: a.id, payload: { query: 'subscription { a }' } },
      { type: 'subscribe', id: 'custom', payload: { query: 'subscription { b }' } },
    ]);
    expect(session.state).toBe('ready');
    expect(session.activeIds.sort()).toEqual([a.id, 'custom'].sort());
  });

  it('turns next, error and complete into events for known operations only', () => {
    const session = new GraphqlWsSession();
    session.opened();
    session.received('{"type":"connection_ack"}');
    const { id } = session.subscribe({ query: 'subscription { a }' });
    expect(session.received(`{"type":"next","id":"${id}","payload":{"data":{"a":1}}}`).events).toEqual([{ type: 'next', id, result: { data: { a: 1 } } }]);
    // A result for an id the client never used (or already completed) is dropped, not an error.
    expect(session.received('{"type":"next","id":"99","payload":{"data":{}}}')).toEqual({ send: [], events: [] });
    expect(session.received(`{"type":"complete","id":"${id}"}`).events).toEqual([{ type: 'complete', id }]);
    expect(session.activeIds).toEqual([]);

    const failing = session.subscribe({ query: 'subscription { b }' });
    expect(session.received(`{"type":"error","id":"${failing.id}","payload":[{"message":"FORBIDDEN"}]}`).events).toEqual([
      { type: 'error', id: failing.id, errors: [{ message: 'FORBIDDEN' }] },
    ]);
  });

  it('completes active operations on the wire and queued ones silently', () => {
    const session = new GraphqlWsSession();
    session.opened();
    const queued = session.subscribe({ query: 'subscription { a }' });
    expect(session.complete(queued.id)).toEqual({ send: [], events: [] });
    expect(session.received('{"type":"connection_ack"}').send).toEqual([]);
    const live = session.subscribe({ query: 'subscription { b }' });
    expect(frames(session.complete(live.id).send)).toEqual([{ type: 'complete', id: live.id }]);
    expect(session.complete(live.id).send).toEqual([]);
    expect(session.received(`{"type":"next","id":"${live.id}","payload":{"data":{}}}`).events).toEqual([]);
  });

  it('answers ping with pong (echoing the payload) and reports pongs', () => {
    const session = new GraphqlWsSession();
    session.opened();
    const ping = session.received('{"type":"ping","payload":{"n":1}}');
    expect(frames(ping.send)).toEqual([{ type: 'pong', payload: { n: 1 } }]);
    expect(frames(session.ping().send)).toEqual([{ type: 'ping' }]);
    expect(session.received('{"type":"pong"}').events).toEqual([{ type: 'pong' }]);
  });

  it('refuses a reused operation id instead of letting the server close the socket', () => {
    const session = new GraphqlWsSession();
    session.opened();
    session.received('{"type":"connection_ack"}');
    session.subscribe({ query: 'subscription { a }' }, 'x');
    const again = session.subscribe({ query: 'subscription { a }' }, 'x');
    expect(again.step.send).toEqual([]);
    expect(types(again.step.events)).toEqual(['protocol_error']);
  });

  it('asks to close with 4400 on protocol violations', () => {
    for (const input of ['garbage', '{"type":"next","id":"1","payload":{}}']) {
      const session = new GraphqlWsSession();
      session.opened();
      const step = session.received(input);
      expect(types(step.events)).toEqual(['protocol_error']);
      expect(step.close?.code).toBe(CloseCodes.BadRequest);
    }
    const twice = new GraphqlWsSession();
    twice.opened();
    twice.received('{"type":"connection_ack"}');
    expect(twice.received('{"type":"connection_ack"}').close?.code).toBe(4400);
  });

  it('tells expected closes (own close, server drain) from failures', () => {
    const auth = new GraphqlWsSession();
    auth.opened();
    expect(auth.closed(4403, 'Forbidden').events).toEqual([{ type: 'closed', code: 4403, reason: 'Forbidden', expected: false }]);
    expect(auth.state).toBe('closed');
    expect(auth.closed(1000).events).toEqual([]);

    const draining = new GraphqlWsSession();
    draining.opened();
    expect(draining.closed(1012).events).toEqual([{ type: 'closed', code: 1012, reason: '', expected: true }]);

    const own = new GraphqlWsSession();
    own.opened();
    own.closing();
    expect(own.closed(1000, 'done').events).toEqual([{ type: 'closed', code: 1000, reason: 'done', expected: true }]);
    expect(own.received('{"type":"connection_ack"}')).toEqual({ send: [], events: [] });
    expect(own.subscribe({ query: '{ a }' }).step.send).toEqual([]);
  });
});
