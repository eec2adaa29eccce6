/**
 * The shared response store from real threads: three worker threads put,
 * look up, update and delete random keys in one small store (64 KiB: it
 * evicts all the time), and check that every hit is a body and fields that
 * its key stored, whole. Copies out of shared memory are sometimes delayed
 * by 1 ms (shared-store-worker.ts), so that writers reuse the bytes being
 * read: a reader that did not check the record's generation after copying
 * would return them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { SharedStore } from '../../src/cache/shared-store.ts';
import type { StoreWorkerData, StoreWorkerResult } from '../helpers/shared-store-worker.ts';

function run(data: StoreWorkerData): Promise<StoreWorkerResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('../helpers/shared-store-worker.ts', import.meta.url), { workerData: data });
    worker.once('message', (result: StoreWorkerResult) => resolve(result));
    worker.once('error', reject);
    worker.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`worker exited with ${code}`))));
  });
}

test('three threads share one store under constant eviction: every hit is whole and of its key', async () => {
  const store = new SharedStore({ maxBytes: 64 * 1024, maxObjectSize: 4096 });
  const results = await Promise.all([1, 2, 3].map((seed) => run({ buffers: store.buffers, seed, keys: 60, durationMs: 1500, delayEvery: 4 })));
  const failures = results.flatMap((r) => r.failures);
  assert.deepEqual(failures, []);
  const total = (name: keyof Omit<StoreWorkerResult, 'failures'>): number => results.reduce((sum, r) => sum + r[name], 0);
  assert.ok(total('hits') >= 300, `hits: ${total('hits')}`);
  assert.ok(total('updates') >= 5, `updates: ${total('updates')}`);
  const { evictions, stores } = store.counters;
  assert.equal(stores, total('puts'), 'every put was stored (an update rewrites a record: not a store)');
  assert.ok(evictions >= 300, `evictions: ${evictions}`);
  // The store is consistent afterwards: its bytes and entries are those of its variants, within the bound.
  let bytes = 0;
  let entries = 0;
  for (let k = 0; k < 60; k++) for (const v of store.variants(`https://test/${k}`)) (bytes += v.size), entries++;
  assert.equal(store.size, bytes);
  assert.equal(store.count, entries);
  assert.ok(store.size <= store.maxBytes);
});
