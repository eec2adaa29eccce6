/**
 * `npm run bench`: wrk against usher and its peers on loopback, pinned, with
 * the balancer's CPU time per request read from /proc. See bench/README.md.
 *
 * Flow: install missing tools (apt-get, best effort) → write the origin's
 * files (and, for https, a throwaway self-signed certificate) into a temp dir →
 * start the static nginx origin on CPU 1 → for each mode the scenarios need
 * (http, https, tcp) and each target offering it: start it on CPU 0, check it
 * proxies correctly → per round and scenario warm up and measure every target
 * of that mode with wrk on CPU 1 → print tables and ratios, write
 * bench/results/<timestamp>.json → stop everything the bench started (by PID)
 * and delete the temp dir. Every wrk run is bounded by -d and the whole run by
 * --max-time.
 *
 * `--workers N` (default 0) starts usher with `--workers N`, nginx with
 * `worker_processes max(N,1)` and HAProxy with `nbthread max(N,1)`. With
 * N >= 2 the balancer cannot have a CPU of its own on a 2-core machine, so
 * nothing is pinned (balancer, wrk and origin alike), as with --no-pin.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { L4_BODY_BYTES, parseOptions, USAGE, type BenchOptions, type Mode, type Scenario } from './lib/args.ts';
import { LARGE_BODY_BYTES, MIB_BODY_BYTES, originNginxConf, SMALL_BODY, type TlsFiles } from './lib/configs.ts';
import { httpGet, type GetOptions } from './lib/http-check.ts';
import { LOAD_CPU, measure, waitForQuiet, wrkFor, wrkSeconds } from './lib/measure.ts';
import { canPin, descendants, freePort, hasCommand, killAllSync, pinned, setNiceness, start, stop, threadCount, ticksPerSecond, waitForPort, type Spawned } from './lib/proc.ts';
import { aggregate, byteRatioTable, byteTable, fmtMs, ratios, ratioTable, scenarioTable, targetCheck, tlsRatioTable, workersRatioLine, workersRatios, type RoundResult, type RunRecord } from './lib/report.ts';
import { builtinTargets, DEFAULT_TARGETS, extraTarget, peerThreads, prepareNginxDirs, PROTOTYPES, type BenchContext, type Launched, type Target } from './lib/targets.ts';
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
  for (const port of ports) await checkContent('origin', port, 'http', undefined);
  return proc;
}

/** Name the bench certificate is issued to (the https check verifies it). */
const TLS_NAME = 'bench.local';

/**
 * A throwaway self-signed P-256 certificate valid for a day, in the temp dir
 * (deleted with it at the end; never in the repository). undefined if openssl fails.
 */
function makeCertificate(dir: string): TlsFiles | undefined {
  const cert = join(dir, 'bench-cert.pem');
  const key = join(dir, 'bench-key.pem');
  const pem = join(dir, 'bench-haproxy.pem');
  const r = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', `/CN=${TLS_NAME}`, '-addext', `subjectAltName=DNS:${TLS_NAME}`, '-keyout', key, '-out', cert],
    { encoding: 'utf8', timeout: 30_000 },
  );
  if (r.status !== 0) {
    log(`bench: openssl req failed (status ${r.status}): ${(r.stderr ?? '').trim().split('\n')[0] ?? ''}; the https scenario is skipped`);
    return undefined;
  }
  writeFileSync(pem, Buffer.concat([readFileSync(cert), readFileSync(key)]), { mode: 0o600 });
  return { cert, key, pem };
}

/** What the pre-flight check saw: the TLS negotiated (https) and when the first answer (GET /small) arrived. */
interface Checked {
  readonly tls: { protocol: string; cipher: string } | undefined;
  /** process.hrtime.bigint() when the first GET /small had been answered correctly. */
  readonly firstAnswerAt: bigint;
}

/**
 * Throws unless the target answers correctly in its mode: /small and /64k
 * intact (http; https over TLS with the bench certificate, verified for
 * bench.local), or /small and the whole 64 MiB /64m through the TCP proxy (tcp).
 * Returns the negotiated TLS version and cipher for https.
 */
async function checkContent(name: string, port: number, mode: Mode, tls: TlsFiles | undefined): Promise<Checked> {
  const opts: GetOptions = mode === 'https' && tls ? { tls: { ca: readFileSync(tls.cert), servername: TLS_NAME } } : {};
  const small = await httpGet(port, '/small', opts);
  if (small.status !== 200 || small.body.toString() !== SMALL_BODY) throw new Error(`${name}: GET /small returned ${small.status} ${JSON.stringify(small.body.toString().slice(0, 80))}`);
  const firstAnswerAt = process.hrtime.bigint();
  if (mode === 'tcp') {
    const big = await httpGet(port, '/64m', { countOnly: true });
    if (big.status !== 200 || big.length !== L4_BODY_BYTES) throw new Error(`${name}: GET /64m returned ${big.status} with ${big.length} bytes, not ${L4_BODY_BYTES}`);
    return { tls: undefined, firstAnswerAt };
  }
  const large = await httpGet(port, '/64k', opts);
  if (large.status !== 200 || large.body.length !== LARGE_BODY_BYTES) throw new Error(`${name}: GET /64k returned ${large.status} with ${large.body.length} bytes`);
  return { tls: large.tls, firstAnswerAt };
}

