import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataDirLockedError } from '../api/db/data-dir-lock.ts';
import { openDatabase } from '../api/db/index.ts';
import { createLogger } from '../api/logger.ts';
import { gql, signUp } from './helpers/client.ts';
import { startTestServer } from './helpers/server.ts';

const HISTORY = `query ($id: ID!) { room(id: $id) { lastSeq messages(last: 50) { edges { node { seq body } } } } }`;

describe('embedded default (PGlite in the data folder)', () => {
  const folders: string[] = [];
  afterAll(async () => {
    for (const dir of folders) await rm(dir, { recursive: true, force: true });
  });

  it('keeps history, accounts and tokens across a restart on the same folder', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'rt-restart-'));
    folders.push(dataDir);
    const first = await startTestServer('pglite', { dataDir });
    const ana = await signUp(first.url, 'Ana');
    const room = await gql(first.url, `mutation { createRoom(input: { name: "Kept" }) { id } }`, {}, ana.token);
    const roomId = room.createRoom.id;
    for (const body of ['one', 'two', 'three']) {
      await gql(first.url, `mutation ($i: SendMessageInput!) { sendMessage(input: $i) { seq } }`, { i: { roomId, body, clientId: body } }, ana.token);
    }
    await first.dispose();

    const second = await startTestServer('pglite', { dataDir });
    try {
      // The development signing secret was kept in the folder, so the old token still works.
      const history = await gql(second.url, HISTORY, { id: roomId }, ana.token);
      expect(history.room.messages.edges.map((e: any) => [e.node.seq, e.node.body])).toEqual([
        [1, 'one'],
        [2, 'two'],
        [3, 'three'],
      ]);
      const next = await gql(second.url, `mutation ($i: SendMessageInput!) { sendMessage(input: $i) { seq } }`, { i: { roomId, body: 'four', clientId: 'four' } }, ana.token);
      expect(next.sendMessage.seq).toBe(4);
      const signIn = await gql(second.url, `mutation ($i: SignInInput!) { signIn(input: $i) { user { id } } }`, {
        i: { email: ana.email, password: 'correct horse battery' },
      });
      expect(signIn.signIn.user.id).toBe(ana.id);
    } finally {
      await second.dispose();
    }
  });

  it('refuses a second opener of a folder in use with a clear error, and frees it on stop', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'rt-lock-'));
    folders.push(dataDir);
    const running = await startTestServer('pglite', { dataDir });
    const log = createLogger('silent');
    try {
      await expect(openDatabase({ dataDir, log })).rejects.toBeInstanceOf(DataDirLockedError);
      await expect(openDatabase({ dataDir, log })).rejects.toThrow(/in use by another process/);
    } finally {
      await running.dispose();
    }
    const reopened = await openDatabase({ dataDir, log });
    await reopened.close();
  });
});
