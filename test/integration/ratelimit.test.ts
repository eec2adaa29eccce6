/**
 * The `rateLimit` filter against a real origin and real clients: GCRA burst
 * then refusal (status, Retry-After, problem+json, RateLimit headers), keys,
 * sliding window, concurrency released when the response ends, dry run,
 * maxDelay, state kept across reloads, and one budget for two worker threads.
 * Rates are slow (per minute) wherever a test must not see a refill, so a
 * busy machine cannot make it flaky.
 */
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { test, type TestContext } from 'node:test';
import type { Usher } from '../../src/runtime/usher.ts';
import { startOrigin, type Origin, type OriginHandler } from '../helpers/origin.ts';
import { send } from '../helpers/send.ts';
import { configFromYaml, startUsher } from '../helpers/usher.ts';
import { waitFor } from '../helpers/wait.ts';

function yaml(origin: Origin, policies: string, filter: string, runtime = ''): string {
  return `${runtime}rateLimits:
${policies}
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: main
        filters:
          - rateLimit: ${filter}
pools:
  main:
    backends:
      - address: ${origin.address}
`;
}

async function limited(t: TestContext, policies: string, filter: string, handler?: OriginHandler, runtime = ''): Promise<{ origin: Origin; usher: Usher; port: number }> {
  const origin = await startOrigin('o', handler);
  const usher = await startUsher(yaml(origin, policies, filter, runtime));
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  return { origin, usher, port: usher.address('web').port };
}

async function metric(usher: Usher, line: RegExp): Promise<number> {
  const text = await usher.renderMetrics();
  const found = text.split('\n').find((l) => line.test(l));
  return found === undefined ? 0 : Number(found.split(' ').at(-1));
}

test('gcra: burst + 1 requests pass with RateLimit headers, the next is refused with 429, Retry-After, problem+json and RateLimit', async (t) => {
  const { origin, port, usher } = await limited(t, '  api: { rate: 6/m, burst: 2, key: [client-ip], xRateLimitHeaders: true }', '[api]');
  const remaining: string[] = [];
  for (let i = 0; i < 3; i++) {
    const reply = await send(port, '/x');
    assert.equal(reply.status, 200, `request ${i + 1}`);
    assert.equal(reply.headers['ratelimit-policy'], '"api";q=6;w=60');
    remaining.push(String(reply.headers['ratelimit']).replace(/;t=\d+$/, ''));
    assert.equal(reply.headers['x-ratelimit-limit'], '6');
  }
  assert.deepEqual(remaining, ['"api";r=2', '"api";r=1', '"api";r=0']);
  const refused = await send(port, '/x');
  assert.equal(refused.status, 429);
  assert.equal(refused.headers['content-type'], 'application/problem+json');
  const retryAfter = Number(refused.headers['retry-after']);
  assert.ok(retryAfter >= 9 && retryAfter <= 10, `Retry-After ${retryAfter}: the next request conforms 10 s after the first`);
  assert.equal(refused.headers['ratelimit'], `"api";r=0;t=${retryAfter}`);
  assert.equal(refused.headers['ratelimit-policy'], '"api";q=6;w=60');
  assert.equal(refused.headers['x-ratelimit-remaining'], '0');
  const body = JSON.parse(refused.body) as Record<string, unknown>;
  assert.equal(body['type'], 'https://iana.org/assignments/http-problem-types#quota-exceeded');
  assert.equal(body['title'], 'Too Many Requests');
  assert.deepEqual(body['violated-policies'], ['api']);
  assert.equal(origin.seen.length, 3, 'the refused request never reached the origin');
  assert.equal(await metric(usher, /^usher_ratelimit_decisions_total\{policy="api",outcome="allowed",store="local"\}/), 3);
  assert.equal(await metric(usher, /^usher_ratelimit_decisions_total\{policy="api",outcome="limited",store="local"\}/), 1);
});

