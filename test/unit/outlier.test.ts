import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OutlierDetector, newOutlierState } from '../../src/pool/health/outlier.ts';
import type { OutlierState } from '../../src/pool/health/outlier.ts';
import type { OutlierConfig } from '../../src/config/types.ts';

const SEC = 1000;
const CONFIG: OutlierConfig = {
  consecutiveFailures: 5,
  ejectionTimeMs: 30 * SEC,
  maxEjectionTimeMs: 300 * SEC,
  maxEjectionPercent: 50,
};

function detector(backends = 10, config: Partial<OutlierConfig> = {}): OutlierDetector {
  return new OutlierDetector({ ...CONFIG, ...config }, () => backends);
}

/** Fails `state` until the detector ejects it; returns the number of failures it took (-1 if never). */
function failUntilEjected(d: OutlierDetector, state: OutlierState, nowMs: number, limit = 100): number {
  for (let i = 1; i <= limit; i++) if (d.onFailure(state, nowMs)) return i;
  return -1;
}

describe('consecutive failures', () => {
  it('ejects after exactly N consecutive failures', () => {
    const d = detector();
    const s = newOutlierState();
    for (let i = 1; i < 5; i++) {
      assert.equal(d.onFailure(s, 0), false, `failure ${i}`);
      assert.equal(s.consecutiveFailures, i);
    }
    assert.equal(d.isEjected(s, 0), false);
    assert.equal(d.onFailure(s, 0), true);
    assert.equal(d.isEjected(s, 0), true);
    assert.equal(s.ejections, 1);
    assert.equal(s.consecutiveFailures, 0, 'the streak resets on ejection');
    assert.equal(d.ejectedCount, 1);
  });

  it('a success in between resets the streak', () => {
    const d = detector();
    const s = newOutlierState();
    for (let i = 0; i < 4; i++) d.onFailure(s, 0);
    d.onSuccess(s);
    assert.equal(s.consecutiveFailures, 0);
    for (let i = 0; i < 4; i++) assert.equal(d.onFailure(s, 0), false);
    assert.equal(d.onFailure(s, 0), true);
  });

  it('ignores failures while ejected', () => {
    const d = detector();
    const s = newOutlierState();
    failUntilEjected(d, s, 0);
    for (let i = 0; i < 20; i++) assert.equal(d.onFailure(s, 1000), false);
    assert.equal(s.consecutiveFailures, 0);
    assert.equal(d.onFailure(s, 30 * SEC - 1), false);
    assert.equal(d.ejectedCount, 1);
  });

  it('a failure after the ejection ended releases it first, then counts', () => {
    const d = detector();
    const s = newOutlierState();
    failUntilEjected(d, s, 0);
    // The pool missed release (say its timer fired early by another clock) but sends traffic.
    assert.equal(d.onFailure(s, 40 * SEC), false);
    assert.equal(d.ejectedCount, 0);
    assert.equal(s.ejectedUntil, 0);
    assert.equal(s.consecutiveFailures, 1);
    assert.equal(s.returnedAt, 30 * SEC);
    assert.equal(d.release(s, 40 * SEC), false, 'already released');
    assert.equal(failUntilEjected(d, s, 41 * SEC), 4);
    assert.equal(d.ejectedCount, 1);
    assert.equal(s.ejections, 2);
  });
});

