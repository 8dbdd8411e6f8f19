import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/** A time series chart (uPlot): `points` are [epoch seconds, value], oldest first. */
export function MetricChart({ label, points }: { label: string; points: readonly (readonly [number, number])[] }) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  useEffect(() => {
    const el = host.current;
    if (!el) return;
    const chart = new uPlot(
      {
        width: Math.max(280, el.clientWidth),
        height: 160,
        legend: { show: false },
        scales: { x: { time: true } },
        axes: [{ stroke: '#667' }, { stroke: '#667', size: 56 }],
        series: [{}, { label, stroke: '#2f6fde', width: 2, fill: 'rgba(47,111,222,0.12)', points: { show: false } }],
      },
      [[], []],
      el,
    );
    plot.current = chart;
    const resize = new ResizeObserver(() => chart.setSize({ width: Math.max(280, el.clientWidth), height: 160 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      chart.destroy();
      plot.current = null;
    };
  }, [label]);

  useEffect(() => {
    plot.current?.setData([points.map((p) => p[0]), points.map((p) => p[1])]);
  }, [points]);

  return <div className="chart" ref={host} />;
}
