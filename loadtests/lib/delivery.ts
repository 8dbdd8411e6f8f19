/**
 * End-to-end delivery measurement for chat messages: the sender writes its
 * clock into the message body, every receiver subtracts it from its own
 * clock. Pure (no `k6/*`, no `node:*`) so k6 and vitest share it.
 *
 * Sender and receiver must read the same clock: true for one k6 process
 * (every VU shares the host clock); across machines, sync them (NTP/PTP) or
 * the latencies carry the offset.
 */

const STAMP = /\[lt sentAt=(\d{1,16}) from=([A-Za-z0-9_.:-]{1,40}) n=(\d{1,12})\]/;

/** What a stamped body says about its send. */
export interface Stamp {
  /** Sender's clock in milliseconds since the epoch, just before the request. */
  sentAt: number;
  /** Who sent it (a VU or user label). */
  from: string;
  /** The sender's running message number. */
  n: number;
}

/**
 * A message body carrying its send time. The filler text keeps bodies a
 * realistic size; the server accepts 1 to 4000 characters.
 */
export function stampBody(stamp: Stamp, filler = 'load test message'): string {
  if (!/^[A-Za-z0-9_.:-]{1,40}$/.test(stamp.from)) throw new Error(`stamp "from" must be 1-40 of [A-Za-z0-9_.:-], got ${JSON.stringify(stamp.from)}`);
  const body = `[lt sentAt=${Math.trunc(stamp.sentAt)} from=${stamp.from} n=${Math.trunc(stamp.n)}] ${filler}`;
  return body.length > 4000 ? body.slice(0, 4000) : body;
}

/** Reads the stamp back, or undefined for a body this tool did not write. */
export function readStamp(body: string): Stamp | undefined {
  const match = STAMP.exec(body);
  if (!match) return undefined;
  return { sentAt: Number(match[1]), from: match[2] as string, n: Number(match[3]) };
}

/**
 * Milliseconds from send to receipt, or undefined when the body has no
 * stamp. Never negative: a receiver clock behind the sender's by a few ms
 * reads as 0 rather than as an impossible negative latency.
 */
export function deliveryLatencyMs(body: string, receivedAt: number): number | undefined {
  const stamp = readStamp(body);
  if (!stamp) return undefined;
  return Math.max(0, receivedAt - stamp.sentAt);
}

/** What one observed `seq` means for a subscriber. */
export interface SeqObservation {
  /** Messages skipped between the previous seq and this one. */
  missed: number;
  /** This seq (or an older one) was already seen: a duplicate or out-of-order delivery. */
  duplicate: boolean;
}

/**
 * Follows `messageAdded.seq` per room for one subscriber. The API promises
 * each message once, in order, with seq increasing by exactly one, so any
 * gap or repeat is a delivery failure worth counting. The first seq seen
 * in a room is the baseline: a live subscription starts mid-stream.
 */
export class SeqTracker {
  private readonly last = new Map<string, number>();

  /** Records a delivery and says whether something was missed or repeated. */
  observe(roomId: string, seq: number): SeqObservation {
    const previous = this.last.get(roomId);
    if (previous === undefined) {
      this.last.set(roomId, seq);
      return { missed: 0, duplicate: false };
    }
    if (seq <= previous) return { missed: 0, duplicate: true };
    this.last.set(roomId, seq);
    return { missed: seq - previous - 1, duplicate: false };
  }

  /** The last seq seen in a room, to resume with `afterSeq` after a reconnect. */
  lastSeq(roomId: string): number | undefined {
    return this.last.get(roomId);
  }
}
