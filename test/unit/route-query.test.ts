import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeFormComponent, parseQuery } from '../../src/route/index.ts';

function entries(query: string): [string, string][] {
  return [...parseQuery(query)];
}

describe('parseQuery', () => {
  test('a=1&b=&c: values, empty value, bare key', () => {
    const params = parseQuery('a=1&b=&c');
    assert.deepEqual([...params], [['a', '1'], ['b', ''], ['c', '']]);
    assert.equal(params.has('b'), true);
    assert.equal(params.has('c'), true);
    assert.equal(params.get('d'), undefined);
  });

  test('empty query and empty pairs', () => {
    assert.deepEqual(entries(''), []);
    assert.deepEqual(entries('&'), []);
    assert.deepEqual(entries('a=1&&b=2&'), [['a', '1'], ['b', '2']]);
  });

  test('only the first = splits key from value', () => {
    assert.deepEqual(entries('a==b=c'), [['a', '=b=c']]);
    assert.deepEqual(entries('=x'), [['', 'x']]);
  });

  test('first value of a repeated key wins', () => {
    assert.deepEqual(entries('a=1&a=2&b=3'), [['a', '1'], ['b', '3']]);
    assert.deepEqual(entries('a&a=2'), [['a', '']]);
  });

  test('+ is a space and %XX is decoded as UTF-8, in keys and values', () => {
    assert.deepEqual(entries('q=a+b%20c&k%C3%A9y=%E2%9C%93'), [['q', 'a b c'], ['kéy', '✓']]);
    assert.deepEqual(entries('p=%2B'), [['p', '+']]);
    assert.deepEqual(entries('p=%26&x=1'), [['p', '&'], ['x', '1']]);
  });

  test('malformed percent sequences are kept literally, never throw', () => {
    assert.deepEqual(entries('a=%&b=%z1&c=%4&d=100%'), [['a', '%'], ['b', '%z1'], ['c', '%4'], ['d', '100%']]);
  });

  test('invalid UTF-8 becomes U+FFFD', () => {
    assert.deepEqual(entries('a=%C3%28'), [['a', '\uFFFD(']]);
    assert.deepEqual(entries('a=%FF'), [['a', '\uFFFD']]);
  });

  test('agrees with URLSearchParams on the first value of each key', () => {
    const samples = ['a=1&b=&c', 'x=%zz&y=%C3%28&+z+=1', 'a=%E2%82%AC+%41&&a=2', '%EF%BB%BFbom=1', 'k=v=w&=&=e'];
    for (const sample of samples) {
      const expected = new Map<string, string>();
      for (const [k, v] of new URLSearchParams(sample)) if (!expected.has(k)) expected.set(k, v);
      assert.deepEqual([...parseQuery(sample)], [...expected], sample);
    }
  });

  test('a long query of bare keys parses in linear time', () => {
    const query = 'a&'.repeat(200_000);
    const start = performance.now();
    assert.equal(parseQuery(query).size, 1);
    assert.ok(performance.now() - start < 1000, 'parsing took too long');
  });
});

describe('decodeFormComponent', () => {
  test('returns plain text unchanged and decodes a sub-range', () => {
    assert.equal(decodeFormComponent('plain'), 'plain');
    assert.equal(decodeFormComponent('xx%41+yy', 2, 6), 'A ');
  });
});
