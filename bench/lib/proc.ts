/**
 * Process plumbing for the bench: spawn pinned children, track them, stop
 * them by PID, wait for ports, and read CPU time from /proc.
 *
 * Only processes this module spawned are ever signalled (by PID, never by
 * name), so a bench run cannot disturb anything else on the machine.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** A child the bench started; `output` keeps the tail of stdout+stderr for error messages. */
export interface Spawned {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  output: string;
  exited: boolean;
  /** Set once stdout/stderr are drained too (after `exited`). */
  closed: boolean;
  exitCode: number | null;
}

const OUTPUT_TAIL = 4000;
const live = new Set<Spawned>();

/** True when `cmd` resolves on PATH. */
export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

let taskset: boolean | undefined;
let niceness = 0;

/**
 * Niceness for every process the bench starts (0 = unchanged). A negative
 * value needs root; it keeps other work on a shared machine from taking the
 * pinned CPUs mid-run. Applied with `nice -n`, so every thread inherits it.
 */
export function setNiceness(n: number): void {
  niceness = n;
}

/** `[nice -n N] [taskset -c <cpu>]` prefix; no taskset when it is missing or `cpu` is undefined. */
export function pinned(cpu: number | undefined, argv: readonly string[]): string[] {
  taskset ??= hasCommand('taskset');
  const out: string[] = niceness !== 0 ? ['nice', '-n', String(niceness)] : [];
  if (cpu !== undefined && taskset) out.push('taskset', '-c', String(cpu));
  return [...out, ...argv];
}

/** Whether CPU pinning is available on this machine. */
export function canPin(): boolean {
  taskset ??= hasCommand('taskset');
  return taskset;
}

/** Spawns `argv` (already pinned if wanted) and tracks it for cleanup. */
export function start(name: string, argv: readonly string[], cwd?: string): Spawned {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error(`${name}: empty command`);
  const child = spawn(file, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`${name}: could not spawn ${file}`);
  const proc: Spawned = { name, child, pid: child.pid, output: '', exited: false, closed: false, exitCode: null };
  const keep = (chunk: Buffer): void => {
    proc.output = (proc.output + chunk.toString()).slice(-OUTPUT_TAIL);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('error', (err) => {
    proc.output += `\nspawn error: ${err.message}`;
    proc.exited = true;
    proc.closed = true;
    live.delete(proc);
  });
  child.on('close', () => {
    proc.closed = true;
  });
  child.on('exit', (code) => {
    proc.exited = true;
    proc.exitCode = code;
    live.delete(proc);
  });
  live.add(proc);
  return proc;
}

/** SIGTERM, then SIGKILL after `graceMs`, to this one PID (and its descendants, found via /proc). */
export async function stop(proc: Spawned, graceMs = 2000): Promise<void> {
  if (proc.exited) return;
  const family = [...descendants(proc.pid), proc.pid];
  for (const pid of family) signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (!proc.exited && Date.now() < deadline) await sleep(25);
  for (const pid of family) if (alive(pid)) signal(pid, 'SIGKILL');
  const hard = Date.now() + 2000;
  while (!proc.exited && Date.now() < hard) await sleep(25);
}

/** Synchronous last-resort cleanup (process exit / signals). */
export function killAllSync(): void {
  for (const proc of live) {
    for (const pid of [...descendants(proc.pid), proc.pid]) signal(pid, 'SIGKILL');
  }
  live.clear();
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    // ESRCH: already gone, which is the goal.
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Resolves when 127.0.0.1:port accepts a TCP connection; rejects if `proc`
 * exits or on timeout. Tries every `pollMs` (the resolution of a start time
 * measured with it).
 */
export async function waitForPort(port: number, proc: Spawned | undefined, timeoutMs = 10_000, pollMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc?.exited) throw new Error(`${proc.name} exited (code ${proc.exitCode}) before listening on ${port}:\n${proc.output.trim()}`);
    if (await canConnect(port)) return;
    await sleep(pollMs);
  }
  throw new Error(`port ${port} not accepting connections after ${timeoutMs} ms${proc ? `:\n${proc.output.trim()}` : ''}`);
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    sock.setTimeout(500);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('timeout', () => {
      sock.destroy();
      resolve(false);
    });
    sock.once('error', () => resolve(false));
  });
}

/**
 * Parsed /proc/<pid>/stat: ppid and CPU time in clock ticks: utime+stime, which
 * the kernel sums over every thread of the process (the live ones and those
 * that exited), plus cutime+cstime, the time of children it has reaped (so a
 * child process that exits in the middle of a measured run keeps counting).
 */
function statOf(pid: number): { ppid: number; ticks: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // Field 2 (comm) may contain spaces and parentheses; fields after the last ')' are fixed.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): ppid = field 4, utime = 14, stime = 15, cutime = 16, cstime = 17.
  return { ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]) + Number(rest[13]) + Number(rest[14]) };
}

/** All live descendants of `root` (children, grandchildren, ...). */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const entry of entries) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const stat = statOf(pid);
    if (stat === undefined) continue;
    const list = children.get(stat.ppid);
    if (list) list.push(pid);
    else children.set(stat.ppid, [pid]);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.pop() as number;
    for (const child of children.get(pid) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

/** CPU ticks (utime+stime of every thread, plus reaped children) of each listed PID, summed; missing PIDs count 0. */
export function cpuTicks(pids: readonly number[]): number {
  let sum = 0;
  for (const pid of pids) sum += statOf(pid)?.ticks ?? 0;
  return sum;
}

let clkTck: number | undefined;

/** Clock ticks per second (`getconf CLK_TCK`, 100 on Linux in practice). */
export function ticksPerSecond(): number {
  if (clkTck === undefined) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number(out.stdout?.trim());
    clkTck = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return clkTck;
}

/** Per-CPU busy and total jiffies from /proc/stat, indexed by CPU number. */
export function cpuJiffies(): { busy: number; total: number }[] {
  const out: { busy: number; total: number }[] = [];
  let text: string;
  try {
    text = readFileSync('/proc/stat', 'latin1');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const m = /^cpu(\d+) (.*)$/.exec(line);
    if (!m) continue;
    const f = (m[2] ?? '').trim().split(/\s+/).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    out[Number(m[1])] = { busy: total - idle, total };
  }
  return out;
}

/** Threads of the PIDs together (`Threads:` in /proc/<pid>/status; 0 for a PID that is gone). */
export function threadCount(pids: readonly number[]): number {
  let n = 0;
  for (const pid of pids) {
    try {
      const m = /Threads:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
      if (m) n += Number(m[1]);
    } catch {
      // gone
    }
  }
  return n;
}

/** Resident set size of the PIDs in MiB (VmRSS sum). */
export function rssMiB(pids: readonly number[]): number {
  let kib = 0;
  for (const pid of pids) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
      if (m) kib += Number(m[1]);
    } catch {
      // Process gone between listing and reading: it holds no memory.
    }
  }
  return kib / 1024;
}

/** A currently free loopback port (bind to 0, read, close; the small race is acceptable here). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('no port'))));
    });
  });
}
