import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, where `api/main.ts` lives. */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A child process this test run started and must stop. */
export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  /** Everything it wrote so far (stdout and stderr), for failure messages. */
  output(): string;
  /** Settles when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly running: boolean;
  /** Sends `signal` (SIGKILL by default) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

// Everything started and not yet seen exiting, so that a failing test cannot
// leave servers behind: afterAll hooks call killLeftovers(), and the exit hook
// below covers a test process that dies without running them.
const leftovers = new Set<Child>();
process.once('exit', () => {
  for (const child of leftovers) child.process.kill('SIGKILL');
});

/** Starts a process, tracked in the leftovers list until it exits. */
export function spawnTracked(name: string, command: string, args: string[], options: { env: Record<string, string>; cwd?: string }): Child {
  const proc = spawn(command, args, { cwd: options.cwd ?? REPO_ROOT, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const append = (chunk: Buffer) => {
    output += chunk.toString();
    // Keep memory bounded for chatty processes; the tail is what explains a failure.
    if (output.length > 200_000) output = output.slice(-100_000);
  };
  proc.stdout?.on('data', append);
  proc.stderr?.on('data', append);
  let running = true;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => {
      running = false;
      leftovers.delete(child);
      resolve({ code, signal });
    });
    proc.once('error', (error) => {
      running = false;
      leftovers.delete(child);
      output += `\nspawn failed: ${String(error)}`;
      resolve({ code: null, signal: null });
    });
  });
  const child: Child = {
    name,
    process: proc,
    output: () => output,
    exited,
    get running() {
      return running;
    },
    async kill(signal = 'SIGKILL') {
      if (running) proc.kill(signal);
      await exited;
    },
  };
  leftovers.add(child);
  return child;
}

/** Kills every tracked process still running and waits for them to exit. */
export async function killLeftovers(): Promise<void> {
  await Promise.all([...leftovers].map((child) => child.kill('SIGKILL')));
}

/**
 * A TCP port free right now on 127.0.0.1. Another process could take it
 * before the caller binds it; good enough for a test machine.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Resolves when `output()` matches `pattern`; rejects on exit or timeout, with the output. */
export async function waitForOutput(child: Child, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const match = child.output().match(pattern);
    if (match) return match;
    if (!child.running) throw new Error(`${child.name} exited before printing ${pattern}:\n${child.output().slice(-4000)}`);
    if (Date.now() > deadline) throw new Error(`${child.name} did not print ${pattern} within ${timeoutMs} ms:\n${child.output().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A real API process (`api/main.ts`) listening on a port of its own choosing. */
export interface ApiProcess extends Child {
  url: string;
  wsUrl: string;
  dataDir: string;
  /** Kills the process (if running) and removes its data folder. */
  dispose(): Promise<void>;
}

/**
 * Starts `node --import tsx api/main.ts` on port 0 with its own data folder and
 * the given environment, and waits for its "API ready: <url>" line.
 */
export async function startApiProcess(name: string, env: Record<string, string>, readyTimeoutMs = 90_000): Promise<ApiProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), `rt-api-${name}-`));
  const child = spawnTracked(name, process.execPath, ['--import', 'tsx', 'api/main.ts'], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? tmpdir(),
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: '0',
      DATA_DIR: dataDir,
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
      SHUTDOWN_GRACE_MS: '1000',
      ...env,
    },
  });
  const dispose = async () => {
    await child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    const match = await waitForOutput(child, /API ready: (http:\/\/\S+)/, readyTimeoutMs);
    const url = match[1] as string;
    return {
      name,
      process: child.process,
      output: child.output,
      exited: child.exited,
      get running() {
        return child.running;
      },
      kill: child.kill,
      url,
      wsUrl: url.replace(/^http/, 'ws'),
      dataDir,
      dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
}
