/**
 * `npm run bench`: subscription fan-out of the API against the practical
 * limit of Node on the same machine.
 *
 * Targets, one after the other, each a child process of its own:
 *  - raw:      scripts/bench/raw-server.ts, bare `ws` with the same frames, no GraphQL;
 *  - pglite:   the API (`api/main.ts`) on its embedded PGlite and in-process pub/sub;
 *  - postgres: the API on PostgreSQL + Redis, when BENCH_DATABASE_URL and BENCH_REDIS_URL
 *              (or DATABASE_URL and REDIS_URL) are set; a scratch database is created and dropped.
 * A separate load client process (scripts/bench/load-client.ts) opens N subscribers in one
 * room, sends M stamped messages at a set rate and measures each delivery.
 * Results go to the terminal and to bench-results/*.json. Run with --help for the options.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { CREATE_ROOM, SIGN_UP } from '../../loadtests/lib/operations.ts';
import { collectGarbage } from './inspector.ts';
import { checkFdLimit, exitCleanlyOnSignals, REPO_ROOT, spawnNode, waitForOutput, type Child } from './children.ts';
import {
  ephemeralPorts,
  readCpuTicks,
  readFdLimit,
  readMachineTicks,
  readHardFdLimit,
  readRssKb,
  round,
  sleep,
  type ClientCommand,
  type ClientReply,
  type ClientStatus,
  type ConnectResult,
  type ProbeResult,
  type RunResult,
  type SendTarget,
} from './lib.ts';

const HELP = `Usage: npm run bench -- [options]

  --subscribers N     subscribers in one room (default 5000; 20000 with --idle-only)
  --messages M        messages sent (default 100)
  --rate R            messages per second (default 50)
  --per-connection K  subscriptions per WebSocket (default 1): N subscriptions over N ÷ K
                      connections, for more subscriptions than one process may open sockets
  --users U           users the subscribers share (default 50; sign-up is slow on purpose)
  --concurrency C     WebSocket handshakes in flight at once (default 200)
  --targets LIST      comma-separated: raw, pglite, postgres (default raw,pglite, plus
                      postgres when BENCH_DATABASE_URL/BENCH_REDIS_URL or DATABASE_URL/REDIS_URL are set)
  --idle-only         no messages: hold N authenticated subscriptions idle, check they all
                      stay open and live, and report RSS per subscription
  --hold S            --idle-only: seconds to hold the subscriptions (default 15)
  --drain-timeout S   stop waiting for deliveries after S seconds without one (default 30)
  --latency-seconds S after the saturation run, send for S seconds at half the raw server's
                      saturation rate (deliveries/s ÷ 2 ÷ subscribers messages/s) and report
                      latency there (default 10; 0 skips it; needs the raw target first)
  --settle S          seconds to let memory settle before each RSS reading (default 2)
  --api-env K=V       extra environment for the API processes (repeatable); RATE_LIMITS=off
                      and WS_MAX_CONNECTIONS_PER_USER=subscribers/users are set unless given here
  --api-root DIR      run the API of another checkout (default: this repository)
  --cpu-prof DIR      write a V8 CPU profile of each server target into DIR (node --cpu-prof;
                      open in Chrome DevTools or summarize with scripts/bench/top-frames.ts)
  --out FILE          JSON results (default bench-results/bench-<time>.json)
  --help`;

const { values: args } = parseArgs({
  options: {
    subscribers: { type: 'string' },
    messages: { type: 'string', default: '100' },
    rate: { type: 'string', default: '50' },
    users: { type: 'string', default: '50' },
    'per-connection': { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '200' },
    targets: { type: 'string' },
    'idle-only': { type: 'boolean', default: false },
    hold: { type: 'string', default: '15' },
    'drain-timeout': { type: 'string', default: '30' },
    'latency-seconds': { type: 'string', default: '10' },
    settle: { type: 'string', default: '2' },
    'api-env': { type: 'string', multiple: true, default: [] },
    'api-root': { type: 'string' },
    'cpu-prof': { type: 'string' },
    out: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});

if (args.help) {
  console.log(HELP);
  process.exit(0);
}

function positiveInt(name: string, text: string, min = 1): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) {
    console.error(`--${name} must be an integer of at least ${min}, got ${JSON.stringify(text)}`);
    process.exit(2);
  }
  return value;
}

const idleOnly = args['idle-only'];
const params = {
  mode: idleOnly ? ('idle' as const) : ('load' as const),
  subscribers: positiveInt('subscribers', args.subscribers ?? (idleOnly ? '20000' : '5000')),
  messages: idleOnly ? 0 : positiveInt('messages', args.messages),
  rate: positiveInt('rate', args.rate),
  users: positiveInt('users', args.users),
  perConnection: positiveInt('per-connection', args['per-connection']),
  connections: 0,
  concurrency: positiveInt('concurrency', args.concurrency),
  holdSeconds: positiveInt('hold', args.hold, 0),
  drainTimeoutSeconds: positiveInt('drain-timeout', args['drain-timeout']),
  latencySeconds: idleOnly ? 0 : positiveInt('latency-seconds', args['latency-seconds'], 0),
  settleSeconds: positiveInt('settle', args.settle, 0),
  targets: [] as string[],
};
params.users = Math.min(params.users, params.subscribers);
if (params.subscribers % params.perConnection !== 0) {
  console.error(`--subscribers ${params.subscribers} must be a multiple of --per-connection ${params.perConnection}`);
  process.exit(2);
}
params.connections = params.subscribers / params.perConnection;

const adminDatabaseUrl = process.env.BENCH_DATABASE_URL || process.env.DATABASE_URL;
const redisUrl = process.env.BENCH_REDIS_URL || process.env.REDIS_URL;
params.targets = (args.targets ?? (adminDatabaseUrl && redisUrl ? 'raw,pglite,postgres' : 'raw,pglite')).split(',').map((t) => t.trim()).filter(Boolean);
for (const target of params.targets) {
  if (!['raw', 'pglite', 'postgres'].includes(target)) {
    console.error(`unknown target ${JSON.stringify(target)} (raw, pglite, postgres)`);
    process.exit(2);
  }
}
if (params.targets.includes('postgres') && !(adminDatabaseUrl && redisUrl)) {
  console.error('the postgres target needs BENCH_DATABASE_URL and BENCH_REDIS_URL (or DATABASE_URL and REDIS_URL)');
  process.exit(2);
}
// The benchmark measures delivery, not the limits that protect it: one sender at 50/s would
// trip them (the per-user connection cap is raised in startApi).
const apiEnv: Record<string, string> = { RATE_LIMITS: 'off' };
const apiRoot = args['api-root'] ? resolve(args['api-root']) : REPO_ROOT;
for (const pair of args['api-env']) {
  const at = pair.indexOf('=');
  if (at < 1) {
    console.error(`--api-env wants KEY=VALUE, got ${JSON.stringify(pair)}`);
    process.exit(2);
  }
  apiEnv[pair.slice(0, at)] = pair.slice(at + 1);
}

// Every subscriber is a socket in the client and one in the server, plus the files Node and
// PGlite hold: children get the highest limit allowed (checkFdLimit says when it is too low).
const fdTarget = Math.max(params.connections + 1024, Math.min(readHardFdLimit(), 1_048_576), readFdLimit('self'));
const ports = ephemeralPorts();
if (ports !== undefined && params.connections > ports - 1000) {
  console.error(`${params.connections} connections need that many local ports towards one server address; only ${ports} are configured (/proc/sys/net/ipv4/ip_local_port_range).`);
  process.exit(2);
}

const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
const baseEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? os.tmpdir() };
const cleanups: (() => Promise<void>)[] = [];
async function cleanupAll() {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch((error: unknown) => console.error(`cleanup: ${String(error)}`));
}
exitCleanlyOnSignals(cleanupAll);

function log(text: string) {
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${text}`);
}

/** The load client process and a request/answer wrapper over its IPC channel. */
class LoadClient {
  private nextSeq = 1;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  constructor(readonly child: Child) {
    child.process.on('message', (message: ClientReply) => {
      if ('progress' in message) {
        log(`  client: ${message.progress}`);
        return;
      }
      const waiter = this.pending.get(message.seq);
      this.pending.delete(message.seq);
      if (message.ok) waiter?.resolve(message.result);
      else waiter?.reject(new Error(message.error));
    });
    void child.exited.then(() => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`load client exited:\n${child.output().slice(-2000)}`));
      this.pending.clear();
    });
  }

  static start(): LoadClient {
    const child = spawnNode('load client', 'scripts/bench/load-client.ts', { env: { ...baseEnv, NODE_ENV: 'production' }, fdLimit: fdTarget, ipc: true });
    return new LoadClient(child);
  }

  request<T>(command: DistributiveOmit<ClientCommand, 'seq'>, timeoutMs: number): Promise<T> {
    const seq = this.nextSeq++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        reject(new Error(`load client: "${command.cmd}" took longer than ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      this.pending.set(seq, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.child.process.send({ ...command, seq });
    });
  }

  async close() {
    if (this.child.running) await this.request({ cmd: 'close' }, 10_000).catch(() => {});
    await this.child.stop(5000);
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * Servers listen for the DevTools protocol on a free loopback port, only so that the harness
 * can run a full GC before reading RSS (nothing attaches otherwise).
 */
const INSPECT = ['--inspect=127.0.0.1:0'];
/** Node flags for a server target: the inspector (GC before RSS readings), and a CPU profile when asked. */
function serverNodeArgs(target: string): string[] {
  const dir = args['cpu-prof'];
  if (!dir) return INSPECT;
  mkdirSync(resolve(dir), { recursive: true });
  return [...INSPECT, '--cpu-prof', `--cpu-prof-dir=${resolve(dir)}`, `--cpu-prof-name=${target}-${Date.now()}.cpuprofile`];
}
const WARM_UP_SUBSCRIBERS = 100;

/** VmRSS after a full GC in the process (when the inspector answers), and before it. */
async function settledRss(child: Child): Promise<{ kb: number; beforeGcKb: number; gc: boolean }> {
  await sleep(params.settleSeconds * 1000);
  const beforeGcKb = readRssKb(child.pid);
  const gc = await collectGarbage(child);
  if (gc) await sleep(500);
  return { kb: readRssKb(child.pid), beforeGcKb, gc };
}

/** What one target is, once started. */
interface Started {
  server: Child;
  wsUrl: string;
  tokens: string[];
  roomId: string;
  send: SendTarget;
  stop(): Promise<void>;
}

async function startRaw(): Promise<Started> {
  const server = spawnNode('raw server', 'scripts/bench/raw-server.ts', { env: { ...baseEnv, NODE_ENV: 'production' }, fdLimit: fdTarget, ipc: true, nodeArgs: serverNodeArgs('raw') });
  const stop = () => server.stop(3000);
  cleanups.push(stop);
  const [, origin] = await waitForOutput(server, /RAW ready: (http:\/\/\S+)/, 30_000);
  const roomId = `bench-room-${runId}`;
  return {
    server,
    wsUrl: `${origin?.replace(/^http/, 'ws')}/graphql`,
    tokens: ['raw-server-ignores-tokens'],
    roomId,
    send: { kind: 'raw', url: `${origin}/publish`, roomId },
    stop,
  };
}

async function gql<T>(url: string, query: string, variables: Record<string, unknown>, token?: string): Promise<T> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(60_000),
  });
  const result = (await response.json()) as { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
  if (!result.data || result.errors?.length) {
    throw new Error(`HTTP ${response.status}: ${result.errors?.map((e) => `${e.extensions?.code ?? ''} ${e.message}`).join('; ') ?? 'no data'}`);
  }
  return result.data;
}

async function startApi(kind: 'pglite' | 'postgres'): Promise<Started> {
  const dataDir = await mkdtemp(join(os.tmpdir(), `bench-api-${kind}-`));
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const env: Record<string, string> = {
    ...baseEnv,
    NODE_ENV: 'production',
    JWT_SECRET: randomBytes(32).toString('hex'),
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    SHUTDOWN_GRACE_MS: '1000',
  };
  if (kind === 'postgres') {
    const name = `bench_${runId}`;
    const admin = new pg.Client({ connectionString: adminDatabaseUrl, connectionTimeoutMillis: 5000 });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${name}"`);
    await admin.end();
    cleanups.push(async () => {
      const client = new pg.Client({ connectionString: adminDatabaseUrl, connectionTimeoutMillis: 5000 });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await client.end();
    });
    const url = new URL(adminDatabaseUrl as string);
    url.pathname = `/${name}`;
    env.DATABASE_URL = url.toString();
    env.REDIS_URL = redisUrl as string;
    env.REDIS_PREFIX = `bench-${runId}:`;
  }
  // Many connections per user, like browser tabs: the per-user cap must let the pool hold them all.
  env.WS_MAX_CONNECTIONS_PER_USER = String(Math.ceil(params.connections / params.users) + 10);
  Object.assign(env, apiEnv);
  const server = spawnNode(`API (${kind})`, 'api/main.ts', { env, fdLimit: fdTarget, cwd: apiRoot, nodeArgs: serverNodeArgs(kind) });
  const stop = () => server.stop(10_000);
  cleanups.push(stop);
  const [, url] = await waitForOutput(server, /API ready: (http:\/\/\S+)/, 120_000);
  const apiUrl = url as string;

  try {
    return await setUpRoom(server, apiUrl, stop);
  } catch (error) {
    await sleep(200); // let the server's log of the failure arrive
    throw new Error(`${error instanceof Error ? error.message : String(error)}\nlast API output:\n${server.output().slice(-3000)}`);
  }
}

