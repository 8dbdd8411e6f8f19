import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, gql, http, signUp, type TestUser } from './helpers/client.ts';
import { postgresAvailable } from './helpers/postgres.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const pgUp = await postgresAvailable();
const SEND = `mutation ($input: SendMessageInput!) { sendMessage(input: $input) { id seq } }`;

describe.skipIf(!pgUp)('sendMessage when the room stays locked too long', () => {
  let t: TestServer;
  let ana: TestUser;
  let roomId: string;

  beforeAll(async () => {
    t = await startTestServer('postgres');
    t.server.services.limits.sendTimeoutMs = 1000;
    ana = await signUp(t.url, 'Ana');
    roomId = (await gql(t.url, `mutation { createRoom(input: { name: "Locked" }) { id } }`, {}, ana.token)).createRoom.id;
  });
  afterAll(async () => t?.dispose());

  it('answers the retryable UNAVAILABLE, stores nothing, and the retry with the same clientId stores it once', async () => {
    // Another session holds the room's row lock, as a long transaction would.
    const locker = new pg.Client({ connectionString: t.config.DATABASE_URL });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('SELECT 1 FROM "Room" WHERE id = $1 FOR UPDATE', [roomId]);
    const input = { roomId, body: 'patience', clientId: 'locked-1' };
    try {
      const refused = await http(t.url, SEND, { input }, ana.token);
      expect(errorCode(refused.body)).toBe('UNAVAILABLE');
      expect(refused.body.errors?.[0]?.extensions?.retryable).toBe(true);
      expect(await t.server.services.db.message.count({ where: { roomId } })).toBe(0);
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
    }
    const retried = await gql(t.url, SEND, { input }, ana.token);
    expect(retried.sendMessage.seq).toBe(1); // no seq was burnt by the failed attempt
    const again = await gql(t.url, SEND, { input }, ana.token);
    expect(again.sendMessage.id).toBe(retried.sendMessage.id);
    expect(await t.server.services.db.message.count({ where: { roomId } })).toBe(1);
  });
});