test('keys: clients with different x-api-key values have separate budgets; a request without the header is not limited', async (t) => {
  const { port, usher } = await limited(t, "  perkey: { rate: 1/m, key: ['header:x-api-key'] }", '[perkey]', undefined, 'admin: { bind: 127.0.0.1:0 }\n');
  assert.equal((await send(port, '/', { 'x-api-key': 'alice' })).status, 200);
  assert.equal((await send(port, '/', { 'x-api-key': 'alice' })).status, 429);
  assert.equal((await send(port, '/', { 'x-api-key': 'bob' })).status, 200, 'bob has his own budget');
  const [report] = usher.rateLimitReports();
  assert.equal(report?.liveKeys, 2);
  assert.deepEqual(report?.decisions, { allowed: 2, limited: 1, dry_run_limited: 0, delayed: 0 });
  assert.equal(report?.store, 'local');
  assert.deepEqual(report?.decisionsByStore.local, report?.decisions);
  // The same through the admin API.
  const listed = (await (await fetch(`${usher.adminUrl!}/api/ratelimits`)).json()) as { policies: { name?: string; liveKeys: number }[] };
  assert.equal(listed.policies[0]?.liveKeys, 2);
  // Top keys: the most refused first, then the busiest, with their counts.
  for (let i = 0; i < 3; i++) assert.equal((await send(port, '/', { 'x-api-key': 'alice' })).status, 429);
  const top = (await (await fetch(`${usher.adminUrl!}/api/ratelimits/perkey/top`)).json()) as { policy: string; keys: { key: string; decisions: number; limited: number; since: string }[] };
  assert.equal(top.policy, 'perkey');
  assert.deepEqual(top.keys.map((k) => [k.key, k.decisions, k.limited]), [['alice', 5, 4], ['bob', 1, 0]]);
  assert.ok(Date.parse(top.keys[0]!.since) > 0);
  assert.equal((await fetch(`${usher.adminUrl!}/api/ratelimits/perkey/top`, { method: 'POST' })).status, 405);
  const reset = await fetch(`${usher.adminUrl!}/api/ratelimits/perkey/reset`, { method: 'POST', body: JSON.stringify({ key: 'alice' }) });
  assert.deepEqual(await reset.json(), { policy: 'perkey', key: 'alice', reset: true });
  assert.equal((await fetch(`${usher.adminUrl!}/api/ratelimits/nope/reset`, { method: 'POST', body: JSON.stringify({ key: 'alice' }) })).status, 404);
  assert.equal((await fetch(`${usher.adminUrl!}/api/ratelimits/perkey/reset`, { method: 'POST', body: '{}' })).status, 400);
  assert.equal(usher.resetRateLimit('nope', 'alice'), undefined);
  assert.equal((await fetch(`${usher.adminUrl!}/api/ratelimits/nope/top`)).status, 404);
  assert.equal((await send(port, '/', { 'x-api-key': 'alice' })).status, 200, 'a reset key starts afresh');
  for (let i = 0; i < 5; i++) {
    const anonymous = await send(port, '/');
    assert.equal(anonymous.status, 200, 'an empty key is not counted');
    assert.equal(anonymous.headers['ratelimit'], undefined);
  }
});

test('sliding window: limit per window, then the policy\'s status (503 with temporary-reduced-capacity)', async (t) => {
  const { port } = await limited(t, '  hourly: { algorithm: sliding-window, limit: 3, window: 1h, status: 503 }', '[hourly]');
  for (let i = 0; i < 3; i++) {
    const reply = await send(port, '/');
    assert.equal(reply.status, 200);
    assert.match(String(reply.headers['ratelimit']), new RegExp(`^"hourly";r=${2 - i};t=\\d+$`));
    assert.equal(reply.headers['ratelimit-policy'], '"hourly";q=3;w=3600');
  }
  const refused = await send(port, '/');
  assert.equal(refused.status, 503);
  assert.ok(Number(refused.headers['retry-after']) > 60, 'the next slot is most of an hour away');
  assert.equal((JSON.parse(refused.body) as Record<string, unknown>)['type'], 'https://iana.org/assignments/http-problem-types#temporary-reduced-capacity');
});

test('concurrency: the limit+1th concurrent request is refused; slots come back when responses end', async (t) => {
  const held: ServerResponse[] = [];
  const { origin, port } = await limited(t, '  uploads: { algorithm: concurrency, limit: 2 }', '[uploads]', (req, res) => {
    req.resume();
    held.push(res);
  });
  const first = [send(port, '/1'), send(port, '/2')];
  await waitFor(() => origin.seen.length === 2, 'two requests at the origin');
  const third = await send(port, '/3');
  assert.equal(third.status, 429);
  assert.equal(third.headers['ratelimit-policy'], '"uploads";q=2');
  for (const res of held.splice(0)) res.writeHead(200).end('done');
  assert.deepEqual((await Promise.all(first)).map((r) => r.status), [200, 200]);
  // The slots are given back when the exchanges finish: two more may be in flight again.
  await waitFor(async () => {
    const pair = [send(port, '/4'), send(port, '/5')];
    await waitFor(() => held.length > 0 || origin.seen.length >= 4, 'an attempt reached the origin or was refused', 5000).catch(() => {});
    await new Promise((resolve) => setImmediate(resolve));
    for (const res of held.splice(0)) res.writeHead(200).end('done');
    const statuses = (await Promise.all(pair)).map((r) => r.status);
    return statuses.every((s) => s === 200);
  }, 'two requests in flight again', 10_000);
});

