import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createMaglev, MAGLEV_TABLE_SIZE } from '../../src/balancer/maglev.ts';
import { acceptAll, makeCtx, makeEndpoints, makeOptions } from './balancer-fixtures.ts';
import { consistentHashingSuite } from './balancer-hashing-suite.ts';

// Maglev trades a little stability for balance: on removal a few keys of
// surviving endpoints move too (measured ~0.2-0.3% of keys with 10 endpoints).
consistentHashingSuite(createMaglev, { survivorMoveLimit: 0.01 });

it('indexes the table by hash modulo 65537', () => {
  assert.equal(MAGLEV_TABLE_SIZE, 65537);
  const b = createMaglev(makeEndpoints(7), makeOptions());
  for (const h of [0, 1, 12345, 65536, 4_000_000_000]) {
    assert.equal(b.pick(makeCtx(h), acceptAll), b.pick(makeCtx(h + MAGLEV_TABLE_SIZE), acceptAll));
  }
});

it('fills the table in proportion to weight, even for extreme weights', () => {
  const endpoints = makeEndpoints([1, 100]);
  const b = createMaglev(endpoints, makeOptions());
  let light = 0;
  for (let slot = 0; slot < MAGLEV_TABLE_SIZE; slot++) if (b.pick(makeCtx(slot), acceptAll)!.index === 0) light++;
  const want = MAGLEV_TABLE_SIZE / 101;
  assert.ok(Math.abs(light - want) < 0.05 * want, `light endpoint holds ${light} slots, want ~${Math.round(want)}`);
});
