/**
 * The soak's chaos loop: one event every `intervalS` seconds, cycling
 *
 *   kill            SIGKILL a backend, keep it down `downS`, restart it on the
 *                   same port, wait until the admin API shows it healthy again
 *   drain           POST .../drain, wait for inFlight 0, check it then gets no
 *                   new requests for 1 s, POST .../enable
 *   reload          write the other valid config (A: equal weights, B: last
 *                   backend weight 2) and POST /api/reload: must answer 200 and
 *                   the weights must change
 *   invalid-reload  write a config with weight 0 and POST /api/reload: must be
 *                   rejected (422) with the weights unchanged; the valid file is
 *                   then written back
 *
 * Events never overlap. Each records whether usher behaved as expected; a
 * misbehaving event fails the soak.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { SOAK_POOL, variantWeights, type SoakVariant } from './soak-config.ts';
import { killBackend, restartBackend, type AdminBackend, type AdminClient, type SoakBackend } from './soak-procs.ts';

export type ChaosKind = 'kill' | 'drain' | 'reload' | 'invalid-reload';
export const CHAOS_CYCLE: readonly ChaosKind[] = ['kill', 'drain', 'reload', 'invalid-reload'];

export interface ChaosEvent {
  readonly seq: number;
  readonly kind: ChaosKind;
  /** A backend (`name@127.0.0.1:port`) or a config variant. */
  readonly target: string;
  /** Wall clock, ms since the epoch. */
  readonly startedAt: number;
  endedAt: number;
  ok: boolean;
  detail: string;
  /** Milliseconds: kill `down`, `recovered` (restart to healthy); drain `drained` (to inFlight 0); reloads `reply`. */
  readonly timings: Record<string, number>;
}

export interface ChaosContext {
  readonly admin: AdminClient;
  readonly backends: readonly SoakBackend[];
  /** Writes the variant to the config file usher reloads from. */
  writeConfig(variant: SoakVariant): void;
  log(message: string): void;
}

export interface ChaosOptions {
  readonly intervalS: number;
  readonly downS: number;
  /** No event starts later than this (ms since the epoch). */
  readonly lastStartAt: number;
  readonly signal: AbortSignal;
  /** Events are pushed here as they start (a live view for progress lines). */
  readonly events: ChaosEvent[];
}

const address = (b: SoakBackend): string => `127.0.0.1:${b.port}`;

async function view(admin: AdminClient, backend: SoakBackend): Promise<AdminBackend> {
  const reply = await admin.call('GET', `/api/pools/${SOAK_POOL}/backends/${address(backend)}`);
  if (reply.status !== 200) throw new Error(`GET backend ${address(backend)}: ${reply.status} ${JSON.stringify(reply.body)}`);
  return reply.body as AdminBackend;
}

/** Polls `check` every 100 ms until it returns true or `timeoutMs` passes; returns the elapsed ms or -1. */
async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    try {
      if (await check()) return Date.now() - t0;
    } catch {
      // admin briefly unavailable: keep polling until the deadline
    }
    await sleep(100);
  }
  return -1;
}

async function weightsNow(admin: AdminClient, backends: readonly SoakBackend[]): Promise<number[]> {
  const views = await admin.backends(SOAK_POOL);
  return backends.map((b) => views.find((v) => v.address === address(b))?.weight ?? Number.NaN);
}