test('dry run: nothing is refused, and what would have been is counted', async (t) => {
  const { port, usher } = await limited(t, '  shadow: { rate: 1/m, dryRun: true }', '[shadow]');
  for (let i = 0; i < 4; i++) {
    const reply = await send(port, '/');
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['ratelimit'], undefined, 'a dry-run policy is not shown to clients');
  }
  assert.equal(await metric(usher, /^usher_ratelimit_decisions_total\{policy="shadow",outcome="allowed",store="local"\}/), 1);
  assert.equal(await metric(usher, /^usher_ratelimit_decisions_total\{policy="shadow",outcome="dry_run_limited",store="local"\}/), 3);
});

test('maxDelay: requests over the burst that conform soon enough wait instead of being refused; beyond maxDelay they are refused', async (t) => {
  const { port, usher } = await limited(t, '  paced: { rate: 5/s, maxDelay: 2s, key: [\'header:x-k\'] }\n  strict: { rate: 1/m, maxDelay: 300ms, key: [\'header:x-s\'] }', '[paced, strict]');
  const started = performance.now();
  const replies = await Promise.all([0, 1, 2].map(() => send(port, '/', { 'x-k': 'a' })));
  const elapsed = performance.now() - started;
  assert.deepEqual(replies.map((r) => r.status), [200, 200, 200]);
  assert.ok(elapsed >= 350, `the third waited about 400 ms (two intervals of 200 ms): took ${elapsed.toFixed(0)} ms`);
  assert.equal(await metric(usher, /^usher_ratelimit_decisions_total\{policy="paced",outcome="delayed",store="local"\}/), 2);
  assert.equal((await send(port, '/', { 'x-s': 'a' })).status, 200);
  assert.equal((await send(port, '/', { 'x-s': 'a' })).status, 429, 'a 60 s wait is over maxDelay');
});

test('reload: an unchanged policy keeps its counts; a changed one starts afresh', async (t) => {
  const origin = await startOrigin('o');
  const text = (rate: string) => yaml(origin, `  api: { rate: ${rate} }`, '[api]');
  const usher = await startUsher(text('1/m'));
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  const port = usher.address('web').port;
  assert.equal((await send(port, '/')).status, 200);
  assert.equal((await send(port, '/')).status, 429);
  const same = await usher.reload(configFromYaml(`${text('1/m')}shutdownTimeout: 5s\n`));
  assert.equal(same.ok, true);
  assert.equal((await send(port, '/')).status, 429, 'the key is still limited after a reload that kept the policy');
  assert.equal((await usher.reload(configFromYaml(text('2/m')))).ok, true);
  assert.equal((await send(port, '/')).status, 200, 'a changed policy has a new table');
});

for (const workers of [2, 0]) {
  test(`runtime.workers: ${workers}: one budget per process; admitted requests stay within what it allows`, async (t) => {
    const { port, usher } = await limited(t, "  shared: { rate: 20/s, key: ['header:x-tenant'] }", '[shared]', undefined, `runtime: { workers: ${workers} }\n`);
    let admitted = 0;
    let refused = 0;
    let next = 0;
    const total = 200;
    const started = performance.now();
    const client = async (): Promise<void> => {
      while (next < total) {
        next++;
        const reply = await send(port, '/', { 'x-tenant': 't1' });
        if (reply.status === 200) admitted++;
        else if (reply.status === 429) refused++;
      }
    };
    await Promise.all(Array.from({ length: 8 }, client));
    const elapsedS = (performance.now() - started) / 1000;
    assert.equal(admitted + refused, total);
    await usher.refresh();
    const served = usher.workers.map((w) => w.requests);
    assert.equal(served.length, workers);
    assert.ok(served.every((n) => n > 0), `every worker served requests: ${served.join(', ')}`);
    // One budget: 1 at once, then 20 per second. Two budgets would admit about twice that.
    const bound = 1 + 20 * elapsedS + 3;
    assert.ok(admitted <= bound, `admitted ${admitted} in ${elapsedS.toFixed(2)} s; one process allows at most ${bound.toFixed(1)}`);
    assert.ok(admitted >= 1);
    assert.ok(refused > 0);
    assert.equal(await metric(usher, /^usher_ratelimit_decisions_total\{policy="shared",outcome="allowed",store="local"\}/), admitted, 'the metric counts every thread once');
  });
}