describe('ejection length', () => {
  it('lasts 30 s, 60 s, 90 s ... capped at the maximum', () => {
    const d = detector();
    const s = newOutlierState();
    let now = 0;
    const lengths: number[] = [];
    for (let n = 1; n <= 13; n++) {
      assert.equal(failUntilEjected(d, s, now), 5);
      lengths.push((s.ejectedUntil - now) / SEC);
      now = s.ejectedUntil;
      assert.equal(d.release(s, now), true);
    }
    assert.deepEqual(lengths, [30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300, 300]);
    assert.equal(s.ejections, 10, 'the multiplier stops growing at the cap');
  });

  it('caps a maximum that is not a multiple of the base', () => {
    const d = detector(10, { ejectionTimeMs: 30 * SEC, maxEjectionTimeMs: 100 * SEC });
    const s = newOutlierState();
    let now = 0;
    const lengths: number[] = [];
    for (let n = 1; n <= 6; n++) {
      failUntilEjected(d, s, now);
      lengths.push((s.ejectedUntil - now) / SEC);
      now = s.ejectedUntil;
      d.release(s, now);
    }
    assert.deepEqual(lengths, [30, 60, 90, 100, 100, 100]);
  });

  it('is ejected until ejectedUntil, not at it', () => {
    const d = detector();
    const s = newOutlierState();
    failUntilEjected(d, s, 5000);
    assert.equal(s.ejectedUntil, 35 * SEC);
    assert.equal(d.isEjected(s, 35 * SEC - 1), true);
    assert.equal(d.isEjected(s, 35 * SEC), false);
  });
});

describe('release', () => {
  it('happens once, at or after the end of the ejection', () => {
    const d = detector();
    const s = newOutlierState();
    failUntilEjected(d, s, 0);
    assert.equal(d.release(s, 29_999), false);
    assert.equal(d.ejectedCount, 1);
    assert.equal(d.release(s, 31 * SEC), true);
    assert.equal(d.release(s, 31 * SEC), false);
    assert.equal(d.release(s, 100 * SEC), false);
    assert.equal(d.ejectedCount, 0);
    assert.equal(s.ejectedUntil, 0);
    assert.equal(s.ejections, 1, 'the multiplier is kept');
    assert.equal(s.returnedAt, 30 * SEC, 'forgiveness counts from the end of the ejection');
  });

  it('is false for a backend that was never ejected', () => {
    const d = detector();
    assert.equal(d.release(newOutlierState(), 1e9), false);
    assert.equal(d.ejectedCount, 0);
  });

  it('counts failures again after release', () => {
    const d = detector();
    const s = newOutlierState();
    failUntilEjected(d, s, 0);
    d.release(s, 30 * SEC);
    assert.equal(failUntilEjected(d, s, 31 * SEC), 5);
    assert.equal(s.ejectedUntil, 31 * SEC + 60 * SEC);
  });
});

describe('forgiveness', () => {
  /** Ejects `s` `times` times back to back (each right after the previous ends); returns the time of the last return. */
  function ejectRepeatedly(d: OutlierDetector, s: OutlierState, times: number): number {
    let now = 0;
    for (let i = 0; i < times; i++) {
      failUntilEjected(d, s, now);
      now = s.ejectedUntil;
      d.release(s, now);
    }
    return now;
  }

  it('drops the multiplier by one per full ejection time healthy', () => {
    const d = detector();
    const s = newOutlierState();
    const back = ejectRepeatedly(d, s, 3); // 30 + 60 + 90 s
    assert.equal(s.ejections, 3);
    // 2 full intervals (and a bit) healthy: 3 → 1, so the next ejection is the 2nd: 60 s.
    const now = back + 2 * 30 * SEC + 29 * SEC;
    failUntilEjected(d, s, now);
    assert.equal(s.ejections, 2);
    assert.equal(s.ejectedUntil - now, 60 * SEC);
  });

  it('does not drop it below zero', () => {
    const d = detector();
    const s = newOutlierState();
    const back = ejectRepeatedly(d, s, 2);
    const now = back + 3600 * SEC;
    failUntilEjected(d, s, now);
    assert.equal(s.ejections, 1);
    assert.equal(s.ejectedUntil - now, 30 * SEC);
  });

  it('gives nothing for less than one full interval', () => {
    const d = detector();
    const s = newOutlierState();
    const back = ejectRepeatedly(d, s, 2);
    const now = back + 30 * SEC - 1;
    failUntilEjected(d, s, now);
    assert.equal(s.ejections, 3);
    assert.equal(s.ejectedUntil - now, 90 * SEC);
  });
});