/** How a started target looked right after its pre-flight check (logged, kept in the JSON). */
interface LaunchInfo {
  readonly target: string;
  readonly mode: Mode;
  readonly pid: number;
  /** Processes charged to the target (the started one and its descendants) and their threads together. */
  readonly processes: number;
  readonly threads: number;
  /** Spawn → port accepting a TCP connection, ms (undefined when the bench did not start it: direct). */
  readonly startMs: number | undefined;
  /**
   * Spawn → first correct answer to GET /small, ms. With usher's worker threads
   * the main thread binds the listening sockets before the workers serve, so
   * this can be well after startMs.
   */
  readonly readyMs: number | undefined;
}

/** The `--workers` line at the top of the report. */
function workersHeader(opts: BenchOptions, targets: readonly Target[], pin: boolean): string[] {
  const n = opts.workers;
  const names = new Set(targets.map((t) => t.name));
  const parts: string[] = [];
  if (names.has('usher')) parts.push(`usher --workers ${n} (${n === 0 ? 'single-threaded: the main thread serves' : `${n} data-plane worker thread${n === 1 ? '' : 's'} + the main control thread`})`);
  if (names.has('usher-w0')) parts.push('usher-w0 --workers 0 (single-threaded)');
  if (names.has('nginx')) parts.push(peerThreads(n) === 1 ? 'nginx worker_processes 1 (master_process off)' : `nginx worker_processes ${peerThreads(n)} (+ master)`);
  if (names.has('haproxy')) parts.push(`haproxy nbthread ${peerThreads(n)}`);
  const pinning = pin
    ? `balancer→CPU ${BALANCER_CPU}, wrk+origin→CPU ${LOAD_CPU}`
    : n >= 2 && opts.pin
      ? `off (--workers ${n} >= 2: the balancer cannot have CPUs of its own; balancer, wrk and origin all unpinned, load CPU% not measured)`
      : 'off';
  return [`== --workers ${n}: ${parts.length > 0 ? parts.join('; ') : '(no usher/nginx/haproxy target)'}`, `== pinning: ${pinning}`];
}

