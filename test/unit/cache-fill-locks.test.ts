/**
 * The process-wide fill locks (src/cache/fill-locks.ts): one holder per key,
 * a release wakes the waiters of another view of the same buffer, an expired
 * lock is taken over, and a full probe window means no lock (fill alone).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FillLocks } from '../../src/cache/fill-locks.ts';

test('one holder per key; other keys are free; a release lets the next claim it', () => {
  const locks = new FillLocks();
  const other = new FillLocks(locks.buffer); // another thread's view of the same memory
  const ticket = locks.acquire('http://a/x', 5000);
  assert.ok(typeof ticket === 'object');
  assert.equal(other.acquire('http://a/x', 5000), 'busy');
  assert.ok(typeof other.acquire('http://a/y', 5000) === 'object', 'another key is free');
  locks.release(ticket);
  assert.ok(typeof other.acquire('http://a/x', 5000) === 'object');
});

test('a release wakes a waiter at once; a waiter without a release returns at its timeout', async () => {
  const locks = new FillLocks();
  const other = new FillLocks(locks.buffer);
  const ticket = locks.acquire('k', 60_000);
  assert.ok(typeof ticket === 'object');
  const started = Date.now();
  const waiting = other.released('k', 60_000);
  setTimeout(() => locks.release(ticket), 20);
  await waiting;
  assert.ok(Date.now() - started < 30_000, 'woken by the release, not by the 60 s timeout');
  const held = locks.acquire('k2', 5000);
  assert.ok(typeof held === 'object');
  const t0 = Date.now();
  await other.released('k2', 50);
  assert.ok(Date.now() - t0 >= 40, 'waited for its timeout while the lock was held');
  await other.released('never-locked', 5000); // resolves at once
});

test('an expired lock (its thread died) is taken over; the old holder\'s late release changes nothing', () => {
  let now = 1_000_000_000_000;
  const locks = new FillLocks(undefined, () => now);
  const old = locks.acquire('k', 1000);
  assert.ok(typeof old === 'object');
  now += 3000;
  const taken = locks.acquire('k', 1000);
  assert.ok(typeof taken === 'object', 'past its deadline, anyone may take it');
  locks.release(old); // stale: must not free the new holder's lock
  assert.equal(locks.acquire('k', 1000), 'busy');
  locks.release(taken);
  assert.ok(typeof locks.acquire('k', 1000) === 'object');
});

test('a probe window full of other keys\' locks gives no lock ("none"), never a wrong "busy"', () => {
  const locks = new FillLocks();
  const held = new Set<string>();
  let none = 0;
  for (let i = 0; i < 20_000 && none === 0; i++) {
    const key = `k${i}`;
    const result = locks.acquire(key, 60_000);
    if (result === 'none') none++;
    else {
      assert.notEqual(result, 'busy', `${key} was never locked`);
      held.add(key);
    }
  }
  assert.equal(none, 1, 'the table filled up and said so');
  for (const key of held) assert.equal(locks.acquire(key, 60_000), 'busy');
});