async function setUpRoom(server: Child, apiUrl: string, stop: () => Promise<void>): Promise<Started> {
  // A small pool of users (sign-up hashes with scrypt on purpose), all in one room;
  // the subscribers take turns among them, several connections per user like browser tabs.
  log(`  signing up ${params.users} users`);
  const tokens: string[] = [];
  const userIds: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < params.users) {
        const i = next++;
        const data = await gql<{ signUp: { token: string; user: { id: string } } }>(apiUrl, SIGN_UP, {
          input: { email: `bench-${runId}-${i}@bench.example`, name: `Bench user ${i}`, password: `bench-password-${runId}` },
        });
        tokens[i] = data.signUp.token;
        userIds[i] = data.signUp.user.id;
      }
    }),
  );
  const room = await gql<{ createRoom: { id: string } }>(apiUrl, CREATE_ROOM, { input: { name: `Bench ${runId}`, memberIds: userIds.slice(1) } }, tokens[0]);
  const roomId = room.createRoom.id;
  return { server, wsUrl: apiUrl.replace(/^http/, 'ws'), tokens, roomId, send: { kind: 'api', url: apiUrl, token: tokens[0] as string, roomId }, stop };
}

interface TargetResult {
  name: string;
  ok: boolean;
  error?: string;
  serverPid?: number;
  connect?: ConnectResult;
  probe?: ProbeResult;
  rss?: {
    idleKb: number;
    connectedKb: number;
    perConnectionKb: number;
    perConnectionBytes: number;
    /** Both readings were taken right after a full GC in the server. */
    afterGc: boolean;
    withoutGc: { idleKb: number; connectedKb: number; perConnectionKb: number };
  };
  run?: RunResult;
  /**
   * Server CPU time during the run; deliveriesPerCpuSecond (deliveries ÷ server CPU seconds)
   * holds up better than deliveries/s when other processes take CPU from the server.
   */
  serverCpu?: { ms: number; percentOfOneCore: number; deliveriesPerCpuSecond: number };
  /**
   * CPU during the run in % of one core: the load client, and everything else on the
   * machine besides server and client (other processes skew the figures when high).
   */
  otherCpu?: { clientPercentOfOneCore: number; othersPercentOfOneCore: number; loadAverageBefore: number };
  held?: { seconds: number; status: ClientStatus; probe: ProbeResult };
  /** The second run: messages at half the raw server's saturation rate, for latency below saturation. */
  halfSaturation?: { rate: number; messages: number; offeredDeliveriesPerSecond: number; run: RunResult };
  status?: ClientStatus;
  throughputRatioVsRaw?: number;
  /** The end of the server's output when the run was not clean. */
  serverOutputTail?: string;
  /** The same ratio by deliveries per server CPU second. */
  cpuEfficiencyRatioVsRaw?: number;
}

