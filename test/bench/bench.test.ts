import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/processes.ts';

/** `npm run bench` end to end at a tiny scale: raw server and the API on PGlite, nothing lost. */
describe('benchmark harness', () => {
  let dir: string | undefined;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('measures the raw server and the API and writes the figures', { timeout: 90_000 }, async () => {
    dir = await mkdtemp(join(tmpdir(), 'bench-test-'));
    const out = join(dir, 'result.json');
    const env = { ...process.env };
    // PGlite only, whatever the machine has configured.
    for (const name of ['DATABASE_URL', 'REDIS_URL', 'BENCH_DATABASE_URL', 'BENCH_REDIS_URL']) delete env[name];
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'scripts/bench/bench.ts', '--subscribers', '20', '--messages', '5', '--rate', '50', '--users', '3', '--settle', '0', '--per-connection', '2', '--latency-seconds', '1', '--targets', 'raw,pglite', '--out', out],
      { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code, output).toBe(0);
    expect(output).toMatch(/2 CPU core|CPU core\(s\)/);

    const report = JSON.parse(await readFile(out, 'utf8'));
    expect(report.machine).toMatchObject({ cpus: expect.any(Number), node: process.version });
    expect(report.parameters).toMatchObject({ mode: 'load', subscribers: 20, messages: 5, rate: 50, targets: ['raw', 'pglite'] });
    expect(report.targets.map((t: { name: string }) => t.name)).toEqual(['raw', 'pglite']);
    for (const target of report.targets) {
      expect(target.ok, JSON.stringify(target.error ?? target.status)).toBe(true);
      // 20 subscriptions, two per connection.
      expect(target.connect).toMatchObject({ requested: 10, ready: 10, failed: 0 });
      expect(target.run).toMatchObject({ expected: 100, delivered: 100, lost: 0, lostOfAccepted: 0, duplicates: 0, sendErrors: 0 });
      expect(target.run.deliveriesPerSecond).toBeGreaterThan(0);
      expect(target.run.latencyMs.p50).toBeGreaterThanOrEqual(0);
      expect(target.run.latencyMs.p99).toBeGreaterThanOrEqual(target.run.latencyMs.p50);
      expect(target.rss).toMatchObject({ idleKb: expect.any(Number), connectedKb: expect.any(Number), perConnectionKb: expect.any(Number) });
      expect(target.serverCpu.ms).toBeGreaterThanOrEqual(0);
      // The second run, at half the raw server's saturation rate: everything delivered once.
      const half = target.halfSaturation;
      expect(half.rate).toBeGreaterThan(0);
      expect(half.run).toMatchObject({ subscribers: 20, lost: 0, duplicates: 0, sendErrors: 0 });
      expect(half.run.delivered).toBe(half.run.expected);
      expect(half.run.latencyMs.p99).toBeGreaterThanOrEqual(half.run.latencyMs.p50);
    }
    expect(output).toMatch(/Latency below saturation/);
    expect(report.targets[1].throughputRatioVsRaw).toBeGreaterThan(0);
  });
});
