/**
 * Collaborator colours: a fixed palette, picked by a hash of the user id, so
 * every client shows a given user in the same colour without sending it (the
 * API replaces the `user` field of awareness states with its own `{ id, name }`).
 * The editor styles them through classes (`doc-peer-0` … `doc-peer-7`): the
 * app's CSP allows no inline style attributes.
 */
export const PEER_COLORS: readonly string[] = ['#d9480f', '#2f9e44', '#1c7ed6', '#ae3ec9', '#e67700', '#0c8599', '#c2255c', '#5f3dc4'];

/** The palette index for a user id (stable across clients and reloads). */
export function colorIndex(userId: string): number {
  // FNV-1a: cheap, and spreads similar ids (cuid, uuid) across the palette.
  let hash = 0x811c9dc5;
  for (let i = 0; i < userId.length; i++) {
    hash ^= userId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % PEER_COLORS.length;
}

/** `color` for carets and labels, `colorLight` for selections, as y-codemirror.next reads them from `state.user`. */
export function userColor(userId: string): { color: string; colorLight: string } {
  const color = PEER_COLORS[colorIndex(userId)]!;
  return { color, colorLight: `${color}33` };
}
