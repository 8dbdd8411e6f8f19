import { useEffect, useMemo, useState, type FormEvent } from 'react';
import { useQuery, useSubscription } from 'urql';
import { DashboardDocument, MetricsDocument } from '../gql/graphql.ts';
import { MetricChart } from './MetricChart.tsx';

const BUILT_IN = ['server.connections', 'server.onlineUsers', 'server.messagesPerSecond', 'server.deliveryLatencyMs'];
/** How much history a chart keeps (the server's window is 5 minutes). */
const WINDOW_S = 300;

type Series = Map<string, (readonly [number, number])[]>;

/** Keys from `?keys=app.a,app.b` (plus the server's own figures). */
function keysFromUrl(): string[] {
  const extra = (new URLSearchParams(window.location.search).get('keys') ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean);
  return [...new Set([...extra, ...BUILT_IN])].slice(0, 50);
}

/** Live charts: paints `metrics(keys)` history, then appends each 250 ms `dashboard` batch. */
export function DashboardPage() {
  const [keys, setKeys] = useState(keysFromUrl);
  const [{ data: snapshot }] = useQuery({ query: MetricsDocument, variables: { keys }, requestPolicy: 'network-only' });
  const [series, setSeries] = useState<Series>(new Map());
  const [latest, setLatest] = useState<ReadonlyMap<string, number>>(new Map());

  useEffect(() => {
    if (!snapshot) return;
    const next: Series = new Map();
    const values = new Map<string, number>();
    for (const m of snapshot.metrics) {
      next.set(m.key, m.history.map((p) => [Date.parse(p.at) / 1000, p.value] as const));
      if (m.value !== null && m.value !== undefined) values.set(m.key, m.value);
    }
    setSeries(next);
    setLatest(values);
  }, [snapshot]);

  const [batchResult] = useSubscription({ query: DashboardDocument, variables: { keys } });
  const batch = batchResult.data?.dashboard;
  useEffect(() => {
    if (!batch) return;
    setSeries((prev) => {
      const next: Series = new Map(prev);
      for (const u of batch.updates) {
        const t = Date.parse(u.at) / 1000;
        const points = [...(next.get(u.key) ?? []), [t, u.value] as const].filter((p) => p[0] >= t - WINDOW_S);
        next.set(u.key, points);
      }
      return next;
    });
    setLatest((prev) => {
      const next = new Map(prev);
      for (const u of batch.updates) next.set(u.key, u.value);
      return next;
    });
  }, [batch]);

  function addKey(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const key = String(new FormData(e.currentTarget).get('key') ?? '').trim();
    if (!key || keys.includes(key)) return;
    const next = [key, ...keys].slice(0, 50);
    const extra = next.filter((k) => !BUILT_IN.includes(k));
    history.replaceState(null, '', `/dashboard?keys=${encodeURIComponent(extra.join(','))}`);
    setKeys(next);
    e.currentTarget.reset();
  }

  const cards = useMemo(() => keys.map((key) => ({ key, points: series.get(key) ?? [], value: latest.get(key) })), [keys, series, latest]);

  return (
    <section className="dashboard">
      <h2>Live dashboard</h2>
      <form className="inline-form" onSubmit={addKey}>
        <input name="key" placeholder="app.orders" aria-label="Metric key" pattern="[A-Za-z0-9_.\-]+" />
        <button type="submit">Add chart</button>
      </form>
      <div className="cards">
        {cards.map((c) => (
          <article key={c.key} className="card metric" data-key={c.key} data-value={c.value ?? ''}>
            <header>
              <span className="metric-key">{c.key}</span>
              <span className="metric-value" data-testid={`value-${c.key}`}>
                {c.value === undefined ? '–' : formatValue(c.value)}
              </span>
            </header>
            <MetricChart label={c.key} points={c.points} />
          </article>
        ))}
      </div>
    </section>
  );
}

function formatValue(value: number): string {
  return Number.isInteger(value) ? value.toLocaleString() : value.toLocaleString(undefined, { maximumFractionDigits: 2 });
}
