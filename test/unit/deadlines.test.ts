import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Deadlines, SWEEP_MS, type Expiring } from '../../src/runtime/deadlines.ts';

function member(): Expiring & { firedAt: number[] } {
  const m = {
    deadline: 0,
    firedAt: [] as number[],
    onDeadline(): void {
      m.firedAt.push(performance.now());
    },
  };
  return m;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('a deadline fires once, never early, within one sweep of its time', async () => {
  const d = new Deadlines();
  const m = member();
  d.add(m);
  const armedAt = performance.now();
  m.deadline = d.at(60);
  await sleep(60 + 3 * SWEEP_MS);
  d.delete(m);
  assert.equal(m.firedAt.length, 1);
  const after = m.firedAt[0]! - armedAt;
  assert.ok(after >= 60, `fired after ${after} ms`);
  assert.equal(m.deadline, 0, 'disarmed before the callback');
});

test('a disarmed or re-armed deadline does not fire at the old time', async () => {
  const d = new Deadlines();
  const off = member();
  const moved = member();
  d.add(off);
  d.add(moved);
  off.deadline = d.at(30);
  moved.deadline = d.at(30);
  off.deadline = 0;
  moved.deadline = d.at(10_000);
  await sleep(30 + 3 * SWEEP_MS);
  d.delete(off);
  d.delete(moved);
  assert.deepEqual([off.firedAt.length, moved.firedAt.length], [0, 0]);
});

test('members can leave during a sweep and the sweep stops with the last one', async () => {
  const d = new Deadlines();
  const a = member();
  const b = member();
  a.onDeadline = () => {
    d.delete(a);
    d.delete(b);
  };
  d.add(a);
  d.add(b);
  a.deadline = d.at(0);
  b.deadline = d.at(0);
  await sleep(3 * SWEEP_MS);
  assert.equal(d.size, 0);
  assert.equal(b.firedAt.length, 0, 'b was removed before its turn');
});
