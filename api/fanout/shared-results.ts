import {
  GraphQLError,
  Kind,
  TypeInfo,
  createSourceEventStream,
  execute,
  getOperationAST,
  print,
  visit,
  visitWithTypeInfo,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type FieldNode,
  type GraphQLSchema,
} from 'graphql';
import type { Logger } from '../logger.ts';
import { dbUnavailableError, isDbUnavailable } from '../ops/db-errors.ts';

/**
 * Field extensions the schema sets to take part in shared fan-out:
 * - on a subscription field, `sharedResultKey(payload)` names an event the
 *   same for every subscriber (e.g. `roomId:seq`), or null when it cannot;
 * - on any field, `viewerDependent: true` when its value depends on who asks
 *   (an operation selecting one is executed per subscriber).
 */
export interface FanoutExtensions {
  sharedResultKey?: (payload: unknown) => string | null;
  viewerDependent?: boolean;
}

/** How one subscription operation may share its per-event results. */
export interface SharedPlan {
  /** Equal for operations whose results are interchangeable for the same event. */
  operationKey: string;
  eventKey: (payload: unknown) => string | null;
}

/**
 * Decides whether the results of a subscription can be shared between
 * subscribers: one root field that declares `sharedResultKey`, and no
 * viewer-dependent field selected. The key covers the root field's selection
 * (not its arguments: `roomId` is part of the event key, `afterSeq` only
 * decides where a subscriber starts), fragments and the variables they use.
 */
export function planSharedResults(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Record<string, unknown> | null | undefined,
): SharedPlan | null {
  const operation = getOperationAST(document, operationName);
  if (!operation || operation.operation !== 'subscription') return null;
  const [root, ...rest] = operation.selectionSet.selections;
  if (!root || rest.length > 0 || root.kind !== Kind.FIELD) return null;
  const extensions = schema.getSubscriptionType()?.getFields()[root.name.value]?.extensions as FanoutExtensions | undefined;
  const eventKey = extensions?.sharedResultKey;
  if (!eventKey) return null;

  let viewerDependent = false;
  const used = new Set<string>();
  const typeInfo = new TypeInfo(schema);
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      // Variable definitions and the root field's own arguments do not shape
      // the result; variables used anywhere else in the selection do.
      VariableDefinition: () => false,
      Argument(_node, _key, _parent, _path, ancestors) {
        return ancestors[ancestors.length - 1] === root ? false : undefined;
      },
      Field() {
        if ((typeInfo.getFieldDef()?.extensions as FanoutExtensions | undefined)?.viewerDependent) viewerDependent = true;
      },
      Variable(node) {
        used.add(node.name.value);
      },
    }),
  );
  if (viewerDependent) return null;
  const fragments = document.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => print(d)).sort();
  const values = [...used].sort().map((name) => [name, variables?.[name] ?? null]);
  const selection: FieldNode = { ...root, arguments: [] };
  return { operationKey: JSON.stringify([print(selection), fragments, values]), eventKey };
}

/**
 * Results of recent events, shared by the subscribers whose operations have
 * the same key: the first subscriber to see an event executes it, the others
 * reuse that result. Entries live a few seconds, long enough for one event's
 * fan-out, short enough that fields which change later (read counts) are not
 * served stale to a subscriber replaying history.
 */
export class SharedResults {
  private readonly entries = new Map<string, { result: Promise<ExecutionResult>; at: number }>();
  executions = 0;
  reuses = 0;

  constructor(
    private readonly ttlMs = 2000,
    private readonly maxEntries = 10_000,
  ) {}

  get(key: string, execute: () => Promise<ExecutionResult> | ExecutionResult): Promise<ExecutionResult> {
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && now - hit.at < this.ttlMs) {
      this.reuses++;
      return hit.result;
    }
    this.executions++;
    const result = Promise.resolve(execute());
    this.entries.set(key, { result, at: now });
    this.evict(now);
    // A failed execution is not reused: the next subscriber tries again.
    result.then(
      (r) => {
        if (r.errors?.length) this.entries.delete(key);
      },
      () => this.entries.delete(key),
    );
    return result;
  }

  private evict(now: number) {
    // Insertion order is age order: drop from the front.
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= this.maxEntries && now - entry.at < this.ttlMs) break;
      this.entries.delete(key);
    }
  }
}

/**
 * Runs a subscription whose per-event results are shared: the source stream
 * is the subscriber's own (authorization, replay, ordering), each event's
 * result comes from `shared`. Errors from subscribing that are not
 * GraphQLErrors are masked like the rest of the API's unexpected errors.
 */
export async function subscribeShared(
  args: ExecutionArgs,
  plan: SharedPlan,
  shared: SharedResults,
  log: Logger,
): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
  const stream = await createSourceEventStream(args);
  if (!isAsyncIterator(stream)) return maskUnexpected(stream as ExecutionResult, log);
  // graphql-js' own execute: yoga's executor would treat a subscription
  // document as a new subscription. Unexpected errors are masked here instead.
  const run = async (payload: unknown) => maskUnexpected(await execute({ ...args, rootValue: payload }), log);
  return mapAsync(stream, (payload) => {
    const eventKey = plan.eventKey(payload);
    return eventKey === null ? run(payload) : shared.get(`${plan.operationKey}|${eventKey}`, () => run(payload));
  });
}

function isAsyncIterator(value: unknown): value is AsyncIterator<unknown> {
  return typeof (value as AsyncIterator<unknown>)?.next === 'function';
}

export function maskUnexpected(result: ExecutionResult, log: Logger): ExecutionResult {
  if (!result.errors) return result;
  return {
    ...result,
    errors: result.errors.map((error) => {
      if (error.originalError === undefined || error.originalError instanceof GraphQLError) return error;
      if (isDbUnavailable(error.originalError)) return dbUnavailableError(error);
      log.error({ err: error.originalError, path: error.path }, 'subscription failed');
      return new GraphQLError('Unexpected error.', { nodes: error.nodes, path: error.path, extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    }),
  };
}

/** Maps an async iterator; `return()` reaches the source at once (ending a quiet subscription). */
function mapAsync<T, U>(source: AsyncIterator<T>, fn: (value: T) => Promise<U>): AsyncIterableIterator<U> {
  return {
    async next() {
      const step = await source.next();
      return step.done ? { done: true, value: undefined } : { done: false, value: await fn(step.value) };
    },
    async return() {
      await source.return?.();
      return { done: true, value: undefined };
    },
    async throw(error?: unknown) {
      await source.return?.();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
