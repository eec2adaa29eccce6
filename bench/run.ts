/**
 * `npm run bench`: wrk against usher and its peers on loopback, pinned, with
 * the balancer's CPU time per request read from /proc. See bench/README.md.
 *
 * Flow: install missing tools (apt-get, best effort) → start the static nginx
 * origin on CPU 1 → for each target: start it on CPU 0, check it proxies
 * correctly, then per scenario warm up and measure with wrk on CPU 1 → print
 * tables and ratios, write bench/results/<timestamp>.json → stop everything the
 * bench started (by PID). Every wrk run is bounded by -d and the whole run by
 * --max-time.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseOptions, USAGE, type BenchOptions } from './lib/args.ts';
import { LARGE_BODY_BYTES, originNginxConf, SMALL_BODY } from './lib/configs.ts';
import { httpGet } from './lib/http-check.ts';
import { LOAD_CPU, measure, waitForQuiet, wrkSeconds } from './lib/measure.ts';
import { canPin, freePort, hasCommand, killAllSync, pinned, setNiceness, start, stop, ticksPerSecond, waitForPort, type Spawned } from './lib/proc.ts';
import { aggregate, ratios, ratioTable, scenarioTable, targetCheck, type RoundResult, type RunRecord } from './lib/report.ts';
import { BUILTIN, DEFAULT_TARGETS, extraTarget, prepareNginxDirs, PROTOTYPES, type BenchContext, type Launched, type Target } from './lib/targets.ts';
import { runWrk, writeDoneScript } from './lib/wrk.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BALANCER_CPU = 0;
const BACKEND_COUNT = 2;
const APT_PACKAGES: Readonly<Record<string, string>> = { wrk: 'wrk', nginx: 'nginx-light', haproxy: 'haproxy' };

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

/** Installs wrk/nginx/haproxy when missing; failures only skip the affected peers. */
function ensureTools(): void {
  const missing = Object.keys(APT_PACKAGES).filter((cmd) => !hasCommand(cmd));
  if (missing.length === 0) return;
  const pkgs = missing.map((cmd) => APT_PACKAGES[cmd]).join(' ');
  const sudo = process.getuid?.() === 0 ? '' : hasCommand('sudo') ? 'sudo -n ' : '';
  log(`bench: installing ${pkgs} (apt-get; failure only skips the affected peers)`);
  const r = spawnSync('sh', ['-c', `${sudo}apt-get update && ${sudo}apt-get install -y ${pkgs}`], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 300_000 });
  if (r.status !== 0) log(`bench: apt-get failed (status ${r.status}); continuing with what is installed`);
  for (const cmd of missing) if (!hasCommand(cmd)) log(`bench: ${cmd} is not available; ${cmd === 'wrk' ? 'cannot measure anything' : `skipping the ${cmd} peer`}`);
}

