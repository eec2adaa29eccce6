import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InFlightTable } from '../../src/pool/in-flight.ts';

test('each data plane counts in its own row; totals span every row', () => {
  const table = new InFlightTable(3, 4);
  const [a, b, c] = [table.row(0), table.row(1), table.row(2)];
  a.started(1);
  a.started(1);
  b.started(1);
  c.started(2);
  assert.deepEqual([a.own(1), b.own(1), c.own(1)], [2, 1, 0]);
  assert.equal(table.total(1), 3);
  assert.equal(b.total(1), 3, 'every row reads the same total');
  assert.equal(table.total(2), 1);
  assert.equal(table.total(0), 0);
  assert.equal(a.ended(1), 1, 'ended returns the plane\'s own remaining count');
  assert.equal(table.total(1), 2);
});

test('growing keeps every plane\'s counts and rows keep working across the move', () => {
  const table = new InFlightTable(2, 2);
  const [a, b] = [table.row(0), table.row(1)];
  a.started(0);
  b.started(1);
  b.started(1);
  table.reserve(5);
  assert.equal(table.capacity, 8, 'doubles until the slots fit');
  assert.deepEqual([a.own(0), b.own(1), table.total(0), table.total(1)], [1, 2, 1, 2]);
  a.started(7);
  b.started(7);
  assert.equal(table.total(7), 2);
  assert.equal(b.ended(1), 1);
  table.reserve(3);
  assert.equal(table.capacity, 8, 'no shrink, no copy when it fits');
});

test('rows are checked at the boundary', () => {
  const table = new InFlightTable(2);
  assert.throws(() => table.row(2), /plane must be an integer in \[0, 1\], got 2/);
  assert.throws(() => new InFlightTable(0), /planes must be an integer >= 1, got 0/);
});
