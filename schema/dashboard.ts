import { z } from 'zod';
import { requireViewer } from './access.ts';
import { builder } from './builder.ts';
import type { DashboardBatch as DashboardBatchShape, DashboardUpdate as DashboardUpdateShape, MetricValue } from './context.ts';
import { badInput, forbidden } from './errors.ts';
import type { MetricUpdate } from './events.ts';
import { DateTime } from './scalars.ts';
import { parseInput } from './validation.ts';
import { limitRate } from './lib/rate-limit.ts';

/** Most updates one publishMetrics call may carry. */
export const MAX_UPDATES_PER_CALL = 1000;
/** Most keys one dashboard subscription or metrics query may name. */
export const MAX_KEYS_PER_REQUEST = 50;
/** How far in the future a publisher's `at` may lie (clock skew), in ms. */
const MAX_FUTURE_SKEW_MS = 60_000;

const KEY_PATTERN = /^(app|server)(\.[A-Za-z0-9_-]+)+$/;
const metricKey = z.string().max(128, 'must be at most 128 characters').regex(KEY_PATTERN, 'must look like app.<name> or server.<name> (letters, digits, _ and -, dot-separated)');
const keyList = z
  .array(metricKey)
  .min(1, 'name at least one key')
  .max(MAX_KEYS_PER_REQUEST, `at most ${MAX_KEYS_PER_REQUEST} keys`);

const Updates = z
  .array(
    z.object({
      key: metricKey.refine((k) => k.startsWith('app.'), 'published keys must start with app. (server. is reserved for built-in figures)'),
      value: z.number().finite(),
      at: z.date().optional(),
      kind: z.enum(['GAUGE', 'COUNTER']),
      labels: z
        .array(z.object({ name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,49}$/, 'must be an identifier of at most 50 characters'), value: z.string().max(200, 'must be at most 200 characters') }))
        .max(10, 'at most 10 labels')
        .optional(),
    }),
  )
  .min(1, 'send at least one update')
  .max(MAX_UPDATES_PER_CALL, `at most ${MAX_UPDATES_PER_CALL} updates per call`);

export const MetricKind = builder.enumType('MetricKind', {
  description: 'How updates of a metric combine.',
  values: {
    GAUGE: { description: 'A level (a price, a queue length): the latest value wins.' },
    COUNTER: { description: 'A count: each update is an increment, and increments add up.' },
  } as const,
});

interface Label {
  name: string;
  value: string;
}
const toLabels = (labels: Readonly<Record<string, string>>): Label[] => Object.entries(labels).map(([name, value]) => ({ name, value }));

const MetricLabel = builder.objectRef<Label>('MetricLabel').implement({
  description: 'A name/value pair qualifying a metric value (e.g. currency: EUR).',
  fields: (t) => ({
    name: t.exposeString('name', { description: 'Label name.' }),
    value: t.exposeString('value', { description: 'Label value.' }),
  }),
});

const MetricPoint = builder.objectRef<{ at: Date; value: number }>('MetricPoint').implement({
  description: 'A point of a metric history: the last value seen in that second.',
  fields: (t) => ({
    at: t.field({ type: DateTime, description: 'The start of the second.', resolve: (p) => p.at }),
    value: t.exposeFloat('value', { description: 'The value at the end of that second.' }),
  }),
});

const Metric = builder.objectRef<{ key: string; current: MetricValue | null }>('Metric').implement({
  description: 'The current state of one metric key.',
  fields: (t) => ({
    key: t.exposeString('key', { description: 'The key asked for.' }),
    value: t.float({ nullable: true, description: 'The current value; null when nothing was published to this key (since this API process started).', resolve: (m) => m.current?.value ?? null }),
    at: t.field({ type: DateTime, nullable: true, description: 'When the current value was observed; null without a value.', resolve: (m) => m.current?.at ?? null }),
    labels: t.field({ type: [MetricLabel], description: 'Labels sent with the latest update.', resolve: (m) => toLabels(m.current?.labels ?? {}) }),
    history: t.field({
      type: [MetricPoint],
      description: 'Recent values for a sparkline, oldest first, one point per second with an update; at most the server\'s history window (5 minutes by default).',
      args: { seconds: t.arg.int({ required: false, defaultValue: 300, description: 'How far back, in seconds (1 to 3600).' }) },
      resolve: (m, args, ctx) => ctx.dashboard.history(m.key, Math.min(3600, Math.max(1, args.seconds ?? 300)) * 1000),
    }),
  }),
});

const DashboardUpdate = builder.objectRef<DashboardUpdateShape>('DashboardUpdate').implement({
  description: 'The state of one key in a dashboard batch.',
  fields: (t) => ({
    key: t.exposeString('key', { description: 'The metric key.' }),
    value: t.exposeFloat('value', { description: 'The value now: the latest for a gauge, the running total for a counter.' }),
    delta: t.float({ nullable: true, description: 'For counters, the sum of increments merged into this batch; null for gauges.', resolve: (u) => u.delta }),
    at: t.field({ type: DateTime, description: 'When the value was observed.', resolve: (u) => u.at }),
    labels: t.field({ type: [MetricLabel], description: 'Labels sent with the latest update.', resolve: (u) => toLabels(u.labels) }),
  }),
});

