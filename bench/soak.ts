/**
 * `npm run soak`: a bounded soak of a real usher process. See bench/README.md, "Soak".
 *
 * Flow: fork 3 demo backends (src/demo/backend.ts) → write config A into a
 * temp dir → `node dist/cli.js start -c <dir>/usher.yaml --workers N` (listener and admin
 * API on 127.0.0.1:0, URLs read from usher's log) → wait until all backends
 * are healthy → steady load (wrk, else a Node keep-alive client) for
 * --minutes, with the chaos loop (bench/lib/soak-chaos.ts) and RSS/CPU samples
 * of usher every --sample seconds → stop usher and the backends → scan the
 * access log for failed requests and attribute them to chaos events → print
 * the summary and write bench/results/soak-<timestamp>.json.
 *
 * Exit status 1 when any request failed (non-2xx or socket error), a chaos
 * event misbehaved, usher died, or usher's RSS rose more than --rss-limit MiB
 * above its first sample after --warmup. Every child is ended by PID on exit,
 * Ctrl-C included.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { cpuTicks, hasCommand, killAllSync, ticksPerSecond } from './lib/proc.ts';
import { parseSoakOptions, SOAK_USAGE, type SoakOptions } from './lib/soak-args.ts';
import { runChaos, type ChaosEvent } from './lib/soak-chaos.ts';
import { SOAK_POOL, soakConfigYaml, type SoakVariant } from './lib/soak-config.ts';
import { startNodeClient, startWrk, type LoadResult, type LoadRun } from './lib/soak-load.ts';
import { AdminClient, killBackendsSync, startBackends, startUsher, stopBackends, USHER_CLI, type AdminBackend, type SoakBackend, type UsherProcess } from './lib/soak-procs.ts';
import { attributeTimes, formatSummary, rssSummary, scanAccessLog, type Sample } from './lib/soak-report.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BACKEND_NAMES = ['alpha', 'bravo', 'charlie'] as const;
/** Progress lines on stderr this often. */
const PROGRESS_S = 30;

let tempDir: string | undefined;
let keepTemp = false;
const began = Date.now();

function log(msg: string): void {
  const t = ((Date.now() - began) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`soak [${t}s] ${msg}\n`);
}

function cleanupSync(): void {
  killAllSync(); // usher and wrk, by PID (bench/lib/proc.ts)
  killBackendsSync(); // the forked backends, by PID
  if (tempDir !== undefined && !keepTemp) {
    rmSync(tempDir, { recursive: true, force: true });
    tempDir = undefined;
  }
}

function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

function findWrk(): string | undefined {
  if (existsSync('/usr/bin/wrk')) return '/usr/bin/wrk';
  return hasCommand('wrk') ? 'wrk' : undefined;
}