const CLK_TCK = 100;
/** Deliveries per second the raw server sustained in this run (0 until measured). */
let rawSaturation = 0;

async function benchTarget(name: string): Promise<TargetResult> {
  const result: TargetResult = { name, ok: false };
  let started: Started | undefined;
  let client: LoadClient | undefined;
  try {
    log(`${name}: starting the server`);
    started = name === 'raw' ? await startRaw() : await startApi(name as 'pglite' | 'postgres');
    result.serverPid = started.server.pid;
    checkFdLimit(started.server, params.connections);
    client = LoadClient.start();
    await client.request<ClientStatus>({ cmd: 'status' }, 60_000); // running node (past the shell's exec)
    checkFdLimit(client.child, params.connections);
    // A few subscribers first, closed again before the idle reading: code compiled and caches
    // filled on first use are then part of the baseline, not of the per-connection figure.
    const warmUp = Math.min(WARM_UP_SUBSCRIBERS, params.subscribers);
    await client.request<ConnectResult>(
      { cmd: 'connect', wsUrl: started.wsUrl, tokens: started.tokens, roomId: started.roomId, count: warmUp, concurrency: params.concurrency, handshakeTimeoutMs: 60_000 },
      120_000,
    );
    await client.request<ProbeResult>({ cmd: 'probe', send: started.send, timeoutMs: 60_000 }, 90_000);
    await client.request<null>({ cmd: 'reset' }, 30_000);
    const idle = await settledRss(started.server);

    log(`${name}: opening ${params.subscribers} subscribers over ${params.connections} connections (${params.concurrency} handshakes at a time, ${started.tokens.length} users)`);
    result.connect = await client.request<ConnectResult>(
      {
        cmd: 'connect',
        wsUrl: started.wsUrl,
        tokens: started.tokens,
        roomId: started.roomId,
        count: params.connections,
        perConnection: params.perConnection,
        concurrency: params.concurrency,
        handshakeTimeoutMs: 60_000,
      },
      Math.max(120_000, params.subscribers * 50),
    );
    log(`${name}: ${result.connect.ready} connected in ${result.connect.durationMs} ms, ${result.connect.failed} failed (ack p50 ${result.connect.ackMs.p50} ms, p99 ${result.connect.ackMs.p99} ms)`);
    if (result.connect.ready === 0) throw new Error(`no subscriber could connect: ${result.connect.errors.join('; ')}`);

    // A subscribe is not acknowledged by the protocol: a probe message that reaches every
    // subscriber proves all subscriptions are running before anything is measured.
    result.probe = await client.request<ProbeResult>({ cmd: 'probe', send: started.send, timeoutMs: 120_000 }, 180_000);
    log(`${name}: ${result.probe.live}/${result.probe.ready} subscriptions live after ${result.probe.probesSent} probe(s), ${result.probe.durationMs} ms`);
    if (result.probe.live < result.probe.ready) throw new Error(`only ${result.probe.live} of ${result.probe.ready} subscriptions received the probe`);

    const connected = await settledRss(started.server);
    // Per subscription: with --per-connection K, K subscriptions share each connection.
    const subscriptions = result.connect.ready * params.perConnection;
    const perConnectionKb = (connected.kb - idle.kb) / subscriptions;
    result.rss = {
      idleKb: idle.kb,
      connectedKb: connected.kb,
      perConnectionKb: round(perConnectionKb, 2),
      perConnectionBytes: Math.round(perConnectionKb * 1024),
      afterGc: idle.gc && connected.gc,
      withoutGc: { idleKb: idle.beforeGcKb, connectedKb: connected.beforeGcKb, perConnectionKb: round((connected.beforeGcKb - idle.beforeGcKb) / subscriptions, 2) },
    };
    log(
      `${name}: server RSS ${mb(idle.kb)} idle → ${mb(connected.kb)} with ${subscriptions} subscribers${result.rss.afterGc ? ' (after a full GC)' : ''}: ` +
        `${result.rss.perConnectionKb} KB each (${result.rss.withoutGc.perConnectionKb} KB before the GC)`,
    );

    if (idleOnly) {
      log(`${name}: holding ${subscriptions} idle subscriptions for ${params.holdSeconds} s`);
      await sleep(params.holdSeconds * 1000);
      const status = await client.request<ClientStatus>({ cmd: 'status' }, 30_000);
      const probe = await client.request<ProbeResult>({ cmd: 'probe', send: started.send, timeoutMs: 120_000 }, 180_000);
      result.held = { seconds: params.holdSeconds, status, probe };
      log(`${name}: after ${params.holdSeconds} s ${status.ready} open, ${status.unexpectedCloses} closed by the server, ${probe.live}/${probe.ready} still live`);
    } else {
      const loadAverageBefore = round(os.loadavg()[0] ?? 0, 2);
      if (loadAverageBefore > 1) log(`${name}: warning: load average ${loadAverageBefore} before the run: other processes compete for the CPU`);
      const cpuBefore = readCpuTicks(started.server.pid);
      const clientBefore = readCpuTicks(client.child.pid);
      const machineBefore = readMachineTicks();
      const startedAt = Date.now();
      log(`${name}: sending ${params.messages} messages at ${params.rate}/s to ${subscriptions} subscribers`);
      result.run = await client.request<RunResult>(
        {
          cmd: 'run',
          send: started.send,
          messages: params.messages,
          rate: params.rate,
          drainTimeoutMs: params.drainTimeoutSeconds * 1000,
          runId: `bench-${runId}-${name}`,
        },
        // Bounded by the client's drain timeout while deliveries progress; this only catches a hang.
        Math.max(600_000, params.messages * params.subscribers * 2),
      );
      const serverTicks = readCpuTicks(started.server.pid) - cpuBefore;
      const clientTicks = readCpuTicks(client.child.pid) - clientBefore;
      const machine = readMachineTicks();
      const cpus = os.cpus().length;
      const cpuMs = (serverTicks * 1000) / CLK_TCK;
      const wallMs = Math.max(1, Date.now() - startedAt);
      const coreTicks = (machine.total - machineBefore.total) / cpus; // ticks of one core over the run
      result.serverCpu = {
        ms: Math.round(cpuMs),
        percentOfOneCore: round((cpuMs / wallMs) * 100),
        deliveriesPerCpuSecond: Math.round((result.run.delivered * 1000) / Math.max(1, cpuMs)),
      };
      result.otherCpu = {
        clientPercentOfOneCore: round((clientTicks / Math.max(1, coreTicks)) * 100),
        othersPercentOfOneCore: round((Math.max(0, machine.busy - machineBefore.busy - serverTicks - clientTicks) / Math.max(1, coreTicks)) * 100),
        loadAverageBefore,
      };
      const r = result.run;
      log(`${name}: ${r.delivered}/${r.expected} delivered, ${r.deliveriesPerSecond}/s, latency p50 ${r.latencyMs.p50} ms p99 ${r.latencyMs.p99} ms, lost ${r.lost}`);
      if (name === 'raw') rawSaturation = r.deliveriesPerSecond;
      if (params.latencySeconds > 0 && rawSaturation > 0) {
        // Latency where the server is not saturated: half of what raw Node sustained in this run.
        const offered = rawSaturation / 2;
        const rate = round(offered / subscriptions, 2);
        const messages = Math.max(10, Math.round(rate * params.latencySeconds));
        await sleep(2000); // let the saturation run's tail leave the sockets
        log(`${name}: latency run: ${messages} messages at ${rate}/s (${fmt(offered)} deliveries/s, half of raw's ${fmt(rawSaturation)})`);
        const run = await client.request<RunResult>(
          { cmd: 'run', send: started.send, messages, rate, drainTimeoutMs: params.drainTimeoutSeconds * 1000, runId: `bench-${runId}-${name}-half` },
          Math.max(600_000, messages * params.subscribers * 2),
        );
        result.halfSaturation = { rate, messages, offeredDeliveriesPerSecond: Math.round(offered), run };
        log(`${name}: at half saturation p50 ${run.latencyMs.p50} ms, p99 ${run.latencyMs.p99} ms, lost ${run.lost}`);
      }
    }
    result.status = await client.request<ClientStatus>({ cmd: 'status' }, 30_000);
    result.ok = isClean(result);
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
    log(`${name}: FAILED: ${result.error}`);
    if (started) log(`${name}: last server output:\n${started.server.output().slice(-2000)}`);
  } finally {
    // What the server logged (warnings and errors) explains a failed or unclean run.
    if (!result.ok && started) result.serverOutputTail = started.server.output().slice(-8000);
    await client?.close();
    await started?.stop();
  }
  return result;
}

