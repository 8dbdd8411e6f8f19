import type { PubSubEngine } from 'graphql-subscriptions';
import type { Events, PubSub, Topic, TopicPayload, TopicScope } from '../../schema/events.ts';
import { PushQueue } from './queue.ts';

/** The broker channel of a topic, e.g. `message:added:<roomId>`. */
export function channelOf(topic: string, scope: readonly unknown[]): string {
  return scope.length === 0 ? topic : `${topic}:${scope.join(':')}`;
}

/**
 * The typed pub/sub over any graphql-subscriptions engine: the in-process
 * EventEmitter engine by default, graphql-redis-subscriptions when scaled out.
 */
export class EnginePubSub implements PubSub {
  constructor(
    private readonly engine: PubSubEngine,
    private readonly closeEngine: () => Promise<void> = async () => {},
    private readonly maxQueued?: number,
  ) {}

  async publish<K extends Topic>(topic: K, ...args: Events[K]): Promise<void> {
    const payload = args[args.length - 1];
    await this.engine.publish(channelOf(topic, args.slice(0, -1)), payload);
  }

  async subscribe<K extends Topic>(topic: K, ...scope: TopicScope<K>): Promise<AsyncIterableIterator<TopicPayload<K>>> {
    let id: number | undefined;
    const queue = new PushQueue<TopicPayload<K>>(() => {
      if (id !== undefined) this.engine.unsubscribe(id);
    }, this.maxQueued);
    id = await this.engine.subscribe(channelOf(topic, scope), (payload: TopicPayload<K>) => queue.push(payload), {});
    return queue;
  }

  onReconnect(): () => void {
    return () => {}; // in-process delivery has no connection to lose
  }

  close(): Promise<void> {
    return this.closeEngine();
  }
}
