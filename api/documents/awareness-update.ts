import * as Y from 'yjs';
import { Awareness, applyAwarenessUpdate, modifyAwarenessUpdate } from 'y-protocols/awareness';
import type { UserSummary } from '../../schema/events.ts';

/** Awareness states are JSON objects (or null: the client left). */
type AwarenessState = Record<string, unknown>;

export function isState(value: unknown): value is AwarenessState {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The user a stored state was stamped with, if any. */
export function stampedUserId(state: unknown): string | undefined {
  const user = isState(state) ? state.user : undefined;
  return isState(user) && typeof user.id === 'string' ? user.id : undefined;
}

/** A y-protocols Awareness that only holds what is applied to it: no local state, no built-in 30 s expiry timer. */
export function passiveAwareness(): { awareness: Awareness; destroy(): void } {
  const doc = new Y.Doc();
  const awareness = new Awareness(doc);
  // Expiry is the owner's business (a configurable timeout), not y-protocols' fixed 30 s.
  clearInterval(awareness._checkInterval);
  awareness.setLocalState(null);
  return {
    awareness,
    destroy() {
      awareness.destroy();
      doc.destroy();
    },
  };
}

export interface StampedUpdate {
  /** The update with every state's `user.id` and `user.name` set to the sender. */
  update: Uint8Array;
  /** The Yjs clientIDs whose state (or removal) it carries, as an Awareness would accept them. */
  clients: number[];
}

/**
 * Stamps each state of a client's awareness update with the sending user
 * (keeping the other fields of `state.user`, such as a cursor color), so no
 * one can appear as someone else. Null when `update` is not a y-protocols
 * awareness update of JSON object states.
 */
export function stampAwarenessUpdate(update: Uint8Array, user: UserSummary): StampedUpdate | null {
  let stamped: Uint8Array;
  try {
    stamped = modifyAwarenessUpdate(update, (state: unknown) => {
      if (state === null) return null;
      if (!isState(state)) throw new TypeError('an awareness state must be an object');
      return { ...state, user: { ...(isState(state.user) ? state.user : {}), id: user.id, name: user.name } };
    });
  } catch {
    return null;
  }
  // Which clients it names, read by y-protocols itself: applied to an empty Awareness.
  const scratch = passiveAwareness();
  try {
    applyAwarenessUpdate(scratch.awareness, stamped, null);
    const own = scratch.awareness.clientID;
    return { update: stamped, clients: [...scratch.awareness.meta.keys()].filter((id) => id !== own) };
  } catch {
    return null;
  } finally {
    scratch.destroy();
  }
}