const DashboardBatch = builder.objectRef<DashboardBatchShape>('DashboardBatch').implement({
  description: 'Everything that changed for a dashboard\'s keys since its previous batch.',
  fields: (t) => ({
    at: t.field({ type: DateTime, description: 'When the batch was built; subscribers with the same keys receive the same batch.', resolve: (b) => b.at }),
    updates: t.field({ type: [DashboardUpdate], description: 'One entry per changed key, never a key that was not asked for.', resolve: (b) => b.updates }),
  }),
});

const MetricLabelInput = builder.inputType('MetricLabelInput', {
  description: 'A label for a published value.',
  fields: (t) => ({
    name: t.string({ required: true, description: 'An identifier of at most 50 characters.' }),
    value: t.string({ required: true, description: 'At most 200 characters.' }),
  }),
});

const MetricUpdateInput = builder.inputType('MetricUpdateInput', {
  description: 'One metric value to publish.',
  fields: (t) => ({
    key: t.string({ required: true, description: 'Namespaced key `app.<name>` (dot-separated parts of letters, digits, _ and -), at most 128 characters.' }),
    value: t.float({ required: true, description: 'The value (a gauge) or the increment (a counter).' }),
    at: t.field({ type: DateTime, required: false, description: 'When it was observed; defaults to when the server received it. At most a minute ahead of the server clock. An older gauge value than the current one is ignored.' }),
    kind: t.field({ type: MetricKind, required: false, defaultValue: 'GAUGE', description: 'GAUGE (default) or COUNTER.' }),
    labels: t.field({ type: [MetricLabelInput], required: false, description: 'Up to 10 labels.' }),
  }),
});

builder.mutationField('publishMetrics', (t) =>
  t.int({
    authScopes: { loggedIn: true },
    description: `Publishes application metrics to live dashboards; returns how many updates were accepted. Only for publishers (users with the publisher role). At most ${MAX_UPDATES_PER_CALL} updates per call. Errors: FORBIDDEN, BAD_USER_INPUT, RATE_LIMITED.`,
    args: { input: t.arg({ type: [MetricUpdateInput], required: true, description: 'The updates, applied in order.' }) },
    resolve: async (_root, { input }, ctx) => {
      const viewer = requireViewer(ctx);
      await limitRate(ctx, 'publishMetrics', viewer.id);
      if (!(await ctx.dashboard.canPublish(viewer))) throw forbidden('Publishing metrics needs the publisher role.');
      const data = parseInput(Updates, input.map((u) => ({ ...u, at: u.at ?? undefined, kind: u.kind ?? 'GAUGE', labels: u.labels ?? undefined })));
      const now = ctx.clock.now().getTime();
      const updates = data.map((u, i): MetricUpdate => {
        const at = u.at?.getTime() ?? now;
        if (at > now + MAX_FUTURE_SKEW_MS) throw badInput(`${i}.at: must not be more than a minute in the future`, `${i}.at`);
        return { key: u.key, value: u.value, at, kind: u.kind, ...(u.labels ? { labels: Object.fromEntries(u.labels.map((l) => [l.name, l.value])) } : {}) };
      });
      await ctx.dashboard.publish(updates);
      return updates.length;
    },
  }),
);

builder.queryField('metrics', (t) =>
  t.field({
    type: [Metric],
    authScopes: { loggedIn: true },
    description: `The current value and recent history of each key, in the order asked, so a dashboard can paint before its first batch. At most ${MAX_KEYS_PER_REQUEST} keys. Errors: BAD_USER_INPUT.`,
    args: { keys: t.arg.stringList({ required: true, description: 'Keys such as app.orders or server.connections.' }) },
    resolve: (_root, args, ctx) => {
      const keys = parseInput(keyList, args.keys);
      return ctx.dashboard.current(keys).map((current, i) => ({ key: keys[i] as string, current }));
    },
  }),
);

builder.subscriptionField('dashboard', (t) =>
  t.field({
    type: DashboardBatch,
    authScopes: { loggedIn: true },
    description: `Live batches of changes to the given keys, at most one every 250 ms: updates in between are merged (the latest value wins per key, counter increments add up). Subscribers asking for the same keys share each batch. Nothing is sent until a key changes; read metrics(keys) first for the current values. Built-in keys: server.connections, server.onlineUsers, server.messagesPerSecond, server.activeRooms, server.deliveryLatencyMs. At most ${MAX_KEYS_PER_REQUEST} keys. Errors: BAD_USER_INPUT.`,
    args: { keys: t.arg.stringList({ required: true, description: 'Keys such as app.orders or server.connections.' }) },
    subscribe: (_root, args, ctx) => ctx.dashboard.subscribe(parseInput(keyList, args.keys)),
    resolve: (batch) => batch,
  }),
);