function version(argv: readonly string[]): string {
  const [file, ...args] = argv;
  if (file === undefined || !hasCommand(file)) return 'missing';
  const r = spawnSync(file, args, { encoding: 'utf8', timeout: 5000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0]?.trim() ?? '';
}

/** Starts the static origin (nginx, or the Node fallback) on CPU 1 and checks its content. */
async function startOrigin(dir: string, ports: readonly number[], pin: boolean): Promise<Spawned> {
  const cpu = pin ? LOAD_CPU : undefined;
  let proc: Spawned;
  if (hasCommand('nginx')) {
    const conf = join(dir, 'origin-nginx.conf');
    writeFileSync(conf, originNginxConf(dir, ports));
    proc = start('origin', pinned(cpu, ['nginx', '-p', `${dir}/`, '-c', conf, '-e', join(dir, 'origin-error.log')]));
  } else {
    log('bench: nginx missing, using the slower Node origin (bench/peers/origin.ts); the origin may be the bottleneck');
    proc = start('origin', pinned(cpu, [process.execPath, join(ROOT, 'bench/peers/origin.ts'), ports.join(',')]));
  }
  for (const port of ports) await waitForPort(port, proc);
  for (const port of ports) await checkContent('origin', port);
  return proc;
}

/** Throws unless /small and /64k come back intact through `port`. */
async function checkContent(name: string, port: number): Promise<void> {
  const small = await httpGet(port, '/small');
  if (small.status !== 200 || small.body.toString() !== SMALL_BODY) throw new Error(`${name}: GET /small returned ${small.status} ${JSON.stringify(small.body.toString().slice(0, 80))}`);
  const large = await httpGet(port, '/64k');
  if (large.status !== 200 || large.body.length !== LARGE_BODY_BYTES) throw new Error(`${name}: GET /64k returned ${large.status} with ${large.body.length} bytes`);
}

function resolveTargets(opts: BenchOptions): Target[] {
  let names = opts.targets ?? DEFAULT_TARGETS;
  if (names.includes('all')) names = BUILTIN.map((t) => t.name);
  if (opts.prototypes) names = [...names, ...PROTOTYPES.filter((p) => !names.includes(p))];
  const out: Target[] = [];
  for (const name of names) {
    const t = BUILTIN.find((b) => b.name === name);
    if (t === undefined) throw new Error(`unknown target ${JSON.stringify(name)}; known: ${BUILTIN.map((b) => b.name).join(', ')} (or --extra)`);
    out.push(t);
  }
  for (const spec of opts.extras) out.push(extraTarget(spec));
  return out;
}

async function main(): Promise<number> {
  let parsed: BenchOptions | 'help';
  try {
    parsed = parseOptions(process.argv.slice(2), process.env);
  } catch (err) {
    log(`bench: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const opts = parsed;
  const targets = resolveTargets(opts);
  const began = Date.now();
  const startedAt = new Date(began).toISOString();
  // Hard stop: nothing may outlive --max-time by more than two minutes.
  const watchdog = setTimeout(() => {
    log('bench: hard time limit reached, killing everything the bench started');
    killAllSync();
    process.exit(3);
  }, (opts.maxTimeS + 120) * 1000);
  watchdog.unref();

  ensureTools();
  if (!hasCommand('wrk')) return 1;
  setNiceness(opts.nice);
  const pin = opts.pin && canPin() && cpus().length >= 2;
  if (opts.pin && !pin) log(`bench: not pinning (${canPin() ? 'fewer than 2 CPUs' : 'taskset missing'}); figures are noisier`);

  const dir = mkdtempSync(join(tmpdir(), 'usher-bench-'));
  prepareNginxDirs(dir);
  mkdirSync(join(dir, 'www'), { recursive: true });
  writeFileSync(join(dir, 'www', '64k'), Buffer.alloc(LARGE_BODY_BYTES, 'x'));
  const script = writeDoneScript(dir);

  const records: RunRecord[] = [];
  const skipped: { target: string; reason: string }[] = [];
  let origin: Spawned | undefined;
  try {
    const backends: number[] = [];
    for (let i = 0; i < BACKEND_COUNT; i++) backends.push(await freePort());
    origin = await startOrigin(dir, backends, pin);
    const ctx: BenchContext = { root: ROOT, dir, node: process.execPath, backends, balancerCpu: pin ? BALANCER_CPU : undefined, originPid: origin.pid };
    const perRun = opts.warmupS + opts.durationS + 1;
    const planned = targets.length * opts.scenarios.length * opts.rounds * perRun;
    log(`bench: ${targets.map((t) => t.name).join(', ')} × ${opts.scenarios.map((s) => s.name).join(', ')}; ` + `~${Math.ceil(planned / 60)} min; wrk -t${opts.threads} -c${opts.connections} -d${wrkSeconds(opts.durationS)}s; ` + `pinning ${pin ? `balancer→CPU ${BALANCER_CPU}, wrk+origin→CPU ${LOAD_CPU}` : 'off'}; nice ${opts.nice}`);

    // All targets run side by side (idle ones cost nothing) so rounds can interleave
    // them: slow drifts in machine load then spread over every target alike.
    const running: { target: Target; launched: Launched }[] = [];
    try {
      for (const target of targets) {
        const launched = await target.launch(ctx);
        if ('skip' in launched) {
          log(`bench: skip ${launched.skip}`);
          skipped.push({ target: target.name, reason: launched.skip });
          continue;
        }
        try {
          await checkContent(target.name, launched.port);
          // First contact: let a fresh process (JIT tiers, pools) warm up once before any round.
          await runWrk({ url: `http://127.0.0.1:${launched.port}/small`, threads: opts.threads, connections: opts.connections, durationS: wrkSeconds(Math.max(2, opts.warmupS)), headers: [], cpu: pin ? LOAD_CPU : undefined }, script);
          running.push({ target, launched });
        } catch (err) {
          log(`bench: skip ${(err as Error).message}`);
          skipped.push({ target: target.name, reason: (err as Error).message });
          if (launched.proc) await stop(launched.proc);
        }
      }
      const got = new Map<string, RoundResult[]>();
      measuring: for (let round = 0; round < opts.rounds; round++) {
        for (const scenario of opts.scenarios) {
          for (let i = 0; i < running.length; i++) {
            const { target, launched } = running[(i + round) % running.length] as (typeof running)[number];
            if ((Date.now() - began) / 1000 + perRun > opts.maxTimeS) {
              log(`bench: --max-time ${opts.maxTimeS}s reached; stopping with what was measured`);
              break measuring;
            }
            if (launched.proc?.exited) continue;
            try {
              const waited = opts.quietWaitS > 0 ? await waitForQuiet(opts.quietWaitS) : 0;
              if (waited >= opts.quietWaitS && opts.quietWaitS > 0) log(`bench: machine still busy after ${opts.quietWaitS}s, measuring anyway`);
              await runWrk({ url: `http://127.0.0.1:${launched.port}${scenario.path}`, threads: opts.threads, connections: opts.connections, durationS: wrkSeconds(opts.warmupS), headers: scenario.headers, cpu: pin ? LOAD_CPU : undefined }, script);
              const m = await measure({ ...opts, pin }, script, ctx, launched, scenario);
              const key = `${target.name}\0${scenario.name}`;
              got.set(key, [...(got.get(key) ?? []), { ...m, round }]);
              log(`bench: r${round + 1} ${target.name.padEnd(16)} ${scenario.name.padEnd(6)} ${Math.round(m.rps).toString().padStart(7)} req/s  p99 ${(m.latencyUs.p99 / 1000).toFixed(2)} ms  ${m.cpuUsPerReq.toFixed(1)} us CPU/req  errors ${m.errors.total}  other CPU ${m.otherCpuPct.toFixed(0)}%`);
            } catch (err) {
              log(`bench: ${target.name} ${scenario.name}: ${(err as Error).message}`);
              skipped.push({ target: `${target.name} ${scenario.name}`, reason: (err as Error).message });
            }
          }
        }
      }
      for (const scenario of opts.scenarios) {
        for (const { target } of running) {
          const runs = got.get(`${target.name}\0${scenario.name}`) ?? [];
          const chosen = aggregate(runs, opts.pick);
          if (chosen === undefined) continue;
          const live = runs.filter((r) => r.requests > 0);
          const cpus = (live.length > 0 ? live : runs).map((r) => r.cpuUsPerReq);
          records.push({ target: target.name, role: target.role, scenario: scenario.name, ...chosen, cpuMin: Math.min(...cpus), cpuMax: Math.max(...cpus), stalledRounds: runs.length - live.length, rounds: runs });
        }
      }
    } finally {
      for (const { launched } of running) if (launched.proc) await stop(launched.proc);
    }
  } finally {
    if (origin) await stop(origin);
    rmSync(dir, { recursive: true, force: true });
  }

  const rs = ratios(records);
  const out: string[] = [];
  for (const scenario of opts.scenarios) {
    const runs = records.filter((r) => r.scenario === scenario.name);
    if (runs.length === 0) continue;
    out.push(`\n== ${scenario.name}: ${scenario.title} — wrk -t${opts.threads} -c${opts.connections} -d${wrkSeconds(opts.durationS)}s${scenario.headers.map((h) => ` -H '${h}'`).join('')}`);
    out.push(scenarioTable(runs));
    out.push('');
    out.push(ratioTable(rs.filter((r) => r.scenario === scenario.name)));
  }
  const check = targetCheck(rs, records);
  if (check.length > 0) out.push('\n== product target on small keep-alive GETs (≥2x http-proxy, ≥60% nginx, p99 ≤2x nginx, ≤40 us CPU/req)', ...check);
  if (skipped.length > 0) out.push('\n== skipped', ...skipped.map((s) => `${s.target}: ${s.reason.split('\n')[0]}`));
  process.stdout.write(`${out.join('\n')}\n`);

  const resultsDir = join(ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `${startedAt.replace(/[:.]/g, '-')}.json`);
  const json = {
    startedAt,
    finishedAt: new Date().toISOString(),
    command: ['node', 'bench/run.ts', ...process.argv.slice(2)].join(' '),
    options: { ...opts, scenarios: opts.scenarios.map((s) => s.name), pin },
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      kernel: release(),
      node: process.version,
      nginx: version(['nginx', '-v']),
      haproxy: version(['haproxy', '-v']),
      wrk: version(['wrk', '-v']),
      clkTck: ticksPerSecond(),
    },
    targets: targets.map((t) => ({ name: t.name, role: t.role, description: t.description })),
    skipped,
    results: records,
    ratios: rs,
  };
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  process.stdout.write(`\nresults: ${file.slice(ROOT.length + 1)}\n`);
  return records.length > 0 ? 0 : 1;
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    log(`bench: ${sig}, stopping everything the bench started`);
    killAllSync();
    process.exit(130);
  });
}
process.on('exit', () => killAllSync());

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    log(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    killAllSync();
    process.exitCode = 1;
  },
);
