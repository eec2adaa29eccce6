import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseCookies } from '../../src/route/index.ts';

function entries(header: string | string[] | undefined): [string, string][] {
  return [...parseCookies(header)];
}

describe('parseCookies', () => {
  test('a=1; b=2', () => {
    assert.deepEqual(entries('a=1; b=2'), [['a', '1'], ['b', '2']]);
  });

  test('no header, empty header', () => {
    assert.deepEqual(entries(undefined), []);
    assert.deepEqual(entries(''), []);
  });

  test('whitespace around names and values is trimmed; missing space after ; is fine', () => {
    assert.deepEqual(entries('  a = 1 ;b=2;\tc=3\t'), [['a', '1'], ['b', '2'], ['c', '3']]);
  });

  test('quoted values lose their quotes; a lone quote is kept', () => {
    assert.deepEqual(entries('a="x y"; b=""; c="; d=x"'), [['a', 'x y'], ['b', ''], ['c', '"'], ['d', 'x"']]);
  });

  test('empty value is present; pairs without = or without a name are ignored', () => {
    const cookies = parseCookies('a=; flag; =v; b=1');
    assert.deepEqual([...cookies], [['a', ''], ['b', '1']]);
    assert.equal(cookies.has('a'), true);
    assert.equal(cookies.has('flag'), false);
  });

  test('the value may contain =', () => {
    assert.deepEqual(entries('t=YWJj==; u=a=b'), [['t', 'YWJj=='], ['u', 'a=b']]);
  });

  test('values are not percent-decoded; names are case-sensitive', () => {
    const cookies = parseCookies('a=%41+b; A=2');
    assert.equal(cookies.get('a'), '%41+b');
    assert.equal(cookies.get('A'), '2');
  });

  test('first value of a repeated name wins, across array elements too', () => {
    assert.deepEqual(entries('s=1; s=2'), [['s', '1']]);
    assert.deepEqual(entries(['s=1; a=x', 's=2; b=y']), [['s', '1'], ['a', 'x'], ['b', 'y']]);
  });
});
