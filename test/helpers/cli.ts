import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The built CLI: the same file `npx usher` runs. `npm test` builds it first. */
export const cliPath = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export function assertBuilt(): void {
  if (!existsSync(cliPath)) throw new Error(`${cliPath} is missing: run "npm run build" (npm test does it)`);
}

export interface RunningCli {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  /** Resolves with the first stdout/stderr match of `pattern`, or rejects after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
}

/** Spawns `node dist/cli.js ...args` with the Node running the tests. Kill it in `t.after`. */
export function spawnCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): RunningCli {
  assertBuilt();
  // One thread unless a test asks for workers: most CLI tests are about the CLI, and CI has two cores.
  const child = spawn(process.execPath, [cliPath, ...args], { env: { USHER_WORKERS: '0', ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const running: RunningCli = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
    waitFor(pattern, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const match = running.stdout.match(pattern) ?? running.stderr.match(pattern);
          if (match) {
            clearTimeout(timer);
            child.stdout?.off('data', check);
            child.stderr?.off('data', check);
            resolve(match);
          }
          return match !== null;
        };
        const timer = setTimeout(() => {
          child.stdout?.off('data', check);
          child.stderr?.off('data', check);
          reject(new Error(`timed out waiting for ${pattern}\nstdout: ${running.stdout}\nstderr: ${running.stderr}`));
        }, timeoutMs);
        if (check()) return;
        child.stdout?.on('data', check);
        child.stderr?.on('data', check);
      });
    },
  };
  child.stdout?.on('data', (chunk: Buffer) => (running.stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (running.stderr += chunk.toString()));
  return running;
}

/** Runs the CLI to completion and returns its exit code and output. */
export async function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const running = spawnCli(args, env);
  const code = await running.exited;
  return { code, stdout: running.stdout, stderr: running.stderr };
}

/** Peak resident memory (VmHWM) of a process in MiB, read from /proc. */
export function peakRssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = status.match(/VmHWM:\s+(\d+) kB/);
  if (!match) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(match[1]) / 1024;
}
