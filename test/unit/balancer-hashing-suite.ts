/**
 * Distribution tests shared by the consistent-hashing balancers (ring and
 * Maglev). Not a test file itself: `balancer-hash.test.ts` and
 * `balancer-maglev.test.ts` run it.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import type { Accept, Balancer, BalancerFactory, Endpoint } from '../../src/balancer/types.ts';
import { mulberry32 } from '../helpers/prng.ts';
import { acceptAll, keyHash, makeCtx, makeEndpoints, makeOptions } from './balancer-fixtures.ts';
import type { TestEndpoint } from './balancer-fixtures.ts';

const KEYS = 10_000;

/** The endpoint key each of the KEYS test keys maps to. */
function mapping(b: Balancer, accept: Accept = acceptAll): string[] {
  const out: string[] = [];
  for (let i = 0; i < KEYS; i++) out.push(b.pick(makeCtx(keyHash(i)), accept)!.key);
  return out;
}

/** `endpoints` without the one at `removed`, re-indexed as a pool would. */
function without(endpoints: readonly TestEndpoint[], removed: number): TestEndpoint[] {
  return endpoints.filter((_, i) => i !== removed).map((e, index) => ({ ...e, index }));
}

export interface HashingSuiteOptions {
  /** Largest fraction of all keys that may move off *surviving* endpoints when one is removed. */
  readonly survivorMoveLimit: number;
}