describe('max ejection percent', () => {
  /** Ejects as many of `backends` as the detector allows. */
  function ejectAll(backends: number, percent: number): { d: OutlierDetector; states: OutlierState[]; ejected: number } {
    const d = detector(backends, { maxEjectionPercent: percent });
    const states = Array.from({ length: backends }, newOutlierState);
    let ejected = 0;
    for (const s of states) if (failUntilEjected(d, s, 0, 10) > 0) ejected++;
    assert.equal(d.ejectedCount, ejected);
    return { d, states, ejected };
  }

  it('caps at floor(n × p / 100), at least one', () => {
    const cases: [backends: number, percent: number, max: number][] = [
      [10, 50, 5],
      [10, 10, 1],
      [10, 100, 10],
      [10, 25, 2],
      [3, 50, 1],
      [2, 50, 1],
      [1, 50, 1],
      [1, 10, 1],
      [3, 10, 1],
      [3, 100, 3],
    ];
    for (const [backends, percent, max] of cases) {
      assert.equal(ejectAll(backends, percent).ejected, max, `${backends} backends at ${percent}%`);
    }
  });

  it('never ejects with a cap of 0%', () => {
    assert.equal(ejectAll(10, 0).ejected, 0);
    assert.equal(ejectAll(1, 0).ejected, 0);
  });

  it('keeps a refused streak so the backend is ejected once room frees up', () => {
    const { d, states } = ejectAll(2, 50);
    const [first, second] = states as [OutlierState, OutlierState];
    assert.equal(d.isEjected(first, 0), true);
    assert.equal(d.isEjected(second, 0), false);
    assert.ok(second.consecutiveFailures >= 5);
    assert.equal(d.release(first, 30 * SEC), true);
    assert.equal(d.onFailure(second, 30 * SEC), true, 'ejected on its next failure');
    assert.equal(d.ejectedCount, 1);
  });

  it('reads the backend count at each ejection', () => {
    let backends = 2;
    const d = new OutlierDetector(CONFIG, () => backends);
    const a = newOutlierState();
    const b = newOutlierState();
    failUntilEjected(d, a, 0);
    assert.equal(failUntilEjected(d, b, 0, 10), -1);
    backends = 4;
    assert.equal(d.onFailure(b, 0), true);
    assert.equal(d.ejectedCount, 2);
  });
});

describe('forget', () => {
  it('frees the slot of an ejected backend that leaves the pool', () => {
    const d = detector(2);
    const gone = newOutlierState();
    const other = newOutlierState();
    failUntilEjected(d, gone, 0);
    assert.equal(failUntilEjected(d, other, 0, 10), -1, 'cap reached');
    d.forget(gone);
    assert.equal(d.ejectedCount, 0);
    assert.equal(d.onFailure(other, 0), true);
  });

  it('is harmless twice, on a healthy backend, and after release', () => {
    const d = detector(10);
    const a = newOutlierState();
    const b = newOutlierState();
    failUntilEjected(d, a, 0);
    failUntilEjected(d, b, 0);
    assert.equal(d.ejectedCount, 2);
    d.forget(a);
    d.forget(a);
    assert.equal(d.ejectedCount, 1);
    d.forget(newOutlierState());
    assert.equal(d.ejectedCount, 1);
    d.release(b, 30 * SEC);
    d.forget(b);
    assert.equal(d.ejectedCount, 0);
    assert.deepEqual(a, newOutlierState());
    assert.deepEqual(b, newOutlierState());
  });

  it('frees an ejection that expired but was never released', () => {
    const d = detector(10);
    const s = newOutlierState();
    failUntilEjected(d, s, 0);
    d.forget(s);
    assert.equal(d.ejectedCount, 0);
    assert.equal(d.release(s, 60 * SEC), false);
    assert.equal(d.ejectedCount, 0);
  });
});
