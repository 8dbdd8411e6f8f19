/**
 * Shared pieces of the fan-out benchmark: the subscription document, the
 * messages between the harness and its load client, statistics and /proc
 * readings. Node only (the k6-compatible protocol helpers stay in loadtests/lib).
 */
import { readFileSync } from 'node:fs';

/**
 * What every subscriber asks for. The raw server sends exactly this shape
 * (same fields, same order) so both targets put the same bytes on the wire.
 */
export const BENCH_SUBSCRIPTION = 'subscription BenchMessageAdded($roomId: ID!) { messageAdded(roomId: $roomId) { id seq body createdAt sender { id name } } }';

/** Stamp "from" of the measured messages and of the liveness probes. */
export const MEASURED = 'bench';
export const PROBE = 'probe';

/** Where the load client sends messages. */
export type SendTarget =
  | { kind: 'api'; url: string; token: string; roomId: string }
  | { kind: 'raw'; url: string; roomId: string };

/** Harness → client commands; each is answered by one {@link ClientReply} with the same `seq`. */
export type ClientCommand =
  | { seq: number; cmd: 'connect'; wsUrl: string; tokens: string[]; roomId: string; count: number; concurrency: number; handshakeTimeoutMs: number; perConnection?: number }
  | { seq: number; cmd: 'probe'; send: SendTarget; timeoutMs: number }
  | { seq: number; cmd: 'run'; send: SendTarget; messages: number; rate: number; drainTimeoutMs: number; runId: string }
  | { seq: number; cmd: 'status' }
  | { seq: number; cmd: 'reset' }
  | { seq: number; cmd: 'close' };

export type ClientReply =
  | { seq: number; ok: true; result: unknown }
  | { seq: number; ok: false; error: string }
  | { progress: string };

/** Connection phase result. */
export interface ConnectResult {
  requested: number;
  ready: number;
  failed: number;
  durationMs: number;
  /** New socket → connection_ack, per connection. */
  ackMs: LatencySummary;
  errors: string[];
}

/** Health of the held connections. */
export interface ClientStatus {
  open: number;
  ready: number;
  unexpectedCloses: number;
  closeCodes: Record<string, number>;
  protocolErrors: number;
  graphqlErrors: number;
  errors: string[];
}

export interface ProbeResult {
  live: number;
  ready: number;
  probesSent: number;
  durationMs: number;
}

/** Delivery phase result, as the client saw it. */
export interface RunResult {
  subscribers: number;
  messages: number;
  sent: number;
  sendErrors: number;
  expected: number;
  delivered: number;
  /** expected − delivered: includes the messages of failed sends. */
  lost: number;
  /** Missing deliveries of the messages whose send succeeded (the server stored and published them). */
  lostOfAccepted: number;
  duplicates: number;
  /** First send → last delivery. */
  durationMs: number;
  /** First send → last send started (how long the offered load lasted). */
  sendWindowMs: number;
  deliveriesPerSecond: number;
  latencyMs: LatencySummary;
  /** HTTP round trip of the sends. */
  sendMs: LatencySummary;
  /** Stopped waiting: no delivery for drainTimeoutMs. */
  drainTimedOut: boolean;
  /** CPU time of the load client during the run, and as a share of one core. */
  clientCpuMs: number;
  clientCpuPercent: number;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Percentiles of `values` (sorted in place). */
export function summarize(values: Float64Array): LatencySummary {
  const count = values.length;
  if (count === 0) return { count: 0, p50: NaN, p90: NaN, p99: NaN, max: NaN, mean: NaN };
  values.sort();
  let sum = 0;
  for (let i = 0; i < count; i++) sum += values[i] as number;
  const at = (p: number) => values[Math.min(count - 1, Math.max(0, Math.ceil((p / 100) * count) - 1))] as number;
  return { count, p50: at(50), p90: at(90), p99: at(99), max: values[count - 1] as number, mean: round(sum / count, 1) };
}

export function round(value: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Resident set size of a process in KiB (VmRSS of /proc/<pid>/status). */
export function readRssKb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]);
}

/** User + system CPU time of a process in clock ticks (/proc/<pid>/stat fields 14 and 15). */
export function readCpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces; fields after it are plain.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** Busy and total CPU ticks of the whole machine, all cores (the "cpu" line of /proc/stat). */
export function readMachineTicks(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const [, ...fields] = line.trim().split(/\s+/);
  const ticks = fields.slice(0, 8).map(Number);
  const total = ticks.reduce((a, b) => a + b, 0);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  return { busy: total - idle, total };
}

/** The soft open-files limit of a process, from /proc/<pid>/limits. */
export function readFdLimit(pid: number | 'self'): number {
  const limits = readFileSync(`/proc/${pid}/limits`, 'utf8');
  const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits);
  if (!match) throw new Error(`no open-files limit in /proc/${pid}/limits`);
  return match[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(match[1]);
}

/** The hard open-files limit of this process. */
export function readHardFdLimit(): number {
  const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return !match || match[2] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(match[2]);
}

/** How many local ports a client may use towards one server address. */
export function ephemeralPorts(): number | undefined {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return low !== undefined && high !== undefined ? high - low + 1 : undefined;
  } catch {
    return undefined;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
