import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { pino } from 'pino';
import { request } from 'undici';
import { registerBalancer } from '../../src/balancer/registry.ts';
import type { UsherConfig } from '../../src/config/types.ts';
import { createAccessLog } from '../../src/observe/access-log.ts';
import { Usher } from '../../src/runtime/usher.ts';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { refusedPort } from '../helpers/refused.ts';
import { configFromYaml } from '../helpers/usher.ts';

// Plug-in balancers with bugs: one throws on every pick, one on every pick after the first
// (a retry, which runs from an upstream socket event, outside any request's try/catch),
// one returns an endpoint it was never given.
registerBalancer('explodes-on-pick', () => ({
  pick() {
    throw new Error('bug in a custom balancer');
  },
}));
registerBalancer('explodes-on-retry', (endpoints) => ({
  pick(ctx, accept) {
    if (ctx.tried.length > 0) throw new Error('bug on the retry path');
    return endpoints.find((e) => accept(e, ctx));
  },
}));
registerBalancer('returns-a-stranger', () => ({
  pick: () => ({ index: 0, key: 'stranger:1', weight: 1, inFlight: 0 }),
}));
registerBalancer('cannot-build-over-three', (endpoints) => {
  if (endpoints.length >= 3) throw new Error('three is too many for this balancer');
  return { pick: (ctx, accept) => endpoints.find((e) => accept(e, ctx)) };
});

interface Logged {
  readonly level: number;
  readonly msg: string;
  readonly pool?: string;
  readonly algorithm?: string;
}

/** Starts usher on `config` with a logger whose lines the test reads. */
async function startLogged(t: TestContext, config: UsherConfig, origins: readonly Origin[]): Promise<{ usher: Usher; logged: Logged[] }> {
  const logged: Logged[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logged.push(JSON.parse(chunk.toString()) as Logged);
      done();
    },
  });
  const usher = await Usher.start(config, { accessLog: createAccessLog({ enabled: false }), logger: pino(sink) });
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    for (const origin of origins) await origin.close();
  });
  return { usher, logged };
}

/** A `broken` pool (algorithm `algorithm`, over `addresses`) behind /broken, and a `fine` one behind everything else. */
function brokenConfig(algorithm: string, addresses: readonly string[], fine: string): UsherConfig {
  const base = configFromYaml(`listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - match: { pathPrefix: /broken }
        pool: broken
      - pool: fine
pools:
  broken:
    backends:
${addresses.map((address) => `      - address: ${address}\n`).join('')}  fine:
    backends:
      - address: ${fine}
`);
  // An embedder's config object may name any registered algorithm.
  const broken = { ...base.pools['broken']!, algorithm };
  return { ...base, pools: { ...base.pools, broken } };
}

test('an exception while serving one request answers 500 and closes that connection; the process keeps serving', async (t) => {
  const origin = await startOrigin('ok');
  const { usher, logged } = await startLogged(t, brokenConfig('p2c', [origin.address], origin.address), [origin]);
  // A bug anywhere in the request path: here, the pool's pick itself throws.
  t.mock.method(usher.snapshot.pools.get('broken')!.runtime, 'select', () => {
    throw new Error('bug in usher');
  });
  for (let i = 0; i < 3; i++) {
    const res = await request(`${usher.url('web')}/broken/${i}`);
    assert.equal(res.statusCode, 500);
    assert.equal(res.headers['x-usher-error'], 'internal_error');
    assert.equal(res.headers['connection'], 'close');
    await res.body.text();
    const fine = await request(`${usher.url('web')}/fine`);
    assert.equal(fine.statusCode, 200);
    assert.equal(await fine.body.text(), 'ok');
  }
  const errors = logged.filter((line) => line.level >= 50);
  assert.equal(errors.length, 3, 'each internal error is logged once');
  assert.match(errors[0]!.msg, /internal error on a client connection/);
  assert.equal(origin.seen.length, 3, 'only the healthy route reached the backend');
  const pool = usher.snapshot.pools.get('broken')!;
  assert.equal(pool.control.backends[0]!.inFlight, 0);
});

