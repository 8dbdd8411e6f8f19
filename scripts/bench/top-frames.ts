/**
 * Summarizes V8 CPU profiles (`npm run bench -- --cpu-prof DIR`, or any
 * `node --cpu-prof` output): the functions with the most self time, and the
 * share of time per package or source folder.
 *
 *   node --import tsx scripts/bench/top-frames.ts DIR/pglite-*.cpuprofile [--top 25] [--last 20]
 *
 * `--last S` keeps only the profile's last S seconds (the measured run is the
 * end of a target's life in `npm run bench -- --latency-seconds 0`).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Self time in microseconds per node id; with `lastSeconds`, only the samples of the profile's last seconds. */
export function selfTimes(profile: Profile, lastSeconds?: number): Map<number, number> {
  const self = new Map<number, number>();
  const from = lastSeconds === undefined ? -Infinity : profile.endTime - lastSeconds * 1e6;
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (at >= from) self.set(id, (self.get(id) ?? 0) + delta);
  });
  return self;
}

/** Where a frame comes from: a package name, a repository folder, or a V8 category. */
export function origin(url: string): string {
  if (!url) return '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] as string;
  if (url.startsWith('node:')) return 'node core';
  const local = /\/(api|schema|scripts|web)\/(?:([^/]+)\/)?/.exec(url);
  if (local) return local[2] && !local[2].includes('.') ? `${local[1]}/${local[2]}` : (local[1] as string);
  return url;
}

export function summarize(profile: Profile, top: number, lastSeconds?: number): string {
  const self = selfTimes(profile, lastSeconds);
  const total = [...self.values()].reduce((a, b) => a + b, 0) || 1;
  const idle = new Set(['(idle)', '(program)', '(garbage collector)']);
  const byFrame = new Map<string, number>();
  const byOrigin = new Map<string, number>();
  for (const node of profile.nodes) {
    const us = self.get(node.id) ?? 0;
    if (!us) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || '(anonymous)';
    const key = idle.has(name) ? name : `${name}  ${url.replace(/^.*\/(node_modules\/)/, '$1').replace(/^file:\/\/.*?\/(api|schema|scripts)\//, '$1/')}:${lineNumber + 1}`;
    byFrame.set(key, (byFrame.get(key) ?? 0) + us);
    const from = idle.has(name) ? name : origin(url);
    byOrigin.set(from, (byOrigin.get(from) ?? 0) + us);
  }
  const pct = (us: number) => `${((us * 100) / total).toFixed(1).padStart(5)}%`;
  const window = lastSeconds === undefined ? '' : `, last ${lastSeconds} s only`;
  const lines = [`profile: ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s, ${profile.samples.length} samples${window}`, '', 'self time by function:'];
  for (const [key, us] of [...byFrame].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`${pct(us)}  ${key}`);
  lines.push('', 'self time by origin:');
  for (const [key, us] of [...byOrigin].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`${pct(us)}  ${key}`);
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({ options: { top: { type: 'string', default: '25' }, last: { type: 'string' } }, allowPositionals: true });
  if (positionals.length === 0) {
    console.error('usage: node --import tsx scripts/bench/top-frames.ts PROFILE.cpuprofile... [--top N] [--last SECONDS]');
    process.exit(2);
  }
  for (const file of positionals) {
    console.log(`== ${file}`);
    console.log(summarize(JSON.parse(readFileSync(file, 'utf8')) as Profile, Number(values.top), values.last === undefined ? undefined : Number(values.last)));
    console.log();
  }
}
