/**
 * One thread of test/unit/cache-shared-store-threads.test.ts: puts, looks
 * up, updates and deletes random keys in a shared store it was sent, for a
 * while, and checks every hit. A body carries the SHA-256 of its key and the
 * rest of its bytes, and the stored fields carry the same digest, so a torn
 * body, a body of another key or metadata of another record is caught.
 */
import { createHash, randomBytes } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { SharedStore, type SharedStoreBuffers } from '../../src/cache/shared-store.ts';
import type { StoredVariant } from '../../src/cache/store.ts';
import { mulberry32 } from './prng.ts';

export interface StoreWorkerData {
  readonly buffers: SharedStoreBuffers;
  readonly seed: number;
  readonly keys: number;
  readonly durationMs: number;
  /** Pause 1 ms before one copy in `delayEvery` out of shared memory (as a preemption would), so that writers reuse bytes meanwhile. */
  readonly delayEvery: number;
}

export interface StoreWorkerResult {
  readonly puts: number;
  readonly hits: number;
  readonly misses: number;
  readonly updates: number;
  readonly failures: readonly string[];
}

const data = workerData as StoreWorkerData;
if (data.delayEvery > 0) {
  const copy = Buffer.prototype.copy;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  let copies = 0;
  Buffer.prototype.copy = function (this: Buffer, target: Uint8Array, ...rest: number[]): number {
    if (this.buffer instanceof SharedArrayBuffer && !(target.buffer instanceof SharedArrayBuffer) && ++copies % data.delayEvery === 0) Atomics.wait(pause, 0, 0, 1);
    return copy.call(this, target, ...rest);
  } as typeof Buffer.prototype.copy;
}

const digest = (key: string, rest: Buffer): Buffer => createHash('sha256').update(key).update(rest).digest();

function bodyFor(key: string, random: () => number): Buffer {
  const rest = randomBytes(100 + Math.floor(random() * 3000));
  return Buffer.concat([digest(key, rest), rest]);
}

/** Why `variant` is not what `key` stored, or undefined when it is. */
function check(key: string, variant: StoredVariant): string | undefined {
  const body = variant.body;
  if (variant.primaryKey !== key) return `asked ${key}, got a variant of ${variant.primaryKey}`;
  if (body.length < 32) return `${key}: a ${body.length}-byte body`;
  const expected = digest(key, body.subarray(32));
  if (!expected.equals(body.subarray(0, 32))) return `${key}: a body whose digest does not match (${body.length} bytes)`;
  if (variant.response.fields['x-digest']?.[0] !== expected.toString('hex')) return `${key}: fields of another record (${variant.response.fields['x-digest']?.[0]})`;
  return undefined;
}

const store = new SharedStore(data.buffers);
const random = mulberry32(data.seed);
let puts = 0;
let hits = 0;
let misses = 0;
let updates = 0;
const failures: string[] = [];
const until = performance.now() + data.durationMs;
while (performance.now() < until && failures.length < 10) {
  const key = `https://test/${Math.floor(random() * data.keys)}`;
  const r = random();
  if (r < 0.35) {
    const body = bodyFor(key, random);
    store.put(key, { vary: [], requestFields: {}, response: { status: 200, fields: { 'x-digest': [body.subarray(0, 32).toString('hex')] }, requestTime: Date.now(), responseTime: Date.now() }, body });
    puts++;
    continue;
  }
  const got = store.lookup(key, {});
  if (got.kind !== 'hit') {
    misses++;
    continue;
  }
  hits++;
  const failure = check(key, got.variant);
  if (failure !== undefined) failures.push(failure);
  if (r > 0.97) {
    // A 304 freshening it: new fields, the same digest.
    const fields = { ...got.variant.response.fields, date: [new Date().toUTCString()] };
    if (store.update(got.variant, { ...got.variant.response, fields, responseTime: Date.now() })) updates++;
  } else if (r > 0.95) {
    store.delete(got.variant);
  }
}
parentPort!.postMessage({ puts, hits, misses, updates, failures } satisfies StoreWorkerResult);
