import { EventEmitter } from 'node:events';
import { PubSub as MemoryEngine } from 'graphql-subscriptions';
import type { PubSub } from '../../schema/events.ts';
import { EnginePubSub } from './engine-pubsub.ts';

/** In-process pub/sub: events reach subscribers of this process only. */
export function createMemoryPubSub(options: { maxQueued?: number } = {}): PubSub {
  const eventEmitter = new EventEmitter();
  // Each subscriber of a room adds a listener on the room's channel.
  eventEmitter.setMaxListeners(0);
  return new EnginePubSub(new MemoryEngine({ eventEmitter }), undefined, options.maxQueued);
}
