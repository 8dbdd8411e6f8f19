/**
 * Child processes of the benchmark: started through `sh -c 'ulimit -n …; exec
 * node …'` so each gets the open-files limit its sockets need (the pid stays
 * the node process's), tracked, and killed when the harness exits however it
 * exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readFdLimit, sleep } from './lib.ts';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly process: ChildProcess;
  output(): string;
  readonly running: boolean;
  readonly exited: Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

const leftovers = new Set<Child>();

function killLeftovers() {
  for (const child of leftovers) child.process.kill('SIGKILL');
}
process.once('exit', killLeftovers);

/** Installs signal handlers that run `cleanup` (bounded), kill every child and exit. */
export function exitCleanlyOnSignals(cleanup: () => Promise<void>) {
  let exiting = false;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (exiting) process.exit(130);
      exiting = true;
      console.error(`\n${signal}: stopping the benchmark`);
      killLeftovers();
      void Promise.race([cleanup(), sleep(10_000)]).finally(() => process.exit(130));
    });
  }
}

export interface SpawnOptions {
  env: Record<string, string>;
  /** Raise the soft open-files limit to this before exec (needs a high enough hard limit, or root). */
  fdLimit: number;
  /** Open an IPC channel (process.send in the child). */
  ipc?: boolean;
  /** Working directory (default: this repository). */
  cwd?: string;
  /** Extra node options, before the script. */
  nodeArgs?: string[];
}

/** Starts `node --import tsx <script>` with the given environment. */
export function spawnNode(name: string, script: string, options: SpawnOptions): Child {
  const proc = spawn('/bin/sh', ['-c', `ulimit -n ${options.fdLimit} 2>/dev/null; exec "$@"`, 'sh', process.execPath, ...(options.nodeArgs ?? []), '--import', 'tsx', script], {
    cwd: options.cwd ?? REPO_ROOT,
    env: options.env,
    stdio: options.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const append = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > 200_000) output = output.slice(-100_000);
  };
  proc.stdout?.on('data', append);
  proc.stderr?.on('data', append);
  let running = true;
  const exited = new Promise<void>((resolve) => {
    proc.once('exit', () => {
      running = false;
      leftovers.delete(child);
      resolve();
    });
    proc.once('error', (error) => {
      running = false;
      leftovers.delete(child);
      output += `\nspawn failed: ${String(error)}`;
      resolve();
    });
  });
  const child: Child = {
    name,
    pid: proc.pid ?? -1,
    process: proc,
    output: () => output,
    get running() {
      return running;
    },
    exited,
    async stop(graceMs = 5000) {
      if (!running) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  leftovers.add(child);
  return child;
}

/** Resolves with the match once the child prints `pattern`; rejects on exit or timeout. */
export async function waitForOutput(child: Child, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const match = child.output().match(pattern);
    if (match) return match;
    if (!child.running) throw new Error(`${child.name} exited before it was ready:\n${child.output().slice(-4000)}`);
    if (Date.now() > deadline) throw new Error(`${child.name} was not ready within ${timeoutMs} ms:\n${child.output().slice(-4000)}`);
    await sleep(25);
  }
}

/** Throws a clear message when a running child cannot open `sockets` more files. */
export function checkFdLimit(child: Child, sockets: number) {
  const limit = readFdLimit(child.pid);
  const open = readdirSync(`/proc/${child.pid}/fd`).length;
  const needed = open + sockets + FD_HEADROOM;
  if (limit < needed) {
    throw new Error(
      `open-files limit too low: ${child.name} (pid ${child.pid}) may open ${limit} files; it holds ${open} and this run needs ${sockets} sockets more ` +
        `(${needed} with some headroom). Raise the limit (\`ulimit -n ${needed}\` before npm run bench; a hard limit needs root or /etc/security/limits.conf) ` +
        `or pass at most --subscribers ${Math.max(0, limit - open - FD_HEADROOM)}.`,
    );
  }
}

/** Files a process may open besides the benchmark's sockets (logs, database files, HTTP requests). */
const FD_HEADROOM = 64;
