import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import zlib from 'node:zlib';
import { compressFilter } from '../../src/compress/filter.ts';
import { CompressGuard, eventLoopLoad } from '../../src/compress/guard.ts';
import type { FilterRequest, FilterResponse } from '../../src/filter/filter.ts';

/** A guard over an injected load and clock. */
function guarded() {
  const state = { load: 0, now: 0, samples: 0 };
  const guard = new CompressGuard({ sample: () => (state.samples++, state.load), now: () => state.now, intervalMs: 500, high: 0.9, low: 0.6 });
  return { state, guard };
}

describe('CPU guard', () => {
  it('steps down one level per sample under load, full → reduced → off, and counts each step', () => {
    const { state, guard } = guarded();
    assert.equal(guard.level(), 'full');
    state.load = 0.95;
    state.now = 499;
    assert.equal(guard.level(), 'full', 'not sampled before the interval');
    assert.equal(state.samples, 0);
    state.now = 500;
    assert.equal(guard.level(), 'reduced');
    assert.equal(guard.level(), 'reduced', 'one sample per interval, however many responses');
    state.now = 1000;
    assert.equal(guard.level(), 'off');
    state.now = 1500;
    assert.equal(guard.level(), 'off', 'off is the floor');
    assert.equal(guard.stepsDown, 2);
    assert.equal(state.samples, 3);
  });

  it('steps back up only at or below low (hysteresis)', () => {
    const { state, guard } = guarded();
    state.load = 1;
    for (const at of [500, 1000]) (state.now = at), guard.level();
    assert.equal(guard.level(), 'off');
    state.load = 0.7;
    state.now = 1500;
    assert.equal(guard.level(), 'off', 'between low and high: stays');
    state.load = 0.6;
    state.now = 2000;
    assert.equal(guard.level(), 'reduced');
    state.now = 2500;
    assert.equal(guard.level(), 'full');
    state.now = 3000;
    assert.equal(guard.level(), 'full');
    assert.deepEqual([guard.stepsDown, guard.stepsUp], [2, 2]);
  });

  it('refuses thresholds that cannot hysterese', () => {
    assert.throws(() => new CompressGuard({ sample: () => 0, now: () => 0, intervalMs: 500, high: 0.5, low: 0.5 }), /low \(0\.5\) must be below high/);
  });

  it('the default signal reads this thread\'s event-loop utilization: a busy loop reads high', async () => {
    const load = eventLoopLoad();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const until = performance.now() + 60;
    while (performance.now() < until);
    const busy = load();
    assert.ok(busy > 0.5 && busy <= 1, `busy loop: ${busy}`);
  });
});

describe('the compress filter under the guard', () => {
  /** Minimal request/response views of the filter contract, for one GET of a 64 KiB JSON body. */
  function exchange() {
    const requestFields = new Map([['accept-encoding', 'gzip']]);
    const request = { method: 'GET', header: (n: string) => requestFields.get(n), headerValues: (n: string) => (requestFields.has(n) ? [requestFields.get(n)!] : []), setHeader: (n: string, v: string) => requestFields.set(n, v) };
    const fields = new Map([['content-type', 'application/json'], ['content-length', String(65536)]]);
    const response = {
      status: 200,
      header: (n: string) => fields.get(n),
      headerValues: (n: string) => (fields.has(n) ? [fields.get(n)!] : []),
      setHeader: (n: string, v: string) => fields.set(n, v),
      addHeader: (n: string, v: string) => fields.set(n, fields.has(n) ? `${fields.get(n)}, ${v}` : v),
      removeHeader: (n: string) => fields.delete(n),
    };
    return { request: request as unknown as FilterRequest, response: response as unknown as FilterResponse, fields };
  }
  const body = Buffer.from(JSON.stringify(Array.from({ length: 3000 }, (_, i) => ({ i, v: `value ${i % 97}` })))).subarray(0, 65536);

  it('full: the configured level; reduced: the fastest level; off: identity, counted under reason="guard"', () => {
    const { state, guard } = guarded();
    const counters = { coded: { zstd: 0, br: 0, gzip: 0 }, decoded: { zstd: 0, br: 0, gzip: 0 }, skipped: { status: 0, method: 0, range: 0, encoded: 0, 'no-transform': 0, type: 0, size: 0, client: 0, guard: 0, deferred: 0 }, bytesIn: 0, bytesOut: 0, reused: 0, backgroundFailed: 0 };
    const filter = compressFilter({ codings: ['gzip'], levels: { zstd: 3, br: 4, gzip: 9 }, minSize: 1024, types: ['application/json'] }, { guard, counters });
    const run = (): Buffer | undefined => {
      const { request, response, fields } = exchange();
      filter.onResponse!(response, request);
      const transform = filter.transformBody!(response, request);
      assert.equal(fields.get('vary'), 'Accept-Encoding');
      if (transform === undefined) {
        assert.equal(fields.get('content-encoding'), undefined);
        return undefined;
      }
      assert.equal(fields.get('content-encoding'), 'gzip');
      return Buffer.concat([transform.transform(body) as Buffer, transform.flush!() as Buffer]);
    };
    assert.ok(run()!.equals(zlib.gzipSync(body, { level: 9 })), 'full: level 9');
    state.load = 1;
    state.now = 500;
    assert.ok(run()!.equals(zlib.gzipSync(body, { level: 1 })), 'reduced: level 1');
    state.now = 1000;
    assert.equal(run(), undefined, 'off');
    assert.deepEqual([counters.coded.gzip, counters.skipped.guard, guard.stepsDown], [2, 1, 2]);
    assert.equal(counters.bytesIn, body.length * 2);
  });
});