/** No connection failures, nothing lost or repeated, no errors on the sockets. */
function isClean(result: TargetResult): boolean {
  const status = result.held?.status ?? result.status;
  if (!result.connect || result.connect.failed > 0) return false;
  if (status && (status.unexpectedCloses > 0 || status.protocolErrors > 0 || status.graphqlErrors > 0)) return false;
  if (result.held && result.held.probe.live < result.held.probe.ready) return false;
  for (const run of [result.run, result.halfSaturation?.run]) if (run && (run.lost > 0 || run.duplicates > 0 || run.sendErrors > 0)) return false;
  return true;
}

function mb(kb: number): string {
  return `${(kb / 1024).toFixed(1)} MB`;
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((row) => (row[c] ?? '').length))) ?? [];
  const line = (row: string[]) => row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  ');
  return [line(rows[0] ?? []), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

const fmt = (value: number | undefined, digits = 0) => (value === undefined || Number.isNaN(value) ? '-' : value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));

async function main() {
  const cpus = os.cpus();
  const machine = {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    totalMemoryMb: Math.round(os.totalmem() / 1024 / 1024),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
  };
  const note =
    `One machine, ${machine.cpus} CPU core(s): the server under test, the load client and the harness share them ` +
    `(client and server are separate processes, so their CPU is measured apart). Figures compare targets on this machine; they are not capacity figures for a dedicated server.`;
  log(`${params.mode === 'idle' ? 'idle subscriptions' : 'fan-out'}: ${params.subscribers} subscribers${idleOnly ? '' : `, ${params.messages} messages at ${params.rate}/s`}, targets ${params.targets.join(', ')}`);
  log(note);

  const startedAt = new Date().toISOString();
  const results: TargetResult[] = [];
  for (const target of params.targets) results.push(await benchTarget(target));
  await cleanupAll();

  const raw = results.find((r) => r.name === 'raw' && r.run);
  for (const result of results) {
    if (raw?.run && result.run && raw.run.deliveriesPerSecond > 0) result.throughputRatioVsRaw = round(result.run.deliveriesPerSecond / raw.run.deliveriesPerSecond, 3);
    if (raw?.serverCpu && result.serverCpu && raw.serverCpu.deliveriesPerCpuSecond > 0) {
      result.cpuEfficiencyRatioVsRaw = round(result.serverCpu.deliveriesPerCpuSecond / raw.serverCpu.deliveriesPerCpuSecond, 3);
    }
  }

  const report = {
    startedAt,
    finishedAt: new Date().toISOString(),
    machine,
    parameters: { ...params, apiRoot, apiEnv },
    note,
    targets: results,
  };
  const out = resolve(REPO_ROOT, args.out ?? join('bench-results', `bench-${params.mode}-${startedAt.replace(/[:.]/g, '-')}.json`));
  mkdirSync(resolve(out, '..'), { recursive: true });
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);

  console.log('');
  console.log(`Machine: ${machine.cpus} cores (${machine.cpuModel}), ${machine.totalMemoryMb} MB, Node ${machine.node}`);
  console.log(note);
  if (idleOnly) {
    console.log(`\nIdle subscriptions: ${params.subscribers} subscribers on ${params.connections} connections over ${params.users} users, held ${params.holdSeconds} s\n`);
    const rows = [['target', 'connected', 'failed', 'connect s', 'ack p99 ms', 'closed', 'live after hold', 'RSS idle', 'RSS held', 'RSS/sub KB', 'ok']];
    for (const r of results) {
      rows.push([
        r.name,
        fmt(r.connect?.ready),
        fmt(r.connect?.failed),
        fmt(r.connect && r.connect.durationMs / 1000, 1),
        fmt(r.connect?.ackMs.p99),
        fmt(r.held?.status.unexpectedCloses),
        r.held ? `${fmt(r.held.probe.live)}/${fmt(r.held.probe.ready)}` : '-',
        r.rss ? mb(r.rss.idleKb) : '-',
        r.rss ? mb(r.rss.connectedKb) : '-',
        fmt(r.rss?.perConnectionKb, 1),
        r.ok ? 'yes' : 'NO',
      ]);
    }
    console.log(table(rows));
  } else {
    console.log(`\nFan-out: ${params.subscribers} subscribers in one room, ${params.messages} messages at ${params.rate}/s (offered ${fmt(params.subscribers * params.rate)} deliveries/s)\n`);
    const rows = [['target', 'deliveries/s', 'vs raw', 'p50 ms', 'p99 ms', 'max ms', 'delivered', 'lost', 'send err', 'dup', 'RSS/conn KB', 'server CPU', 'per CPU-s', 'vs raw', 'client CPU', 'other CPU', 'ok']];
    for (const r of results) {
      rows.push([
        r.name,
        fmt(r.run?.deliveriesPerSecond),
        r.throughputRatioVsRaw === undefined ? '-' : `${fmt(r.throughputRatioVsRaw, 2)}x`,
        fmt(r.run?.latencyMs.p50),
        fmt(r.run?.latencyMs.p99),
        fmt(r.run?.latencyMs.max),
        r.run ? `${fmt(r.run.delivered)}/${fmt(r.run.expected)}` : '-',
        fmt(r.run?.lost),
        fmt(r.run?.sendErrors),
        fmt(r.run?.duplicates),
        fmt(r.rss?.perConnectionKb, 1),
        r.serverCpu ? `${r.serverCpu.percentOfOneCore}%` : '-',
        fmt(r.serverCpu?.deliveriesPerCpuSecond),
        r.cpuEfficiencyRatioVsRaw === undefined ? '-' : `${fmt(r.cpuEfficiencyRatioVsRaw, 2)}x`,
        r.otherCpu ? `${r.otherCpu.clientPercentOfOneCore}%` : '-',
        r.otherCpu ? `${r.otherCpu.othersPercentOfOneCore}%` : '-',
        r.ok ? 'yes' : 'NO',
      ]);
    }
    console.log(table(rows));
    console.log('\nlatency: receive time − send time written in the body (same clock, the client sends); deliveries/s: delivered ÷ (first send → last delivery);');
    console.log('lost: of subscribers × messages, never delivered (the messages of failed sends included); send err: sends refused or timed out;');
    console.log('RSS/conn: (server VmRSS with all subscribers live − VmRSS before connecting) ÷ subscribers;');
    console.log('CPU: % of one core during the run; per CPU-s: deliveries ÷ server CPU seconds (less sensitive to other load);');
    console.log('other CPU: every process on the machine besides server and client (high values mean the figures are skewed).');
    const half = results.filter((r) => r.halfSaturation);
    if (half.length > 0) {
      const h = half[0]?.halfSaturation as NonNullable<TargetResult['halfSaturation']>;
      console.log(`\nLatency below saturation: ${fmt(h.messages)} messages at ${fmt(h.rate, 2)}/s = ${fmt(h.offeredDeliveriesPerSecond)} deliveries/s, half of raw's saturation rate above\n`);
      const latencyRows = [['target', 'p50 ms', 'p99 ms', 'max ms', 'delivered', 'lost', 'dup', 'p99 vs raw', 'p99 < 100 ms']];
      const rawP99 = results.find((r) => r.name === 'raw')?.halfSaturation?.run.latencyMs.p99;
      for (const r of half) {
        const run = r.halfSaturation?.run as RunResult;
        latencyRows.push([
          r.name,
          fmt(run.latencyMs.p50),
          fmt(run.latencyMs.p99),
          fmt(run.latencyMs.max),
          `${fmt(run.delivered)}/${fmt(run.expected)}`,
          fmt(run.lost),
          fmt(run.duplicates),
          rawP99 ? `${fmt(run.latencyMs.p99 / Math.max(1, rawP99), 2)}x` : '-',
          run.latencyMs.p99 < 100 ? 'yes' : 'NO',
        ]);
      }
      console.log(table(latencyRows));
    }
  }
  for (const r of results) if (r.error) console.log(`\n${r.name} failed: ${r.error}`);
  for (const r of results) {
    const status = r.held?.status ?? r.status;
    if (status?.errors.length || r.connect?.errors.length) console.log(`\n${r.name} errors: ${[...new Set([...(r.connect?.errors ?? []), ...(status?.errors ?? [])])].join('; ')}`);
  }
  console.log(`\nResults written to ${out}`);
  process.exitCode = results.every((r) => r.ok) ? 0 : 1;
}

main().catch(async (error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  await cleanupAll();
  process.exit(1);
});