export function consistentHashingSuite(factory: BalancerFactory, suite: HashingSuiteOptions): void {
  const build = (endpoints: readonly Endpoint[], factor?: number): Balancer =>
    factory(endpoints, makeOptions(1, { now: 0 }, factor));

  it('maps the same key to the same endpoint, across picks and rebuilds', () => {
    const endpoints = makeEndpoints(10);
    const b = build(endpoints);
    const first = mapping(b);
    assert.deepEqual(mapping(b), first);
    assert.deepEqual(mapping(build(makeEndpoints(10))), first);
    // Listing order does not matter: the table depends on the set of keys.
    const reversed = [...makeEndpoints(10)].reverse().map((e, index) => ({ ...e, index }));
    assert.deepEqual(mapping(build(reversed)), first);
  });

  it('spreads keys evenly over equal endpoints', () => {
    const counts = new Map<string, number>();
    for (const k of mapping(build(makeEndpoints(10)))) counts.set(k, (counts.get(k) ?? 0) + 1);
    assert.equal(counts.size, 10);
    for (const c of counts.values()) assert.ok(c > 0.75 * (KEYS / 10) && c < 1.25 * (KEYS / 10), `counts ${[...counts.values()]}`);
  });

  it('moves few keys when one of 10 endpoints is removed, and restores them when it is back', () => {
    const endpoints = makeEndpoints(10);
    const before = mapping(build(endpoints));
    for (const removed of [0, 4, 9]) {
      const gone = endpoints[removed]!.key;
      const after = mapping(build(without(endpoints, removed)));
      let moved = 0;
      let survivorsMoved = 0;
      for (let i = 0; i < KEYS; i++) {
        if (before[i] === gone) assert.notEqual(after[i], gone);
        if (before[i] !== after[i]) {
          moved++;
          if (before[i] !== gone) survivorsMoved++;
        }
      }
      assert.ok(moved <= 0.15 * KEYS, `removing ${gone} moved ${moved} of ${KEYS} keys`);
      assert.ok(
        survivorsMoved <= suite.survivorMoveLimit * KEYS,
        `removing ${gone} moved ${survivorsMoved} keys between surviving endpoints`,
      );
      assert.deepEqual(mapping(build(endpoints)), before, 'adding it back restores the mapping');
    }
  });

  it('skews shares roughly in proportion to weight', () => {
    const endpoints = makeEndpoints([1, 2, 3, 4]);
    const b = build(endpoints);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 20_000; i++) counts[b.pick(makeCtx(keyHash(i)), acceptAll)!.index]!++;
    counts.forEach((c, i) => {
      const want = ((i + 1) / 10) * 20_000;
      assert.ok(Math.abs(c - want) < 0.2 * want, `counts ${counts}`);
    });
  });

  it('sends keys of a refused owner to the same fallback every time, spread over the others', () => {
    const endpoints = makeEndpoints(10);
    const b = build(endpoints);
    const shuffled = build([...makeEndpoints(10)].reverse().map((e, index) => ({ ...e, index })));
    const down = endpoints[3]!;
    const notDown: Accept = (e) => e.key !== down.key;
    const owners = mapping(b);
    const fallbacks = mapping(b, notDown);
    assert.deepEqual(mapping(b, notDown), fallbacks, 'same key, same fallback');
    assert.deepEqual(mapping(shuffled, notDown), fallbacks, 'same fallback after a rebuild');
    const targets = new Set<string>();
    for (let i = 0; i < KEYS; i++) {
      if (owners[i] === down.key) {
        assert.notEqual(fallbacks[i], down.key);
        targets.add(fallbacks[i]!);
      } else assert.equal(fallbacks[i], owners[i], 'keys of healthy owners stay put');
    }
    assert.ok(targets.size >= 5, `a refused owner's keys went to only ${targets.size} endpoints`);
  });

  it('bounded loads: an overloaded owner passes the request on (factor 150)', () => {
    const endpoints = makeEndpoints(10);
    const bounded = build(endpoints, 150);
    const plain = build(endpoints);
    for (let key = 0; key < 50; key++) {
      const hash = keyHash(key);
      const owner = plain.pick(makeCtx(hash), acceptAll)!;
      endpoints[owner.index]!.inFlight = 30; // capacity: ceil(1.5 × 31 / 10) = 5
      assert.equal(plain.pick(makeCtx(hash), acceptAll), owner);
      const picked = bounded.pick(makeCtx(hash), acceptAll)!;
      assert.notEqual(picked, owner);
      assert.ok(picked.inFlight + 1 <= 5);
      assert.equal(bounded.pick(makeCtx(hash), acceptAll), picked, 'the overflow is deterministic');
      endpoints[owner.index]!.inFlight = 4; // T = 4: capacity ceil(1.5 × 5 / 10) = 1, still over
      assert.notEqual(bounded.pick(makeCtx(hash), acceptAll), owner);
      endpoints[owner.index]!.inFlight = 0;
      assert.equal(bounded.pick(makeCtx(hash), acceptAll), owner, 'an owner with room keeps its keys');
    }
  });

  it('bounded loads: no endpoint exceeds ceil(c × (T + 1) / n) under a hot key', () => {
    const run = (factor: number | undefined): number => {
      const endpoints = makeEndpoints(10);
      const b = build(endpoints, factor);
      const random = mulberry32(17);
      let total = 0;
      let max = 0;
      for (let r = 0; r < 400; r++) {
        const hash = random() < 0.7 ? keyHash(1) : keyHash(Math.floor(random() * 1000));
        const e = endpoints[b.pick(makeCtx(hash), acceptAll)!.index]!;
        if (factor !== undefined) {
          const bound = Math.ceil(((factor / 100) * (total + 1)) / endpoints.length);
          assert.ok(e.inFlight + 1 <= bound, `request ${r}: ${e.inFlight + 1} > ${bound}`);
        }
        e.inFlight++;
        total++;
        max = Math.max(max, e.inFlight);
      }
      return max;
    };
    assert.ok(run(150) <= 60);
    assert.ok(run(undefined) > 250, 'without bounds the hot key piles onto its owner');
  });

  it('bounded loads: capacity follows weight', () => {
    const endpoints = makeEndpoints([1, 3]);
    const plain = build(endpoints);
    const bounded = build(endpoints, 100);
    let key = 0;
    while (plain.pick(makeCtx(keyHash(key)), acceptAll)!.index !== 1) key++;
    const hash = keyHash(key);
    // T = 3, W = 4: heavy capacity ceil(4 × 3 / 4) = 3, light ceil(4 × 1 / 4) = 1.
    endpoints[0]!.inFlight = 1;
    endpoints[1]!.inFlight = 2;
    assert.equal(bounded.pick(makeCtx(hash), acceptAll), endpoints[1]);
    endpoints[0]!.inFlight = 0;
    endpoints[1]!.inFlight = 3;
    assert.equal(bounded.pick(makeCtx(hash), acceptAll), endpoints[0]);
  });

  it('rejects a balance factor below 100', () => {
    assert.throws(() => build(makeEndpoints(3), 99), /hashBalanceFactor must be a number >= 100/);
    assert.throws(() => build(makeEndpoints(3), Number.NaN), /hashBalanceFactor/);
    assert.doesNotThrow(() => build(makeEndpoints(3), 100));
  });
}
