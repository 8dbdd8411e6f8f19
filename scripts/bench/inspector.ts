/**
 * Runs a full garbage collection in a child started with `--inspect=127.0.0.1:0`,
 * through the DevTools protocol, so RSS readings count live memory rather than
 * whatever garbage the last handshakes left behind.
 */
import WebSocket from 'ws';
import type { Child } from './children.ts';

/** The inspector's WebSocket URL from the child's "Debugger listening on ws://…" line. */
export function inspectorUrl(child: Child): string | undefined {
  return /Debugger listening on (ws:\/\/\S+)/.exec(child.output())?.[1];
}

/** Asks the child's V8 for a full GC (twice: the first may only finalize). Resolves false when it cannot. */
export async function collectGarbage(child: Child, timeoutMs = 30_000): Promise<boolean> {
  const url = inspectorUrl(child);
  if (!url) return false;
  return new Promise((resolve) => {
    const socket = new WebSocket(url, { perMessageDeflate: false });
    let answered = 0;
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.terminate();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on('open', () => socket.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' })));
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as { id?: number; error?: unknown };
      if (message.id === undefined) return;
      if (message.error) return done(false);
      if (++answered === 2) return done(true);
      socket.send(JSON.stringify({ id: 2, method: 'HeapProfiler.collectGarbage' }));
    });
    socket.on('error', () => done(false));
  });
}
