import { it } from 'node:test';
import assert from 'node:assert/strict';
import {
  balancerNames,
  BUILTIN_BALANCERS,
  createBalancer,
  DEFAULT_BALANCER,
  hasBalancer,
  registerBalancer,
  UnknownBalancerError,
} from '../../src/balancer/index.ts';
import type { BalancerFactory } from '../../src/balancer/index.ts';
import { acceptAll, makeCtx, makeEndpoints, makeOptions } from './balancer-fixtures.ts';

it('lists the built-ins first, in order, and defaults to p2c', () => {
  assert.deepEqual(balancerNames().slice(0, BUILTIN_BALANCERS.length), [...BUILTIN_BALANCERS]);
  assert.equal(DEFAULT_BALANCER, 'p2c');
  assert.ok(hasBalancer('maglev'));
});

it('builds a working balancer by name', () => {
  const endpoints = makeEndpoints(3);
  for (const name of BUILTIN_BALANCERS) {
    const b = createBalancer(name, endpoints, makeOptions());
    assert.ok(endpoints.includes(b.pick(makeCtx(1), acceptAll) as (typeof endpoints)[number]), name);
  }
});

it('rejects an unknown name, listing the known ones', () => {
  assert.throws(
    () => createBalancer('round_robin', makeEndpoints(2), makeOptions()),
    (err: unknown) => {
      assert.ok(err instanceof UnknownBalancerError);
      assert.equal(err.code, 'USHER_UNKNOWN_BALANCER');
      assert.equal(err.balancer, 'round_robin');
      assert.match(err.message, /unknown balancer "round_robin"; known balancers: p2c, round-robin, least-connections, random, ewma, hash, maglev/);
      return true;
    },
  );
});

it('registers a custom algorithm', () => {
  const first: BalancerFactory = (endpoints) => ({
    pick(ctx, accept) {
      for (const e of endpoints) if (accept(e, ctx)) return e;
      return undefined;
    },
  });
  registerBalancer('test-first', first);
  assert.ok(balancerNames().includes('test-first'));
  const endpoints = makeEndpoints(3);
  const b = createBalancer('test-first', endpoints, makeOptions());
  assert.equal(b.pick(makeCtx(), (e) => e.index > 0), endpoints[1]);
});

it('refuses duplicate names, malformed names and non-functions', () => {
  const noop: BalancerFactory = () => ({ pick: () => undefined });
  assert.throws(() => registerBalancer('p2c', noop), /balancer "p2c" is already registered/);
  for (const bad of ['', 'P2C', 'my balancer', '1st', 'a'.repeat(65), 'x_y']) {
    assert.throws(() => registerBalancer(bad, noop), /balancer name must match/, JSON.stringify(bad));
  }
  assert.throws(() => registerBalancer('not-a-function', 42 as unknown as BalancerFactory), /factory must be a function/);
});