/** Runs events until `lastStartAt` or abort; resolves with every event (each one finished). */
export async function runChaos(ctx: ChaosContext, opts: ChaosOptions): Promise<ChaosEvent[]> {
  const events = opts.events;
  const { admin, backends } = ctx;
  let killNext = 0;
  let drainNext = 1; // start with a different backend than the first kill
  let variant: SoakVariant = 'A';
  let next = Date.now() + opts.intervalS * 1000;
  for (let seq = 0; ; seq++) {
    const wait = next - Date.now();
    if (wait > 0) await sleep(wait, undefined, { signal: opts.signal }).catch(() => undefined);
    if (opts.signal.aborted || Date.now() > opts.lastStartAt) break;
    const kind = CHAOS_CYCLE[seq % CHAOS_CYCLE.length] as ChaosKind;
    let target: string;
    let backend: SoakBackend | undefined;
    if (kind === 'kill') backend = backends[killNext++ % backends.length];
    else if (kind === 'drain') backend = backends[drainNext++ % backends.length];
    if (backend !== undefined) target = `${backend.name}@${address(backend)}`;
    else if (kind === 'reload') target = variant === 'A' ? 'A->B' : 'B->A';
    else target = `invalid (serving ${variant})`;
    const event: ChaosEvent = { seq, kind, target, startedAt: Date.now(), endedAt: 0, ok: false, detail: '', timings: {} };
    events.push(event);
    try {
      switch (kind) {
        case 'kill':
          await chaosKill(ctx, backend as SoakBackend, opts.downS, event);
          break;
        case 'drain':
          await chaosDrain(admin, backend as SoakBackend, event);
          break;
        case 'reload': {
          const to: SoakVariant = variant === 'A' ? 'B' : 'A';
          ctx.writeConfig(to);
          const t0 = Date.now();
          const reply = await admin.call('POST', '/api/reload');
          event.timings.reply = Date.now() - t0;
          const weights = await weightsNow(admin, backends);
          const want = variantWeights(to, backends.length);
          const applied = weights.join() === want.join();
          if (reply.status === 200 && (reply.body as { reloaded?: boolean }).reloaded === true) variant = to;
          event.ok = reply.status === 200 && applied;
          event.detail = `HTTP ${reply.status}, weights now [${weights.join(', ')}]${applied ? '' : ` (expected [${want.join(', ')}])`}`;
          break;
        }
        case 'invalid-reload': {
          ctx.writeConfig('invalid');
          const t0 = Date.now();
          const reply = await admin.call('POST', '/api/reload');
          event.timings.reply = Date.now() - t0;
          ctx.writeConfig(variant); // the file again matches what usher serves
          const weights = await weightsNow(admin, backends);
          const kept = weights.join() === variantWeights(variant, backends.length).join();
          const errors = (reply.body as { errors?: string[] }).errors ?? [];
          event.ok = reply.status === 422 && kept;
          event.detail = `HTTP ${reply.status}${reply.status === 422 ? ' (rejected)' : ' (NOT rejected)'}, weights [${weights.join(', ')}]${kept ? ' unchanged' : ' CHANGED'}; ${errors[0] ?? JSON.stringify(reply.body)}`;
          break;
        }
      }
    } catch (err) {
      event.ok = false;
      event.detail = `${event.detail}${event.detail ? '; ' : ''}error: ${(err as Error).message}`;
    }
    event.endedAt = Date.now();
    ctx.log(`chaos #${seq} ${kind} ${target}: ${event.ok ? 'ok' : 'MISBEHAVED'} (${((event.endedAt - event.startedAt) / 1000).toFixed(1)} s) ${event.detail}`);
    next = Math.max(next + opts.intervalS * 1000, Date.now() + 1000);
  }
  return events;
}

async function chaosKill(ctx: ChaosContext, backend: SoakBackend, downS: number, event: ChaosEvent): Promise<void> {
  const t0 = Date.now();
  await killBackend(backend);
  await sleep(downS * 1000);
  // What usher made of it while it was down (health checks every 500 ms, outlier detection).
  let stateDown = '?';
  try {
    stateDown = (await view(ctx.admin, backend)).state;
  } catch (err) {
    stateDown = `? (${(err as Error).message})`;
  }
  await restartBackend(backend);
  event.timings.down = Date.now() - t0;
  const t1 = Date.now();
  // Ejection lasts 10 s (outlier.ejectionTime), so allow a little more than that.
  const recovered = await until(async () => (await view(ctx.admin, backend)).state === 'healthy', 20_000);
  event.timings.recovered = recovered >= 0 ? Date.now() - t1 : -1;
  event.ok = recovered >= 0;
  event.detail = `pid ${backend.pid} (start #${backend.starts}); state after ${downS} s down: ${stateDown}; ${recovered >= 0 ? `healthy ${event.timings.recovered} ms after the restart` : 'NOT healthy 20 s after the restart'}`;
}

async function chaosDrain(admin: AdminClient, backend: SoakBackend, event: ChaosEvent): Promise<void> {
  const path = `/api/pools/${SOAK_POOL}/backends/${address(backend)}`;
  const drain = await admin.call('POST', `${path}/drain`);
  if (drain.status !== 200) throw new Error(`drain: HTTP ${drain.status} ${JSON.stringify(drain.body)}`);
  const t0 = Date.now();
  const drained = await until(async () => (await view(admin, backend)).inFlight === 0, 30_000);
  event.timings.drained = drained;
  let held = false;
  let moved = Number.NaN;
  if (drained >= 0) {
    const before = (await view(admin, backend)).counters.requests;
    await sleep(1000);
    const after = await view(admin, backend);
    moved = after.counters.requests - before;
    held = moved === 0 && after.adminState === 'draining';
  }
  const enable = await admin.call('POST', `${path}/enable`);
  const adminState = (enable.body as { adminState?: string }).adminState;
  event.ok = drained >= 0 && held && enable.status === 200 && adminState === 'enabled';
  event.detail = `${drained >= 0 ? `inFlight 0 after ${drained} ms` : `inFlight NOT 0 after ${Date.now() - t0} ms`}; ${Number.isNaN(moved) ? '' : `${moved} new requests in the next 1 s; `}enable: HTTP ${enable.status} (${adminState ?? '?'})`;
}
