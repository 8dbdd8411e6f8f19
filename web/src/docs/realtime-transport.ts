import type { CombinedError, OperationResult } from '@urql/core';
import { pipe, subscribe } from 'wonka';
import type { LiveVariables, RealtimeClient } from '../client/index.ts';
import { isOfflineError, retryLaterMs } from '../client/offline-error.ts';
import {
  ApplyDocAwarenessDocument,
  ApplyDocUpdateDocument,
  DocAwarenessDocument,
  DocUpdatesDocument,
  type DocAwarenessSubscription,
  type DocUpdatesSubscription,
} from '../gql/graphql.ts';
import type { DocTransport, SendOutcome, SubscriptionError } from './transport.ts';

/**
 * The document transport over the app's realtime client: subscriptions on its
 * WebSocket (graphql-ws resubscribes after every reconnect, with the state
 * vector read at that moment), mutations over its HTTP link. The mutations
 * bypass the offline queue: the provider keeps its own buffer of edits.
 */
export function realtimeDocTransport(client: RealtimeClient): DocTransport {
  return {
    connection: client.connection,

    subscribeUpdates(docId, stateVector, handlers) {
      const liveVariables: LiveVariables = () => ({ stateVector: stateVector() });
      const { unsubscribe } = pipe(
        client.urql.subscription(DocUpdatesDocument, { docId, stateVector: stateVector() }, { liveVariables }),
        subscribe((result: OperationResult<DocUpdatesSubscription>) => {
          const event = result.data?.docUpdates;
          if (event && !result.error) handlers.next({ update: event.update, sync: event.sync });
          if (result.error) handlers.error(describe(result.error));
        }),
      );
      return unsubscribe;
    },

    subscribeAwareness(docId, handlers) {
      const { unsubscribe } = pipe(
        client.urql.subscription(DocAwarenessDocument, { docId }),
        subscribe((result: OperationResult<DocAwarenessSubscription>) => {
          const event = result.data?.docAwareness;
          if (event && !result.error) handlers.next(event.update);
          if (result.error) handlers.error(describe(result.error));
        }),
      );
      return unsubscribe;
    },

    async applyUpdate(docId, update) {
      const result = await client.urql.mutation(ApplyDocUpdateDocument, { docId, update }, { requestPolicy: 'network-only' }).toPromise();
      return outcomeOf(result.error);
    },

    async applyAwareness(docId, update) {
      const result = await client.urql.mutation(ApplyDocAwarenessDocument, { docId, update }, { requestPolicy: 'network-only' }).toPromise();
      return outcomeOf(result.error);
    },
  };
}

function describe(error: CombinedError): SubscriptionError {
  const first = error.graphQLErrors[0];
  const code = first?.extensions?.code;
  return {
    message: first?.message ?? error.message,
    ...(typeof code === 'string' ? { code } : {}),
    ...(first?.extensions?.retryable === true ? { retryable: true } : {}),
  };
}

/** Offline, rate-limited or briefly unavailable: try again; any other API error: refused. */
export function outcomeOf(error: CombinedError | undefined): SendOutcome {
  if (!error) return { ok: true };
  if (isOfflineError(error)) return { ok: false, retry: true };
  const later = retryLaterMs(error);
  if (later !== undefined) return { ok: false, retry: true, afterMs: later };
  const { message, code } = describe(error);
  return { ok: false, retry: false, message, ...(code ? { code } : {}) };
}
