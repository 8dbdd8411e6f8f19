import type { MetricUpdate } from '../../schema/events.ts';

/** How long a room counts as active after its last message. */
const ACTIVE_ROOM_WINDOW_MS = 5 * 60_000;
/** Latency samples kept per sampling period; beyond that, later ones replace random earlier ones. */
const MAX_LATENCY_SAMPLES = 2048;

/**
 * This process's own live figures, reported every sampling period as
 * `server.*` gauges: authenticated WebSocket connections, distinct users on
 * them, messages stored per second, rooms with a message in the last five
 * minutes, and the 95th percentile delivery latency of live chat messages.
 */
export class ServerFigures {
  private connections = 0;
  private readonly users = new Map<string, number>();
  private messages = 0;
  private readonly roomLastMessage = new Map<string, number>();
  private latencies: number[] = [];
  private latencySeen = 0;
  private lastSampleAt: number;

  constructor(private readonly now: () => number = Date.now) {
    this.lastSampleAt = now();
  }

  connectionOpened(userId: string): void {
    this.connections++;
    this.users.set(userId, (this.users.get(userId) ?? 0) + 1);
  }

  connectionClosed(userId: string): void {
    this.connections = Math.max(0, this.connections - 1);
    const count = (this.users.get(userId) ?? 1) - 1;
    if (count > 0) this.users.set(userId, count);
    else this.users.delete(userId);
  }

  messageSent(roomId: string): void {
    this.messages++;
    // Re-inserting keeps the map ordered by last message, so expiry stops at the first fresh room.
    this.roomLastMessage.delete(roomId);
    this.roomLastMessage.set(roomId, this.now());
  }

  observeDelivery(latencyMs: number): void {
    this.latencySeen++;
    if (this.latencies.length < MAX_LATENCY_SAMPLES) this.latencies.push(latencyMs);
    else {
      // Reservoir sampling keeps the percentile honest under load without unbounded memory.
      const slot = Math.floor(Math.random() * this.latencySeen);
      if (slot < MAX_LATENCY_SAMPLES) this.latencies[slot] = latencyMs;
    }
  }

  /** The figures since the previous call, as updates ready to publish. */
  sample(): MetricUpdate[] {
    const now = this.now();
    const seconds = Math.max(0.001, (now - this.lastSampleAt) / 1000);
    this.lastSampleAt = now;
    for (const [roomId, at] of this.roomLastMessage) {
      if (now - at <= ACTIVE_ROOM_WINDOW_MS) break;
      this.roomLastMessage.delete(roomId);
    }
    const sorted = this.latencies.sort((a, b) => a - b);
    const p95 = sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))] as number);
    const figures: [string, number][] = [
      ['server.connections', this.connections],
      ['server.onlineUsers', this.users.size],
      ['server.messagesPerSecond', Math.round((this.messages / seconds) * 100) / 100],
      ['server.activeRooms', this.roomLastMessage.size],
      ['server.deliveryLatencyMs', Math.round(p95 * 10) / 10],
    ];
    this.messages = 0;
    this.latencies = [];
    this.latencySeen = 0;
    return figures.map(([key, value]) => ({ key, value, at: now, kind: 'GAUGE' }));
  }
}
