import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import { parseConfig } from '../../src/config/index.ts';
import { createAccessLog } from '../../src/observe/access-log.ts';
import { Usher } from '../../src/runtime/usher.ts';
import { startOrigin, startOrigins } from '../helpers/origin.ts';
import { configFromYaml, simpleYaml, startUsher } from '../helpers/usher.ts';

test('with nowhere else to retry, the backend\'s own 502 reaches the client unchanged', async (t) => {
  const origin = await startOrigin('only', (req, res) => {
    req.resume();
    res.writeHead(502, { 'retry-after': '5', 'x-origin': 'only' }).end('backend says 502');
  });
  const usher = await startUsher(simpleYaml([origin.address], { algorithm: 'round-robin', retry: { attempts: 2, on: ['502', '503'] } }));
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  const res = await request(`${usher.url('web')}/x`);
  assert.equal(res.statusCode, 502);
  assert.equal(res.headers['retry-after'], '5');
  assert.equal(res.headers['x-usher-error'], undefined);
  assert.equal(await res.body.text(), 'backend says 502');
  assert.equal(origin.seen.length, 1);
  assert.equal(usher.snapshot.pools.get('main')!.control.backends[0]!.counters.retriedAway, 0);
});

test('a reload applies a new retry budget and keeps the outlier ejection cap', async (t) => {
  let failing = true;
  const origins = await startOrigins(3, 'o', (req, res, origin) => {
    req.resume();
    res.writeHead(failing ? 500 : 200, { 'x-origin': origin.name }).end(origin.name);
  });
  const addresses = origins.map((o) => o.address);
  const outlier = { consecutiveFailures: 2, ejectionTime: '60s', maxEjectionPercent: 34 };
  let source = simpleYaml(addresses, { algorithm: 'round-robin', outlier, retry: { attempts: 1, budget: '20%', minRetriesPerSecond: 1 } });
  const usher = await Usher.start(configFromYaml(source), {
    accessLog: createAccessLog({ enabled: false }),
    configSource: () => parseConfig(source, 'test.yaml', {}),
  });
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await Promise.all(origins.map((o) => o.close()));
  });
  const pool = usher.snapshot.pools.get('main')!;
  // 500 is never a retry condition: every request lands once, and each 500 counts for outlier detection.
  for (let i = 0; i < 6; i++) await (await request(`${usher.url('web')}/`)).body.text();
  const ejected = pool.control.backends.filter((b) => b.ejected).length;
  assert.equal(ejected, 1, 'maxEjectionPercent 34 of 3 backends allows one ejection');

  // An identical reload must not reset the detector's count of ejected backends.
  assert.equal((await usher.reload()).ok, true);
  for (let i = 0; i < 8; i++) await (await request(`${usher.url('web')}/`)).body.text();
  assert.equal(pool.control.backends.filter((b) => b.ejected).length, 1, 'still at most one ejected after a reload');

  // A changed budget applies: 100% lets every request retry once.
  failing = false;
  source = simpleYaml(addresses, { algorithm: 'round-robin', outlier, retry: { attempts: 1, on: ['503'], budget: '100%', minRetriesPerSecond: 0 } });
  assert.equal((await usher.reload()).ok, true);
  assert.ok(pool.runtime.retryBudget !== undefined);
  const budget = pool.runtime.retryBudget;
  const now = performance.now();
  for (let i = 0; i < 5; i++) budget.onRequest(now);
  let granted = 0;
  for (let i = 0; i < 5; i++) if (budget.tryAcquireRetry(now)) granted++;
  assert.equal(granted, 5);
});
