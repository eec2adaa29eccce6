/**
 * The soak's processes: the demo backends (forked from src/demo/backend.ts,
 * as src/demo/demo.ts does, so each exits by itself if the soak dies and its
 * IPC channel closes), the usher process, and a small admin API client.
 *
 * Every backend is tracked here and ended by PID; usher and wrk go through
 * bench/lib/proc.ts, which tracks them the same way.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { start, stop, type Spawned } from './proc.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BACKEND_SCRIPT = join(ROOT, 'src', 'demo', 'backend.ts');
export const USHER_CLI = join(ROOT, 'dist', 'cli.js');

export interface SoakBackend {
  readonly name: string;
  /** Fixed after the first start: restarts reuse it. */
  port: number;
  child: ChildProcess;
  pid: number;
  starts: number;
}

const liveBackends = new Set<ChildProcess>();

async function forkOne(name: string, port: number): Promise<{ child: ChildProcess; port: number; pid: number }> {
  const child = fork(BACKEND_SCRIPT, ['--name', name, '--port', String(port)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  if (child.pid === undefined) throw new Error(`backend ${name}: could not fork`);
  liveBackends.add(child);
  child.once('exit', () => liveBackends.delete(child));
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-2000);
  });
  try {
    const [message] = (await Promise.race([
      once(child, 'message', { signal: AbortSignal.timeout(10_000) }),
      once(child, 'exit').then(([code]) => {
        throw new Error(`exited with ${String(code)}: ${stderr.trim()}`);
      }),
    ])) as [{ ready: number }];
    return { child, port: message.ready, pid: child.pid };
  } catch (err) {
    killPid(child.pid, 'SIGKILL');
    throw new Error(`backend ${name} on port ${port}: ${(err as Error).message}`);
  }
}

/** Forks one backend per name on an ephemeral port; resolves once each listens. */
export async function startBackends(names: readonly string[]): Promise<SoakBackend[]> {
  return Promise.all(
    names.map(async (name) => {
      const { child, port, pid } = await forkOne(name, 0);
      const backend: SoakBackend = { name, port, child, pid, starts: 1 };
      return backend;
    }),
  );
}

/** SIGKILLs the backend (by PID) and waits until it is gone. */
export async function killBackend(backend: SoakBackend): Promise<void> {
  const exited = backend.child.exitCode !== null || backend.child.signalCode !== null ? Promise.resolve() : once(backend.child, 'exit').then(() => undefined);
  killPid(backend.pid, 'SIGKILL');
  await Promise.race([exited, sleep(5000)]);
}

/** Starts the backend again on its port (a few tries: the port is normally free at once). */
export async function restartBackend(backend: SoakBackend): Promise<void> {
  let last: unknown;
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      const { child, pid } = await forkOne(backend.name, backend.port);
      backend.child = child;
      backend.pid = pid;
      backend.starts++;
      return;
    } catch (err) {
      last = err;
      await sleep(200);
    }
  }
  throw last instanceof Error ? last : new Error(String(last));
}

export async function stopBackends(backends: readonly SoakBackend[]): Promise<void> {
  await Promise.all(
    backends.map(async (backend) => {
      if (backend.child.exitCode !== null || backend.child.signalCode !== null) return;
      const exited = once(backend.child, 'exit');
      killPid(backend.pid, 'SIGTERM');
      const t = await Promise.race([exited.then(() => 'exit'), sleep(2000).then(() => 'timeout')]);
      if (t === 'timeout') killPid(backend.pid, 'SIGKILL');
    }),
  );
}

/** Synchronous last resort (exit, signals): SIGKILL every backend still alive. */
export function killBackendsSync(): void {
  for (const child of liveBackends) if (child.pid !== undefined) killPid(child.pid, 'SIGKILL');
  liveBackends.clear();
}

function killPid(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

export interface UsherProcess {
  readonly proc: Spawned;
  readonly pid: number;
  /** The listener's URL, from the `"msg":"listening"` log line. */
  readonly url: string;
  /** The admin API's URL, from the `"msg":"admin API listening"` log line. */
  readonly adminUrl: string;
  /** Lines of usher's process log at level warn (40) or above, with their time. */
  readonly problems: string[];
  readonly logPath: string;
  close(): Promise<void>;
}

/**
 * Starts `node dist/cli.js start -c <config> --workers <workers>` (explicit, so
 * usher's own default, auto, never applies), copies its output to
 * `<dir>/usher.log`, and waits for both "listening" lines.
 */
export async function startUsher(configPath: string, dir: string, workers: number): Promise<UsherProcess> {
  const logPath = join(dir, 'usher.log');
  const file: WriteStream = createWriteStream(logPath);
  const proc = start('usher', [process.execPath, USHER_CLI, 'start', '-c', configPath, '--workers', String(workers)], dir);
  let url: string | undefined;
  let adminUrl: string | undefined;
  const problems: string[] = [];
  let partial = '';
  const onData = (chunk: Buffer): void => {
    file.write(chunk);
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      let entry: { level?: number; msg?: string; address?: string; listener?: string };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        continue;
      }
      if (entry.msg === 'admin API listening' && entry.address !== undefined) adminUrl = entry.address;
      else if (entry.msg === 'listening' && entry.address?.startsWith('http://')) url = entry.address;
      if ((entry.level ?? 0) >= 40 && problems.length < 1000) problems.push(line);
    }
  };
  proc.child.stdout?.on('data', onData);
  proc.child.stderr?.on('data', onData);
  const deadline = Date.now() + 15_000;
  while ((url === undefined || adminUrl === undefined) && Date.now() < deadline) {
    if (proc.exited) throw new Error(`usher exited (code ${proc.exitCode}) before listening:\n${proc.output.trim()}`);
    await sleep(25);
  }
  if (url === undefined || adminUrl === undefined) {
    await stop(proc);
    throw new Error(`usher did not log its listener and admin addresses within 15 s:\n${proc.output.trim()}`);
  }
  return {
    proc,
    pid: proc.pid,
    url,
    adminUrl,
    problems,
    logPath,
    close: async () => {
      await stop(proc, 10_000);
      await new Promise<void>((resolve) => file.end(resolve));
    },
  };
}

export interface AdminReply {
  readonly status: number;
  readonly body: unknown;
}

/** The admin API over fetch, each call bounded by 5 s. */
export class AdminClient {
  readonly base: string;

  constructor(base: string) {
    this.base = base;
  }

  async call(method: 'GET' | 'POST', path: string): Promise<AdminReply> {
    const res = await fetch(`${this.base}${path}`, { method, signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, body };
  }

  async backends(pool: string): Promise<AdminBackend[]> {
    const reply = await this.call('GET', `/api/pools/${encodeURIComponent(pool)}`);
    if (reply.status !== 200) throw new Error(`GET /api/pools/${pool}: ${reply.status} ${JSON.stringify(reply.body)}`);
    return (reply.body as { backends: AdminBackend[] }).backends;
  }
}

/** The fields of the admin API's backend view the soak reads. */
export interface AdminBackend {
  readonly address: string;
  readonly state: string;
  readonly adminState: string;
  readonly healthy: boolean;
  readonly ejected: boolean;
  readonly weight: number;
  readonly inFlight: number;
  readonly counters: { readonly requests: number; readonly failures: number; readonly responses5xx: number; readonly retriedAway: number; readonly ejections: number };
}