function firstLine(argv: readonly string[]): string {
  const [file, ...args] = argv;
  if (file === undefined) return '';
  const r = spawnSync(file, args, { encoding: 'utf8', timeout: 5000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0]?.trim() ?? '';
}

async function waitHealthy(admin: AdminClient, timeoutMs: number): Promise<AdminBackend[]> {
  const deadline = Date.now() + timeoutMs;
  let last: AdminBackend[] = [];
  while (Date.now() < deadline) {
    try {
      last = await admin.backends(SOAK_POOL);
      if (last.length === BACKEND_NAMES.length && last.every((b) => b.state === 'healthy')) return last;
    } catch {
      // not ready yet
    }
    await sleep(100);
  }
  throw new Error(`backends not all healthy after ${timeoutMs} ms: ${JSON.stringify(last.map((b) => [b.address, b.state]))}`);
}

async function main(opts: SoakOptions): Promise<number> {
  if (!existsSync(USHER_CLI)) throw new Error(`${relative(ROOT, USHER_CLI)} is missing: run npm run build (npm run soak does)`);
  keepTemp = opts.keep;
  const startedAt = new Date().toISOString();
  const dir = mkdtempSync(join(tmpdir(), 'usher-soak-'));
  tempDir = dir;
  const configPath = join(dir, 'usher.yaml');
  const accessLogPath = opts.accessLog ? join(dir, 'access.log') : undefined;
  const wrk = opts.client === 'node' ? undefined : findWrk();
  if (opts.client === 'wrk' && wrk === undefined) throw new Error('--client wrk: wrk is not installed');

  log(`${opts.durationS} s of load, ${opts.connections} connections, chaos every ${opts.chaosIntervalS} s, usher --workers ${opts.workers}, temp dir ${dir}`);
  const backends: SoakBackend[] = await startBackends(BACKEND_NAMES);
  log(`backends: ${backends.map((b) => `${b.name} 127.0.0.1:${b.port} (pid ${b.pid})`).join(', ')}`);
  const ports = backends.map((b) => b.port);
  const writeConfig = (variant: SoakVariant): void => writeFileSync(configPath, soakConfigYaml({ ports, accessLogPath }, variant));
  writeConfig('A');

  const usher: UsherProcess = await startUsher(configPath, dir, opts.workers);
  const admin = new AdminClient(usher.adminUrl);
  log(`usher pid ${usher.pid}: listener ${usher.url}, admin ${usher.adminUrl}`);
  await waitHealthy(admin, 15_000);
  log('all backends healthy');

  // Samples: RSS (VmRSS) and CPU (utime+stime) of the usher process.
  const tps = ticksPerSecond();
  const samples: Sample[] = [];
  let loadStart = Date.now();
  let prev = { at: Date.now(), cpuS: cpuTicks([usher.pid]) / tps };
  const sample = (): void => {
    const now = Date.now();
    const cpuS = cpuTicks([usher.pid]) / tps;
    const dt = (now - prev.at) / 1000;
    samples.push({ t: (now - loadStart) / 1000, rssMiB: rssOf(usher.pid), cpuS, cpuPct: dt > 0 ? (100 * (cpuS - prev.cpuS)) / dt : 0 });
    prev = { at: now, cpuS };
  };

  const chaosAbort = new AbortController();
  let load: LoadRun | undefined;
  const events: ChaosEvent[] = [];
  let loadResult: LoadResult | undefined;
  let loadError: string | undefined;
  let usherDied: string | undefined;
  const cpuAtLoadStart = cpuTicks([usher.pid]) / tps;

  loadStart = Date.now();
  sample();
  load = wrk !== undefined ? startWrk(wrk, `${usher.url}/`, opts.connections, opts.durationS) : startNodeClient(`${usher.url}/`, opts.connections, opts.durationS);
  log(`load: ${wrk !== undefined ? `wrk (pid ${load.pid})` : `node keep-alive client${opts.client === 'node' ? '' : ' (wrk not found)'}`} for ${opts.durationS} s`);
  const sampler = setInterval(() => {
    sample();
    const s = samples[samples.length - 1];
    if (usher.proc.exited && usherDied === undefined) {
      usherDied = `usher exited (code ${usher.proc.exitCode}) during the soak`;
      log(usherDied);
    }
    if (s !== undefined && Math.floor(s.t / PROGRESS_S) !== Math.floor((s.t - opts.sampleS) / PROGRESS_S)) {
      log(`progress: RSS ${s.rssMiB.toFixed(1)} MiB, CPU ${s.cpuPct.toFixed(0)}%, chaos events so far ${events.length}`);
    }
  }, opts.sampleS * 1000);

  const chaos = runChaos(
    { admin, backends, writeConfig, log },
    { intervalS: opts.chaosIntervalS, downS: opts.downS, lastStartAt: loadStart + (opts.durationS - Math.max(5, opts.downS + 5)) * 1000, signal: chaosAbort.signal, events },
  );

  try {
    loadResult = await load.done;
  } catch (err) {
    loadError = (err as Error).message;
    log(`load failed: ${loadError}`);
  }
  const loadEnd = Date.now();
  chaosAbort.abort();
  await chaos;
  clearInterval(sampler);
  sample();
  const cpuS = cpuTicks([usher.pid]) / tps - cpuAtLoadStart;
  if (usher.proc.exited && usherDied === undefined) usherDied = `usher exited (code ${usher.proc.exitCode}) during the soak`;

  let finalViews: AdminBackend[] = [];
  try {
    finalViews = await admin.backends(SOAK_POOL);
  } catch (err) {
    log(`final admin read failed: ${(err as Error).message}`);
  }
  log('stopping usher and the backends');
  await usher.close();
  await stopBackends(backends);

  const accessLog = accessLogPath === undefined ? undefined : await scanAccessLog(accessLogPath, events, loadStart + opts.durationS * 1000);
  const clientFailures = loadResult?.failureTimes === undefined ? undefined : attributeTimes(loadResult.failureTimes, events);
  const rss = rssSummary(samples, opts.warmupS);

  const reasons: string[] = [];
  if (loadError !== undefined) reasons.push(`load generator failed: ${loadError.split('\n')[0]}`);
  if (loadResult !== undefined) {
    const se = loadResult.socketErrors;
    const sock = se.connect + se.read + se.write + se.timeout;
    if (loadResult.non2xx > 0) reasons.push(`${loadResult.non2xx} non-2xx responses`);
    if (sock > 0) reasons.push(`${sock} socket errors`);
    if (loadResult.requests === 0) reasons.push('no requests completed');
  }
  if (accessLog !== undefined && accessLog.failed > 0 && loadResult !== undefined && loadResult.non2xx === 0) {
    reasons.push(`${accessLog.failed} failed requests in usher's access log`);
  }
  if (usherDied !== undefined) reasons.push(usherDied);
  const misbehaved = events.filter((e) => !e.ok);
  if (misbehaved.length > 0) reasons.push(`${misbehaved.length} chaos events misbehaved (${misbehaved.map((e) => `#${e.seq} ${e.kind}`).join(', ')})`);
  if (events.length === 0 && opts.durationS > opts.chaosIntervalS + 10) reasons.push('no chaos event ran');
  if (!(rss.growthMiB <= opts.rssLimitMiB)) reasons.push(`RSS grew ${rss.growthMiB.toFixed(1)} MiB above the baseline (limit ${opts.rssLimitMiB})`);

  const upstream = backends.map((b) => {
    const v = finalViews.find((x) => x.address === `127.0.0.1:${b.port}`);
    return {
      name: b.name,
      requests: v?.counters.requests ?? Number.NaN,
      failures: v?.counters.failures ?? Number.NaN,
      retriedAway: v?.counters.retriedAway ?? Number.NaN,
      ejections: v?.counters.ejections ?? Number.NaN,
      starts: b.starts,
    };
  });

  const resultsDir = join(ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `soak-${startedAt.replace(/[:.]/g, '-')}.json`);
  const record = {
    kind: 'soak',
    startedAt,
    finishedAt: new Date().toISOString(),
    pass: reasons.length === 0,
    reasons,
    options: opts,
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '', kernel: release(), node: process.version, wrk: wrk === undefined ? null : firstLine([wrk, '-v']) },
    usher: { pid: usher.pid, workers: opts.workers, url: usher.url, adminUrl: usher.adminUrl, warnings: usher.problems.slice(0, 200), warningCount: usher.problems.length },
    backends: backends.map((b) => ({ name: b.name, port: b.port, starts: b.starts })),
    loadWallS: (loadEnd - loadStart) / 1000,
    load: loadResult ?? null,
    loadError: loadError ?? null,
    rss,
    cpuSeconds: cpuS,
    samples,
    chaos: events,
    upstream,
    accessLog: accessLog ?? null,
    clientFailures: clientFailures ?? null,
    tempDir: opts.keep ? dir : null,
  };
  writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);

  process.stdout.write(
    formatSummary({
      wallS: (Date.now() - began) / 1000,
      load: loadResult,
      loadError,
      rss,
      rssLimitMiB: opts.rssLimitMiB,
      cpuS,
      workers: opts.workers,
      events,
      accessLog,
      clientFailures,
      upstream,
      reasons,
      resultFile: relative(ROOT, file),
    }),
  );
  if (usher.problems.length > 0) log(`usher logged ${usher.problems.length} warn/error lines (in the JSON under usher.warnings${opts.keep ? `; full log ${usher.logPath}` : ''})`);
  if (opts.keep) log(`kept ${dir}`);
  return reasons.length === 0 ? 0 : 1;
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    log(`${sig}: ending every process the soak started (by PID)`);
    cleanupSync();
    process.exit(130);
  });
}
process.on('exit', cleanupSync);

let options: SoakOptions | undefined;
try {
  options = parseSoakOptions(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`soak: ${(err as Error).message}\n\n${SOAK_USAGE}`);
  process.exit(2);
}
if (options === undefined) {
  process.stdout.write(SOAK_USAGE);
} else {
  main(options).then(
    (code) => {
      cleanupSync();
      process.exitCode = code;
    },
    (err: unknown) => {
      log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      cleanupSync();
      process.exitCode = 1;
    },
  );
}