function resolveTargets(opts: BenchOptions): Target[] {
  const builtin = builtinTargets(opts.workers);
  let names = opts.targets ?? DEFAULT_TARGETS;
  if (names.includes('all')) names = builtin.map((t) => t.name);
  if (opts.prototypes) names = [...names, ...PROTOTYPES.filter((p) => !names.includes(p))];
  const out: Target[] = [];
  for (const name of names) {
    const t = builtin.find((b) => b.name === name);
    if (t === undefined) throw new Error(`unknown target ${JSON.stringify(name)}; known: ${builtin.map((b) => b.name).join(', ')} (or --extra)`);
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
  // With --workers >= 2 the balancer needs more than one CPU: on a 2-core machine it
  // cannot have CPUs of its own, so nothing is pinned (wrk and the origin float too,
  // rather than being held on one CPU the balancer's threads also run on).
  const pin = opts.pin && canPin() && cpus().length >= 2 && opts.workers <= 1;
  if (opts.pin && !pin)
    log(`bench: not pinning (${!canPin() ? 'taskset missing' : cpus().length < 2 ? 'fewer than 2 CPUs' : `--workers ${opts.workers}: the balancer needs more than one CPU`}); figures are noisier`);

  const dir = mkdtempSync(join(tmpdir(), 'usher-bench-'));
  prepareNginxDirs(dir);
  mkdirSync(join(dir, 'www'), { recursive: true });
  writeFileSync(join(dir, 'www', '64k'), Buffer.alloc(LARGE_BODY_BYTES, 'x'));
  writeFileSync(join(dir, 'www', '1m'), Buffer.alloc(MIB_BODY_BYTES, 'x'));
  const modes: Mode[] = (['http', 'https', 'tcp'] as const).filter((m) => opts.scenarios.some((s) => s.mode === m));
  if (modes.includes('tcp')) writeFileSync(join(dir, 'www', '64m'), Buffer.alloc(L4_BODY_BYTES, 'x'));
  const tls = modes.includes('https') ? makeCertificate(dir) : undefined;
  const script = writeDoneScript(dir);

  const records: RunRecord[] = [];
  const skipped: { target: string; reason: string }[] = [];
  const tlsSeen: { target: string; protocol: string; cipher: string }[] = [];
  const launches: LaunchInfo[] = [];
  /** Targets without a mode a scenario needs, by scenario (not run there, not an error). */
  const notApplicable = new Map<string, string[]>();
  for (const scenario of opts.scenarios) notApplicable.set(scenario.name, targets.filter((t) => !t.modes.includes(scenario.mode)).map((t) => t.name));
  let origin: Spawned | undefined;
  try {
    const backends: number[] = [];
    for (let i = 0; i < BACKEND_COUNT; i++) backends.push(await freePort());
    origin = await startOrigin(dir, backends, pin);
    const ctx: BenchContext = { root: ROOT, dir, node: process.execPath, backends, balancerCpu: pin ? BALANCER_CPU : undefined, originPid: origin.pid, tls, workers: opts.workers };
    const perRun = opts.warmupS + opts.durationS + 1;
    const runsPerRound = opts.scenarios.reduce((n, s) => n + targets.filter((t) => t.modes.includes(s.mode)).length, 0);
    const planned = runsPerRound * opts.rounds * perRun;
    log(`bench: ${targets.map((t) => t.name).join(', ')} × ${opts.scenarios.map((s) => s.name).join(', ')}; ` + `~${Math.ceil(planned / 60)} min; wrk -t${opts.threads} -c${opts.connections} -d${wrkSeconds(opts.durationS)}s; ` + `pinning ${pin ? `balancer→CPU ${BALANCER_CPU}, wrk+origin→CPU ${LOAD_CPU}` : 'off'}; nice ${opts.nice}; --workers ${opts.workers}`);

    // All targets run side by side (idle ones cost nothing) so rounds can interleave
    // them: slow drifts in machine load then spread over every target alike. A
    // target offering several modes runs one process per mode.
    const running: { target: Target; mode: Mode; launched: Launched; info: LaunchInfo }[] = [];
    try {
      for (const mode of modes) {
        const firstScenario = opts.scenarios.find((s) => s.mode === mode) as Scenario;
        for (const target of targets.filter((t) => t.modes.includes(mode))) {
          const label = mode === 'http' ? target.name : `${target.name} (${mode})`;
          const launched = await target.launch(ctx, mode);
          if ('skip' in launched) {
            log(`bench: skip ${launched.skip}`);
            skipped.push({ target: label, reason: launched.skip });
            continue;
          }
          try {
            const checked = await checkContent(label, launched.port, mode, tls);
            if (checked.tls) tlsSeen.push({ target: target.name, ...checked.tls });
            const family = [launched.cpuPid, ...descendants(launched.cpuPid)];
            const info: LaunchInfo = {
              target: target.name,
              mode,
              pid: launched.cpuPid,
              processes: family.length,
              threads: threadCount(family),
              startMs: launched.startMs,
              readyMs: launched.spawnedAt === undefined ? undefined : Number(checked.firstAnswerAt - launched.spawnedAt) / 1e6,
            };
            launches.push(info);
            log(
              `bench: ${label}: pid ${info.pid}, ${info.processes} process${info.processes === 1 ? '' : 'es'}, ${info.threads} thread${info.threads === 1 ? '' : 's'}` +
                (info.startMs === undefined ? '' : `; port accepting ${fmtMs(info.startMs)} ms and first answer ${fmtMs(info.readyMs)} ms after spawn`),
            );
            // First contact: let a fresh process (JIT tiers, pools) warm up once before any round.
            const warm: Scenario = mode === 'tcp' ? firstScenario : { ...firstScenario, path: '/small', headers: [] };
            await runWrk(wrkFor({ ...opts, pin }, warm, launched.port, wrkSeconds(Math.max(2, opts.warmupS))), script);
            running.push({ target, mode, launched, info });
          } catch (err) {
            log(`bench: skip ${(err as Error).message}`);
            skipped.push({ target: label, reason: (err as Error).message });
            if (launched.proc) await stop(launched.proc);
          }
        }
      }
      const got = new Map<string, RoundResult[]>();
      measuring: for (let round = 0; round < opts.rounds; round++) {
        for (const scenario of opts.scenarios) {
          const here = running.filter((r) => r.mode === scenario.mode);
          for (let i = 0; i < here.length; i++) {
            const { target, launched, info } = here[(i + round) % here.length] as (typeof here)[number];
            if ((Date.now() - began) / 1000 + perRun > opts.maxTimeS) {
              log(`bench: --max-time ${opts.maxTimeS}s reached; stopping with what was measured`);
              break measuring;
            }
            if (launched.proc?.exited) continue;
            try {
              const waited = opts.quietWaitS > 0 ? await waitForQuiet(opts.quietWaitS) : 0;
              if (waited >= opts.quietWaitS && opts.quietWaitS > 0) log(`bench: machine still busy after ${opts.quietWaitS}s, measuring anyway`);
              await runWrk(wrkFor({ ...opts, pin }, scenario, launched.port, wrkSeconds(opts.warmupS)), script);
              const m = await measure({ ...opts, pin }, script, ctx, launched, scenario);
              const key = `${target.name}\0${scenario.name}`;
              got.set(key, [...(got.get(key) ?? []), { ...m, round }]);
              const figures =
                scenario.unit === 'bytes'
                  ? `${Math.round(m.mibPerS).toString().padStart(7)} MiB/s  p99 ${(m.latencyUs.p99 / 1000).toFixed(0)} ms  ${m.cpuSPerGiB.toFixed(3)} s CPU/GiB`
                  : `${Math.round(m.rps).toString().padStart(7)} req/s  p99 ${(m.latencyUs.p99 / 1000).toFixed(2)} ms  ${m.cpuUsPerReq.toFixed(1)} us CPU/req`;
              // New fields go at the end only: scripts parse these lines.
              log(
                `bench: r${round + 1} ${target.name.padEnd(16)} ${scenario.name.padEnd(6)} ${figures}  errors ${m.errors.total}  other CPU ${m.otherCpuPct.toFixed(0)}%` +
                  `  RSS ${m.rssMiB.toFixed(0)} MiB  start ${fmtMs(info.startMs)} ms  ready ${fmtMs(info.readyMs)} ms`,
              );
            } catch (err) {
              log(`bench: ${target.name} ${scenario.name}: ${(err as Error).message}`);
              skipped.push({ target: `${target.name} ${scenario.name}`, reason: (err as Error).message });
            }
          }
        }
      }
      for (const scenario of opts.scenarios) {
        for (const { target, info } of running.filter((r) => r.mode === scenario.mode)) {
          const runs = got.get(`${target.name}\0${scenario.name}`) ?? [];
          const chosen = aggregate(runs, opts.pick);
          if (chosen === undefined) continue;
          const live = runs.filter((r) => r.requests > 0);
          const cpus = (live.length > 0 ? live : runs).map((r) => (scenario.unit === 'bytes' ? r.cpuSPerGiB : r.cpuUsPerReq));
          records.push({
            target: target.name,
            role: target.role,
            scenario: scenario.name,
            ...chosen,
            cpuMin: Math.min(...cpus),
            cpuMax: Math.max(...cpus),
            stalledRounds: runs.length - live.length,
            startMs: info.startMs,
            readyMs: info.readyMs,
            rounds: runs,
          });
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
  const wrs = workersRatios(records, opts.workers, new Set(opts.scenarios.filter((sc) => sc.unit === 'bytes').map((sc) => sc.name)));
  const out: string[] = workersHeader(opts, targets, pin);
  for (const scenario of opts.scenarios) {
    const runs = records.filter((r) => r.scenario === scenario.name);
    if (runs.length === 0) continue;
    out.push(`\n== ${scenario.name}: ${scenario.title} — wrk -t${opts.threads} -c${scenario.connections ?? opts.connections} -d${wrkSeconds(opts.durationS)}s${scenario.headers.map((h) => ` -H '${h}'`).join('')}`);
    out.push(scenario.unit === 'bytes' ? byteTable(runs) : scenarioTable(runs));
    const na = notApplicable.get(scenario.name) ?? [];
    if (na.length > 0) out.push(`(not applicable here, no ${scenario.mode} mode: ${na.join(', ')})`);
    if (scenario.name === 'https' && tlsSeen.length > 0) out.push(`(TLS negotiated by the pre-flight check: ${tlsSeen.map((t) => `${t.target} ${t.protocol} ${t.cipher}`).join('; ')})`);
    out.push('');
    const mine = rs.filter((r) => r.scenario === scenario.name);
    out.push(scenario.unit === 'bytes' ? byteRatioTable(mine) : scenario.mode === 'https' ? tlsRatioTable(mine) : ratioTable(mine));
    for (const w of wrs.filter((x) => x.scenario === scenario.name)) out.push(workersRatioLine(w, scenario.unit));
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
    scenarios: opts.scenarios,
    tls: tls ? { subject: `CN=${TLS_NAME}`, key: 'EC P-256, self-signed, generated for this run and deleted with the temp dir', negotiated: tlsSeen } : undefined,
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
    workers: { usher: opts.workers, nginxWorkerProcesses: peerThreads(opts.workers), haproxyNbthread: peerThreads(opts.workers), pinned: pin },
    targets: targets.map((t) => ({ name: t.name, role: t.role, modes: t.modes, description: t.description })),
    launches,
    skipped,
    results: records,
    ratios: rs,
    workersRatios: wrs,
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
