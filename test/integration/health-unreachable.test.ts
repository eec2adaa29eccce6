/**
 * Passive ejection of backends that refuse connections (the pool's
 * `unreachable`, on by default): out of rotation at the first refusal, tried
 * again after a backoff that doubles while the backend keeps refusing, back
 * early when an active health check passes, and never the pool's last
 * available backend.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { backendAt, clientFor, closedPort, HOST, poolYaml, send, switchableOrigins, usherWithPool, waitFor } from '../fixtures/health.ts';

test('a backend that refuses a connection leaves rotation at its first refusal; the request is retried, nothing fails', async (t) => {
  const [origin] = await switchableOrigins(t, 1);
  const dead = [`${HOST}:${await closedPort()}`, `${HOST}:${await closedPort()}`];
  const { pool, url } = await usherWithPool(t, poolYaml('unreachable: { backoff: 10s }', [...dead, origin!.address]));
  const client = clientFor(t, url);
  const replies = [];
  for (let i = 0; i < 30; i++) replies.push(await send(client, `/r${i}`));
  assert.deepEqual(replies.map((r) => r.status), replies.map(() => 200));
  for (const address of dead) {
    const backend = backendAt(pool, address);
    assert.equal(backend.state, 'unreachable');
    assert.equal(backend.available, false);
    assert.equal(backend.counters.requests, 1, `${address}: tried once, then out of rotation`);
  }
  assert.equal(origin!.hits, 30);
});

test('the last available backend is never taken out: a lone refusing backend answers 502 connect_refused, not 503', async (t) => {
  const address = `${HOST}:${await closedPort()}`;
  const { pool, url } = await usherWithPool(t, poolYaml('', [address]));
  const client = clientFor(t, url);
  for (let i = 0; i < 3; i++) {
    const reply = await send(client, `/l${i}`);
    assert.equal(reply.status, 502);
    assert.equal(reply.reason, 'connect_refused');
  }
  assert.equal(backendAt(pool, address).state, 'healthy');
  assert.equal(pool.control.mode, 'primary');
});

test('with every backend refusing, all but one leave rotation and clients get the real error', async (t) => {
  const addresses = [`${HOST}:${await closedPort()}`, `${HOST}:${await closedPort()}`, `${HOST}:${await closedPort()}`];
  const { pool, url } = await usherWithPool(t, poolYaml('unreachable: { backoff: 10s }', addresses));
  const client = clientFor(t, url);
  for (let i = 0; i < 6; i++) {
    const reply = await send(client, `/a${i}`);
    assert.equal(reply.status, 502);
    assert.equal(reply.reason, 'connect_refused');
  }
  const states = addresses.map((address) => backendAt(pool, address).state);
  assert.deepEqual(states.filter((s) => s === 'unreachable').length, 2, states.join(', '));
  assert.deepEqual(states.filter((s) => s === 'healthy').length, 1, states.join(', '));
});

test('while a backend keeps refusing, its time out of rotation doubles up to maxBackoff', async (t) => {
  const [origin] = await switchableOrigins(t, 1);
  const dead = `${HOST}:${await closedPort()}`;
  const { pool, url } = await usherWithPool(t, poolYaml('unreachable: { backoff: 150ms, maxBackoff: 600ms }', [dead, origin!.address]));
  const backend = backendAt(pool, dead);
  const client = clientFor(t, url);
  // Steady traffic, so the backend is tried as soon as it is back.
  let stop = false;
  const traffic = (async () => {
    for (let i = 0; !stop && i < 20_000; i++) {
      const reply = await send(client, `/d${i}`);
      assert.equal(reply.status, 200);
      await sleep(2);
    }
  })();
  // Every state change goes through pool.control.stateChanged(): record each flip of `unreachable` with its time (polling could miss a short return).
  const flips: { readonly out: boolean; readonly at: number }[] = [];
  const stateChanged = pool.control.stateChanged.bind(pool.control);
  pool.control.stateChanged = () => {
    stateChanged();
    if (flips.at(-1)?.out !== backend.unreachable && (flips.length > 0 || backend.unreachable)) flips.push({ out: backend.unreachable, at: performance.now() });
  };
  const spells: number[] = [];
  try {
    await waitFor(() => flips.filter((flip) => !flip.out).length >= 5, 'five spells out of rotation', 6000);
  } finally {
    stop = true;
    await traffic;
  }
  for (let i = 0; i + 1 < flips.length; i += 2) spells.push(flips[i + 1]!.at - flips[i]!.at);
  t.diagnostic(`out of rotation for ${spells.map((ms) => ms.toFixed(0)).join(', ')} ms`);
  [150, 300, 600, 600, 600].forEach((expected, i) => {
    assert.ok(spells[i]! >= expected - 5 && spells[i]! <= expected + 250, `spell ${i + 1}: ${spells[i]!.toFixed(0)} ms, expected ${expected}`);
  });
});

test('a passing health check brings an unreachable backend back before its backoff ends', async (t) => {
  const origins = await switchableOrigins(t, 2);
  const victim = origins[0]!;
  const { pool, url } = await usherWithPool(
    t,
    poolYaml('unreachable: { backoff: 20s, maxBackoff: 20s }\nhealthCheck: { interval: 100ms, fastInterval: 50ms, timeout: 200ms, rise: 2, fall: 30 }', origins.map((o) => o.address)),
  );
  const backend = backendAt(pool, victim.address);
  // The first check result is decisive (one failure takes a backend out): let it pass before closing the
  // victim, so only a request can find it closed. A second check has started only once the first was judged.
  await waitFor(() => victim.healthChecks >= 2, 'the first health check to pass');
  await victim.close();
  const client = clientFor(t, url);
  // Round-robin: one of the first two requests goes to the closed backend and is refused.
  for (let i = 0; !backend.unreachable && i < 10; i++) assert.equal((await send(client, `/p${i}`)).status, 200);
  assert.equal(backend.unreachable, true);
  await victim.listen(); // same port
  const backMs = await waitFor(() => !backend.unreachable && backend.available, 'a passing check to bring it back', 5000);
  t.diagnostic(`back ${backMs.toFixed(0)} ms after listening again (backoff 20 s)`);
  assert.ok(backMs < 2000, `back after ${backMs.toFixed(0)} ms`);
});
