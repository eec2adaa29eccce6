/**
 * Passive health (outlier detection) inside a running usher: a backend that
 * starts answering 500 is ejected after exactly `consecutiveFailures` of
 * them, gets no traffic while ejected, comes back after the ejection time,
 * and a second ejection soon after lasts twice as long.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { backendAt, clientFor, poolYaml, send, switchableOrigins, usherWithPool } from '../fixtures/health.ts';

const CONSECUTIVE = 5;
const EJECTION_MS = 400;

test('outlier detection: ejected after exactly 5 consecutive 500s, no traffic while out, back after ejectionTime; the second ejection lasts twice as long', async (t) => {
  const origins = await switchableOrigins(t, 3);
  const bad = origins[0]!;
  const { pool, url } = await usherWithPool(
    t,
    poolYaml(`outlier: { consecutiveFailures: ${CONSECUTIVE}, ejectionTime: ${EJECTION_MS}ms, maxEjectionPercent: 50 }`, origins.map((o) => o.address)),
  );
  const backend = backendAt(pool, bad.address);
  const client = clientFor(t, url);
  // Ejection lengths are read from usher's own state changes, not from when the test saw a reply: on a
  // busy machine the reply that completed a streak can reach the test a hundred milliseconds late.
  const flips: { readonly ejected: boolean; readonly at: number }[] = [];
  const stateChanged = pool.control.stateChanged.bind(pool.control);
  pool.control.stateChanged = () => {
    stateChanged();
    if ((flips.at(-1)?.ejected ?? false) !== backend.ejected) flips.push({ ejected: backend.ejected, at: performance.now() });
  };
  const ejectionLength = (round: number): number => {
    const start = flips[2 * (round - 1)];
    const end = flips[2 * (round - 1) + 1];
    assert.ok(start?.ejected === true && end?.ejected === false, `ejection ${round} began and ended: ${JSON.stringify(flips)}`);
    return end.at - start.at;
  };

  /** Sends requests until `bad` answered CONSECUTIVE 500s; asserts it was not ejected one failure early. Returns when it was ejected. */
  const failUntilEjected = async (round: number): Promise<number> => {
    bad.status = 500;
    const hitsBefore = bad.hits;
    let fails = 0;
    for (let i = 0; i < 100 && fails < CONSECUTIVE; i++) {
      assert.equal(backend.ejected, false, `round ${round}: ejected after only ${fails} 500s`);
      const reply = await send(client, `/r${round}/${i}`);
      if (reply.origin === bad.name) {
        assert.equal(reply.status, 500);
        fails++;
      } else {
        assert.equal(reply.status, 200);
      }
    }
    const ejectedAt = performance.now();
    assert.equal(fails, CONSECUTIVE);
    assert.equal(bad.hits - hitsBefore, CONSECUTIVE, 'the backend served exactly the failing requests');
    assert.equal(backend.ejected, true, `round ${round}: ejected after ${CONSECUTIVE} 500s`);
    assert.equal(backend.state, 'ejected');
    assert.equal(backend.counters.ejections, round);
    return ejectedAt;
  };

  /** Keeps traffic flowing (the backend answers 200 again) and polls until the ejection ends; returns how long it lasted. */
  const trafficUntilReturned = async (ejectedAt: number, round: number): Promise<number> => {
    bad.status = 200;
    const hitsBefore = bad.hits;
    let servedWhileEjected = 0;
    for (let i = 0; i < 1000 && backend.ejected; i++) {
      const reply = await send(client, `/e${round}/${i}`);
      assert.equal(reply.status, 200);
      // Still ejected after the answer: the pick happened during the ejection.
      if (backend.ejected) {
        servedWhileEjected++;
        assert.notEqual(reply.origin, bad.name, 'an ejected backend gets no traffic');
      }
      await sleep(5);
    }
    const lasted = performance.now() - ejectedAt;
    assert.equal(backend.ejected, false, 'the ejection ended');
    assert.ok(servedWhileEjected >= 20, `${servedWhileEjected} requests served by the others during ejection ${round}`);
    assert.ok(bad.hits - hitsBefore <= 1, 'at most the one request picked just after the return reached it');
    return lasted;
  };

  const ejected1 = await failUntilEjected(1);
  const firstSeen = await trafficUntilReturned(ejected1, 1);
  assert.equal(backend.state, 'healthy');
  // Fail again at once, well within one ejectionTime of the return, so no forgiveness applies.
  const ejected2 = await failUntilEjected(2);
  assert.ok(performance.now() - ejected1 - firstSeen < EJECTION_MS, 'second streak finished within one ejection time of the return');
  await trafficUntilReturned(ejected2, 2);
  const first = ejectionLength(1);
  const second = ejectionLength(2);
  t.diagnostic(`first ejection ${first.toFixed(0)} ms, second ${second.toFixed(0)} ms (ratio ${(second / first).toFixed(2)})`);
  assert.ok(first >= EJECTION_MS - 20 && first <= EJECTION_MS + 300, `first ejection lasted ${first.toFixed(0)} ms`);
  assert.ok(second >= 2 * EJECTION_MS - 20 && second <= 2 * EJECTION_MS + 300, `second ejection lasted ${second.toFixed(0)} ms`);
  assert.ok(second >= 1.8 * first, `second ${second.toFixed(0)} ms vs first ${first.toFixed(0)} ms`);

  // Back in rotation with its full share.
  const counts = new Map<string, number>();
  for (let i = 0; i < 30; i++) {
    const reply = await send(client, `/back/${i}`);
    assert.equal(reply.status, 200);
    counts.set(reply.origin!, (counts.get(reply.origin!) ?? 0) + 1);
  }
  // Equal weights: about a third (the round-robin position it kept while out may shift it by one).
  const share = counts.get(bad.name) ?? 0;
  assert.ok(share >= 9 && share <= 11, `${share} of 30 after returning`);
  assert.equal(backend.counters.ejections, 2);
  assert.equal(backend.counters.responses5xx, 2 * CONSECUTIVE);
});
