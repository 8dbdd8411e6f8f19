import {
  execute,
  getArgumentValues,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  locatedError,
  type ExecutionArgs,
  type ExecutionResult,
  type FieldNode,
} from 'graphql';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { Context } from '../../schema/context.ts';
import type { OrderedFeed } from '../../schema/lib/feed.ts';
import type { Logger } from '../logger.ts';
import { maskUnexpected, type SharedPlan, type SharedResults } from './shared-results.ts';

type Event = { seq: number };
type AnyFeed = OrderedFeed<Event>;

/** Close code and reason for a subscriber whose socket holds too much unsent data. */
export const SLOW_CONSUMER_CLOSE = { code: 1013, reason: 'Slow consumer: reconnect and resume' } as const;
/** Close code and reason when a feed could not read missed events (database down): the client resumes with afterSeq. */
const FEED_FAILED_CLOSE = { code: 1013, reason: 'Events unavailable: reconnect and resume' } as const;

export interface FeedHubOptions {
  shared: SharedResults;
  log: Logger;
  /** Unsent bytes a socket may hold before its client counts as too slow and is closed with 1013. */
  maxBufferedBytes: number;
  /** The context an event is executed with: the subscriber's services with fresh loaders. */
  eventContext(subscriberContext: Context): Context;
  /** Sees each batch of `next` frames sent for one event (metrics). */
  resultsSent?(field: string, value: unknown, count: number): void;
}

/** One subscription of one client, served by a feed. */
interface Subscriber {
  socket: WebSocket;
  /** `{"id":"<id>","type":"next","payload":` — the start of every frame, as UTF-8. */
  prefix: Buffer;
  userId: string;
  /** The last seq this subscriber was sent (or asked to start after). */
  cursor: number;
  group: Group;
  done: boolean;
  wake?: (result: IteratorResult<never>) => void;
}

/** Subscribers of one feed whose operations share results: executed and serialized once per event. */
interface Group {
  operationKey: string;
  args: ExecutionArgs;
  field: string;
  responseKey: string;
  subs: Set<Subscriber>;
}

/**
 * The fan-out path of ordered subscriptions (messageAdded): one hub per feed
 * key (room) and process follows the broker, puts events in seq order and
 * fills gaps from the database once, executes each event once per distinct
 * operation, serializes the result once, and writes the frame to every
 * subscriber's socket. graphql-ws still owns each subscription (subscribe,
 * complete, limits); its iterator only ends when the subscription does.
 *
 * Per subscriber there is a cursor: a frame is sent only for seq = cursor + 1,
 * so a subscriber catching up from the database (afterSeq) and the hub's live
 * delivery never send an event twice or out of order.
 */
export class FeedHubs {
  private readonly hubs = new Map<string, Hub>();
  /** Each result's JSON with the frame's closing brace, serialized and encoded once. */
  private readonly tails = new WeakMap<ExecutionResult, Buffer>();

  constructor(readonly options: FeedHubOptions) {}

  /** Subscribers served now, across feeds. */
  get subscribers(): number {
    let n = 0;
    for (const hub of this.hubs.values()) n += hub.size;
    return n;
  }

