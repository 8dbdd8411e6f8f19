/**
 * Where connection counts live: this process's memory by default, Redis
 * when several processes serve one user base. Transitions are decided by the
 * store atomically, so among many processes exactly one reports each change.
 */
export interface PresenceStore {
  /** Whether other processes see the same state. */
  readonly shared: boolean;
  /** Records a live connection; true when the user was offline before. */
  add(userId: string, connectionId: string): Promise<boolean>;
  /** Forgets a connection (its user may stay online through others). */
  remove(userId: string, connectionId: string): Promise<void>;
  /** Marks the user offline when no live connection remains; true when this call did it. */
  settle(userId: string): Promise<boolean>;
  /** Users marked online whose connections have all lapsed (their process died); marks them offline. */
  sweep(): Promise<string[]>;
  /** Renews this process's connections so they do not lapse. */
  heartbeat(connections: ReadonlyMap<string, string>): Promise<void>;
  online(userIds: readonly string[]): Promise<Set<string>>;
  close(): Promise<void>;
}

/** Connection counts of this process only (embedded default). */
export class MemoryPresenceStore implements PresenceStore {
  readonly shared = false;
  private readonly connections = new Map<string, Set<string>>();
  private readonly marked = new Set<string>();

  async add(userId: string, connectionId: string): Promise<boolean> {
    const set = this.connections.get(userId) ?? new Set();
    set.add(connectionId);
    this.connections.set(userId, set);
    if (this.marked.has(userId)) return false;
    this.marked.add(userId);
    return true;
  }

  async remove(userId: string, connectionId: string): Promise<void> {
    const set = this.connections.get(userId);
    set?.delete(connectionId);
    if (set?.size === 0) this.connections.delete(userId);
  }

  async settle(userId: string): Promise<boolean> {
    if (this.connections.has(userId) || !this.marked.has(userId)) return false;
    this.marked.delete(userId);
    return true;
  }

  async sweep(): Promise<string[]> {
    return []; // connections of this process never lapse without a close
  }

  async heartbeat(): Promise<void> {}

  async online(userIds: readonly string[]): Promise<Set<string>> {
    return new Set(userIds.filter((id) => this.marked.has(id)));
  }

  async close(): Promise<void> {}
}