test('a balancer that throws in pick: that request gets 500 balancer_error, the error is logged, the process carries on', async (t) => {
  const origin = await startOrigin('ok');
  const { usher, logged } = await startLogged(t, brokenConfig('explodes-on-pick', [origin.address], origin.address), [origin]);
  for (let i = 0; i < 3; i++) {
    const res = await request(`${usher.url('web')}/broken/${i}`);
    assert.equal(res.statusCode, 500);
    assert.equal(res.headers['x-usher-error'], 'balancer_error');
    await res.body.text();
    const fine = await request(`${usher.url('web')}/fine`);
    assert.equal(fine.statusCode, 200);
    assert.equal(await fine.body.text(), 'ok');
  }
  assert.equal(origin.seen.length, 3, 'only the healthy route reached the backend');
  const errors = logged.filter((line) => line.level >= 50);
  // At most one line a second, so a balancer failing every request cannot flood the log.
  assert.equal(errors.length, 1);
  assert.match(errors[0]!.msg, /the balancer threw while picking a backend/);
  assert.equal(errors[0]!.pool, 'broken');
  assert.equal(errors[0]!.algorithm, 'explodes-on-pick');
  assert.equal(usher.snapshot.pools.get('broken')!.control.backends[0]!.inFlight, 0);
});

test('a balancer that throws when a retry picks (from an upstream socket event) fails that request with 500, not the process', async (t) => {
  const origin = await startOrigin('ok');
  const dead = `127.0.0.1:${await refusedPort()}`;
  // The dead backend first: the first pick takes it, the connect is refused, the retry's pick throws.
  const { usher, logged } = await startLogged(t, brokenConfig('explodes-on-retry', [dead, origin.address], origin.address), [origin]);
  const res = await request(`${usher.url('web')}/broken`);
  assert.equal(res.statusCode, 500);
  assert.equal(res.headers['x-usher-error'], 'balancer_error');
  await res.body.text();
  const fine = await request(`${usher.url('web')}/fine`);
  assert.equal(fine.statusCode, 200);
  await fine.body.text();
  assert.equal(logged.filter((line) => /the balancer threw/.test(line.msg)).length, 1);
  for (const backend of usher.snapshot.pools.get('broken')!.control.backends) assert.equal(backend.inFlight, 0);
});

test('a balancer that returns an endpoint it was not given: 500 balancer_error, logged', async (t) => {
  const origin = await startOrigin('ok');
  const { usher, logged } = await startLogged(t, brokenConfig('returns-a-stranger', [origin.address], origin.address), [origin]);
  const res = await request(`${usher.url('web')}/broken`);
  assert.equal(res.statusCode, 500);
  assert.equal(res.headers['x-usher-error'], 'balancer_error');
  await res.body.text();
  const line = logged.find((entry) => /the balancer threw/.test(entry.msg)) as (Logged & { err?: { message?: string } }) | undefined;
  assert.match(line?.err?.message ?? '', /"stranger:1", which is not one of the pool's backends/);
  assert.equal(origin.seen.length, 0);
});

test('a balancer whose create() throws after a membership change: the pool answers 500 balancer_error until a change builds again', async (t) => {
  const origin = await startOrigin('ok');
  const other = await startOrigin('other');
  const { usher, logged } = await startLogged(t, brokenConfig('cannot-build-over-three', [origin.address, other.address], origin.address), [origin, other]);
  const ok = await request(`${usher.url('web')}/broken`);
  assert.equal(ok.statusCode, 200);
  await ok.body.text();
  const pool = usher.snapshot.pools.get('broken')!;
  // The admin API's add goes through the same rebuild.
  const third = pool.control.add({ address: { host: '127.0.0.1', port: 9 }, weight: 1, backup: false, state: 'enabled' });
  assert.equal(pool.control.backends.length, 3);
  const failed = await request(`${usher.url('web')}/broken`);
  assert.equal(failed.statusCode, 500);
  assert.equal(failed.headers['x-usher-error'], 'balancer_error');
  await failed.body.text();
  const line = logged.find((entry) => /the balancer could not be built/.test(entry.msg));
  assert.equal(line?.pool, 'broken');
  pool.control.remove(third);
  const again = await request(`${usher.url('web')}/broken`);
  assert.equal(again.statusCode, 200);
  await again.body.text();
});