  /**
   * Starts one subscription on its feed: authorizes it (errors come back as
   * an ExecutionResult, as graphql-ws expects), replays what it asked for,
   * and returns the iterator graphql-ws holds until the subscription ends.
   */
  async subscribe(
    args: ExecutionArgs,
    plan: SharedPlan,
    feed: AnyFeed,
    socket: WebSocket,
    id: string,
  ): Promise<AsyncIterableIterator<never> | ExecutionResult> {
    const operation = getOperationAST(args.document, args.operationName);
    const field = operation?.selectionSet.selections[0] as FieldNode;
    const responseKey = field.alias?.value ?? field.name.value;
    const ctx = args.contextValue as Context;
    let opened: Awaited<ReturnType<AnyFeed['open']>>;
    try {
      const variables = getVariableValues(args.schema, operation?.variableDefinitions ?? [], args.variableValues ?? {});
      if (variables.errors) return { errors: variables.errors };
      const fieldDef = args.schema.getSubscriptionType()?.getFields()[field.name.value];
      if (!fieldDef) return { errors: [new GraphQLError(`Unknown subscription field ${field.name.value}.`)] };
      opened = await feed.open(ctx, getArgumentValues(fieldDef, field, variables.coerced));
    } catch (error) {
      return maskUnexpected({ errors: [locatedError(error, [field], [responseKey])] }, this.options.log);
    }

    const hubKey = `${field.name.value}|${opened.key}`;
    let hub: Hub | undefined;
    // A hub whose last subscriber left while this one waited for it is closed: open a new one.
    while (!hub || hub.closed) {
      hub = this.hubs.get(hubKey);
      if (!hub) {
        const created: Hub = new Hub(feed, opened.key, ctx, this, () => this.hubs.get(hubKey) === created && this.hubs.delete(hubKey));
        this.hubs.set(hubKey, (hub = created));
      }
      try {
        await hub.ready;
      } catch (error) {
        return maskUnexpected({ errors: [locatedError(error, [field], [responseKey])] }, this.options.log);
      }
    }
    const sub = hub.add(plan.operationKey, args, field.name.value, responseKey, socket, id, opened.userId, opened.afterSeq);
    void hub.catchUp(sub);
    const iterator: AsyncIterableIterator<never> = {
      next: () => (sub.done ? Promise.resolve({ done: true, value: undefined }) : new Promise((resolve) => (sub.wake = resolve))),
      return: async () => {
        hub.remove(sub);
        return { done: true, value: undefined };
      },
      throw: async (error?: unknown) => {
        hub.remove(sub);
        throw error;
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  /** The event's result for a group, and its JSON: computed once per event and operation. */
  async result(group: Group, key: string, event: Event): Promise<{ value: unknown; tail: Buffer }> {
    const { shared, log, eventContext } = this.options;
    const result = await shared.get(`${group.operationKey}|${key}`, async () =>
      maskUnexpected(await execute({ ...group.args, contextValue: eventContext(group.args.contextValue as Context), rootValue: event }), log),
    );
    let tail = this.tails.get(result);
    if (tail === undefined) {
      tail = Buffer.from(`${JSON.stringify(result)}}`);
      this.tails.set(result, tail);
    }
    return { value: result.data?.[group.responseKey], tail };
  }

  /** Writes one event's frame (`tail`: the payload's JSON and the closing brace) to a subscriber if it is the next one it needs; true when sent. */
  send(sub: Subscriber, seq: number, tail: Buffer): boolean {
    if (sub.done || sub.cursor !== seq - 1) return false;
    sub.cursor = seq;
    const { socket } = sub;
    if (socket.readyState !== socket.OPEN) return false;
    if (socket.bufferedAmount > this.options.maxBufferedBytes) {
      this.options.log.warn({ userId: sub.userId, buffered: socket.bufferedAmount }, 'closing a slow WebSocket consumer');
      socket.close(SLOW_CONSUMER_CLOSE.code, SLOW_CONSUMER_CLOSE.reason);
      return false;
    }
    writeTextFrame(socket, sub.prefix, tail);
    return true;
  }
}

/**
 * Sends `head` + `tail` as one WebSocket text message. Without a negotiated
 * extension (the API enables none) a server frame is a small header and the
 * bytes as they are: it is built here, from the UTF-8 the feed encoded once
 * per event, and written to the TCP socket in one piece, saving `ws` the
 * per-subscriber string encoding. ws writes its own frames whole and at once,
 * so frames never interleave. Anything else goes through `ws`.
 */
export function writeTextFrame(socket: WebSocket, head: Buffer, tail: Buffer): void {
  const tcp = (socket as unknown as { _socket?: Socket })._socket;
  if (!tcp || socket.extensions !== '') {
    socket.send(Buffer.concat([head, tail]), { binary: false });
    return;
  }
  const length = head.length + tail.length;
  const headerLength = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = 0x81; // FIN, text
  if (headerLength === 2) frame[1] = length;
  else if (headerLength === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(0, 2);
    frame.writeUInt32BE(length, 6);
  }
  head.copy(frame, headerLength);
  tail.copy(frame, headerLength + head.length);
  tcp.write(frame);
}

/** One feed key (a room) in this process. */
class Hub {
  readonly ready: Promise<void>;
  /** The last seq delivered to the feed's subscribers. */
  private cursor = 0;
  private readonly groups = new Map<string, Group>();
  private live?: AsyncIterableIterator<Event>;
  private leaves?: AsyncIterableIterator<string>;
  private stopReconnect = () => {};
  private work: Promise<void> = Promise.resolve();
  closed = false;
  size = 0;

  constructor(
    private readonly feed: AnyFeed,
    private readonly key: string,
    private readonly services: Context,
    private readonly hubs: FeedHubs,
    private readonly forget: () => void,
  ) {
    this.ready = this.start();
    this.ready.catch(() => this.close());
  }

  private async start() {
    const { feed, key, services } = this;
    this.live = await feed.live(services, key);
    this.leaves = await feed.leaves(services, key);
    this.cursor = await feed.head(services, key);
    // Events published during a broker outage never arrive: read them from the database.
    this.stopReconnect = services.pubsub.onReconnect(() => void this.serial(() => this.recover()));
    void this.pump();
    void this.watchLeaves();
  }

  add(operationKey: string, args: ExecutionArgs, field: string, responseKey: string, socket: WebSocket, id: string, userId: string, afterSeq: number | null): Subscriber {
    let group = this.groups.get(operationKey);
    if (!group) {
      group = { operationKey, args: { ...args }, field, responseKey, subs: new Set() };
      this.groups.set(operationKey, group);
    }
    const sub: Subscriber = {
      socket,
      prefix: Buffer.from(`{"id":${JSON.stringify(id)},"type":"next","payload":`),
      userId,
      cursor: afterSeq ?? this.cursor,
      group,
      done: false,
    };
    group.subs.add(sub);
    this.size++;
    return sub;
  }

  remove(sub: Subscriber) {
    if (sub.done) return;
    sub.done = true;
    sub.wake?.({ done: true, value: undefined });
    sub.group.subs.delete(sub);
    if (sub.group.subs.size === 0 && this.groups.get(sub.group.operationKey) === sub.group) this.groups.delete(sub.group.operationKey);
    this.size--;
    // The last subscriber gone: release the broker subscriptions at once.
    if (this.size === 0) this.close();
  }

  /** Sends a new subscriber what it missed (afterSeq) until it has reached the feed; from then on the hub sends it each event. */
  async catchUp(sub: Subscriber) {
    try {
      while (!sub.done && sub.cursor < this.cursor) {
        const target = this.cursor;
        for (const event of await this.feed.range(this.services, this.key, sub.cursor, target + 1)) {
          const { tail, value } = await this.hubs.result(sub.group, this.feed.eventKey(event), event);
          if (this.hubs.send(sub, event.seq, tail)) this.hubs.options.resultsSent?.(sub.group.field, value, 1);
        }
        // Seqs the database does not hold (never stored) are passed over.
        if (sub.cursor < target) sub.cursor = target;
      }
    } catch (error) {
      this.hubs.options.log.warn({ err: error }, 'replay for a subscriber failed');
      if (sub.socket.readyState === sub.socket.OPEN) sub.socket.close(FEED_FAILED_CLOSE.code, FEED_FAILED_CLOSE.reason);
      this.remove(sub);
    }
  }

  /** Runs hub work one piece at a time, in order. */
  private serial(work: () => Promise<void>): Promise<void> {
    this.work = this.work.then(work).catch((error: unknown) => this.failed(error));
    return this.work;
  }

  private async pump() {
    while (!this.closed) {
      let step: IteratorResult<Event>;
      try {
        step = await (this.live as AsyncIterableIterator<Event>).next();
      } catch (error) {
        // The hub fell too far behind the broker (or lost it): subscribe
        // again and read what was missed from the database.
        this.hubs.options.log.warn({ err: error, key: this.key }, 'feed resubscribing');
        await this.resubscribe();
        continue;
      }
      if (step.done) return;
      const event = step.value;
      await this.serial(() => this.take(event));
    }
  }

  private async resubscribe() {
    while (!this.closed) {
      try {
        this.live = await this.feed.live(this.services, this.key);
        await this.serial(() => this.recover());
        return;
      } catch (error) {
        this.hubs.options.log.warn({ err: error, key: this.key }, 'feed subscribe failed; retrying');
        await new Promise((r) => setTimeout(r, 1000).unref());
      }
    }
  }

  private async watchLeaves() {
    try {
      for await (const userId of { [Symbol.asyncIterator]: () => this.leaves as AsyncIterableIterator<string> }) {
        for (const group of [...this.groups.values()]) for (const sub of [...group.subs]) if (sub.userId === userId) this.remove(sub);
      }
    } catch (error) {
      // Losing membership events must not leave former members subscribed: end everything; clients resubscribe (and are re-authorized).
      this.hubs.options.log.warn({ err: error, key: this.key }, 'feed membership events lost');
      this.failed(error);
    }
  }

  /** After a broker outage: members who left meanwhile (their leave event lost) are dropped, then missed events are read. */
  private async recover() {
    const subs = [...this.groups.values()].flatMap((g) => [...g.subs]);
    const members = await this.feed.members(this.services, this.key, [...new Set(subs.map((s) => s.userId))]);
    for (const sub of subs) if (!members.has(sub.userId)) this.remove(sub);
    if (!this.closed) await this.fill(null);
  }

  private async take(event: Event) {
    if (event.seq <= this.cursor) return;
    if (event.seq > this.cursor + 1) await this.fill(event.seq);
    await this.deliver(event);
  }

  /** Delivers stored events after the cursor (and before `before`). */
  private async fill(before: number | null) {
    for (const event of await this.feed.range(this.services, this.key, this.cursor, before)) await this.deliver(event);
  }

  private async deliver(event: Event) {
    if (event.seq <= this.cursor) return;
    const key = this.feed.eventKey(event);
    const sent = new Set<Group>();
    // Execute for every group first, then write every frame without
    // yielding, so a subscriber that finishes catching up meanwhile is
    // either sent this event here or reads it from the database.
    let pending = [...this.groups.values()];
    while (pending.length > 0) {
      const results = await Promise.all(pending.map((group) => this.hubs.result(group, key, event)));
      pending.forEach((group, i) => {
        const { tail, value } = results[i] as { value: unknown; tail: Buffer };
        let count = 0;
        for (const sub of group.subs) if (this.hubs.send(sub, event.seq, tail)) count++;
        if (count > 0) this.hubs.options.resultsSent?.(group.field, value, count);
        sent.add(group);
      });
      // Groups that appeared while executing, with a subscriber waiting for this event.
      pending = [...this.groups.values()].filter((g) => !sent.has(g) && [...g.subs].some((s) => s.cursor === event.seq - 1));
    }
    this.cursor = event.seq;
  }

  /** Events could not be read: every subscriber is closed with a retryable code and resumes from its last seq. */
  private failed(error: unknown) {
    if (this.closed) return;
    this.hubs.options.log.warn({ err: error, key: this.key }, 'feed failed; closing its subscribers');
    for (const group of [...this.groups.values()]) {
      for (const sub of [...group.subs]) {
        if (sub.socket.readyState === sub.socket.OPEN) sub.socket.close(FEED_FAILED_CLOSE.code, FEED_FAILED_CLOSE.reason);
        this.remove(sub);
      }
    }
    this.close();
  }

  private close() {
    if (this.closed) return;
    this.closed = true;
    this.forget();
    this.stopReconnect();
    void this.live?.return?.();
    void this.leaves?.return?.();
  }
}

/** The ordered feed a subscription field declares in its `orderedFeed` extension, if any. */
export const orderedFeedOf = (extensions: unknown): AnyFeed | undefined => (extensions as { orderedFeed?: AnyFeed } | undefined)?.orderedFeed;
