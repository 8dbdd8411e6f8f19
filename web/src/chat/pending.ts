/** A message the viewer sent that the API has not stored yet (shown greyed out). */
export interface PendingEntry {
  clientId: string;
  body: string;
  createdAt: string;
}

/**
 * The client's queue itself lives in IndexedDB (graphcache metadata); this is
 * only what the room shows for it, kept in localStorage so that a reload while
 * offline still shows the waiting messages.
 */
const key = (roomId: string) => `rt.pending.${roomId}`;

export function readPending(roomId: string): PendingEntry[] {
  try {
    return JSON.parse(localStorage.getItem(key(roomId)) ?? '[]') as PendingEntry[];
  } catch {
    return [];
  }
}

export function writePending(roomId: string, entries: PendingEntry[]): void {
  if (entries.length) localStorage.setItem(key(roomId), JSON.stringify(entries));
  else localStorage.removeItem(key(roomId));
}
