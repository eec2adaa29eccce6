import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BYTE_SIZE_PATTERN, checkByteCount, formatByteSize, MAX_BYTES, parseByteSize } from '../../src/config/byte-size.ts';
import type { Parsed } from '../../src/config/parsed.ts';

const EXPECTED = 'expected a size such as 65536 (bytes), "64KiB", "10MiB" or "1GiB"';
const DECIMAL = 'write KiB, MiB or GiB (binary units, 1 KiB = 1024 bytes)';
const FRACTION = 'sizes are whole numbers; use a smaller unit instead of a fraction (1536KiB, not 1.5MiB)';
const NEGATIVE = 'a size cannot be negative';
const TOO_BIG = 'size must be at most 9007199254740991 bytes (2^53 - 1, about 8 PiB)';

function failure(result: Parsed<number>): string {
  assert.equal(result.ok, false, `expected a failure, got ${JSON.stringify(result)}`);
  return result.ok ? '' : result.message;
}

describe('parseByteSize', () => {
  it('reads digits alone as bytes', () => {
    assert.deepEqual(parseByteSize('0'), { ok: true, value: 0 });
    assert.deepEqual(parseByteSize('32768'), { ok: true, value: 32_768 });
    assert.deepEqual(parseByteSize('007'), { ok: true, value: 7 });
  });

  it('reads every unit as binary (k = 1024, as nginx), in any case', () => {
    const cases: [string, number][] = [
      ['512B', 512], ['512b', 512],
      ['32KiB', 32 * 1024], ['32kib', 32 * 1024], ['32KIB', 32 * 1024], ['32K', 32 * 1024], ['32k', 32 * 1024],
      ['10MiB', 10 * 1024 ** 2], ['10mib', 10 * 1024 ** 2], ['10M', 10 * 1024 ** 2], ['10m', 10 * 1024 ** 2],
      ['2GiB', 2 * 1024 ** 3], ['2gib', 2 * 1024 ** 3], ['2G', 2 * 1024 ** 3], ['2g', 2 * 1024 ** 3],
      ['0KiB', 0],
    ];
    for (const [text, bytes] of cases) assert.deepEqual(parseByteSize(text), { ok: true, value: bytes }, text);
  });

  it('allows one space between the number and the unit', () => {
    assert.deepEqual(parseByteSize('10 MiB'), { ok: true, value: 10 * 1024 ** 2 });
    assert.deepEqual(parseByteSize('1 k'), { ok: true, value: 1024 });
    for (const text of ['10  MiB', ' 10MiB', '10MiB ', '10 ', '10\tMiB']) assert.equal(failure(parseByteSize(text)), EXPECTED, JSON.stringify(text));
  });

  it('rejects decimal units, naming the binary ones', () => {
    for (const text of ['1KB', '1kb', '1Kb', '1MB', '1mb', '1GB', '1 GB', '1.5MB', '-1KB']) assert.equal(failure(parseByteSize(text)), DECIMAL, text);
  });

  it('rejects unknown units, listing the known ones', () => {
    for (const text of ['1TiB', '1T', '1Ki', '1bytes', '1e', '1KiBs']) {
      assert.equal(failure(parseByteSize(text)), `${EXPECTED}; the units are B, KiB (or K), MiB (M) and GiB (G)`, text);
    }
  });

  it('rejects fractions, negatives and text that is not a size', () => {
    for (const text of ['1.5MiB', '0.5', '1.0KiB', '2.25 G']) assert.equal(failure(parseByteSize(text)), FRACTION, text);
    for (const text of ['-1', '-1KiB', '-0.5M']) assert.equal(failure(parseByteSize(text)), NEGATIVE, text);
    for (const text of ['', 'KiB', 'big', '1,024', '+5', '1.KiB', '.5M', '0x10', '1_000', '1e3']) assert.equal(failure(parseByteSize(text)), EXPECTED, JSON.stringify(text));
  });

  it('accepts up to 2^53 - 1 bytes and rejects more', () => {
    assert.deepEqual(parseByteSize(String(MAX_BYTES)), { ok: true, value: MAX_BYTES });
    assert.deepEqual(parseByteSize('8388607GiB'), { ok: true, value: 8_388_607 * 1024 ** 3 });
    assert.equal(failure(parseByteSize('9007199254740992')), TOO_BIG);
    assert.equal(failure(parseByteSize('8388608GiB')), TOO_BIG);
    assert.equal(failure(parseByteSize('99999999999999999999999999K')), TOO_BIG);
  });

  it('never quotes the input in a message', () => {
    for (const text of ['12345.5', '12345KB', '-12345', '12345TiB', '123456789012345678901234']) assert.doesNotMatch(failure(parseByteSize(text)), /12345/, text);
  });

  it('agrees with the JSON Schema pattern on what is well-formed', () => {
    const pattern = new RegExp(`^(${BYTE_SIZE_PATTERN})$`);
    for (const text of ['0', '32768', '32KiB', '32kib', '10 MiB', '1g', '512B']) assert.ok(pattern.test(text), text);
    for (const text of ['1KB', '1.5MiB', '-1', '10  MiB', 'KiB', '1TiB']) assert.ok(!pattern.test(text), text);
  });
});

describe('checkByteCount', () => {
  it('accepts whole, non-negative, safe byte counts', () => {
    assert.deepEqual(checkByteCount(0), { ok: true, value: 0 });
    assert.deepEqual(checkByteCount(4096), { ok: true, value: 4096 });
    assert.deepEqual(checkByteCount(MAX_BYTES), { ok: true, value: MAX_BYTES });
  });

  it('says which way a number is wrong', () => {
    assert.equal(failure(checkByteCount(-1)), NEGATIVE);
    assert.equal(failure(checkByteCount(-0.5)), NEGATIVE);
    assert.equal(failure(checkByteCount(1.5)), 'sizes are whole numbers of bytes');
    assert.equal(failure(checkByteCount(MAX_BYTES + 1)), TOO_BIG);
    assert.equal(failure(checkByteCount(2 ** 64)), TOO_BIG);
    assert.equal(failure(checkByteCount(Number.POSITIVE_INFINITY)), EXPECTED);
    assert.equal(failure(checkByteCount(Number.NaN)), EXPECTED);
  });
});

describe('formatByteSize', () => {
  it('uses the largest unit that divides the size exactly', () => {
    assert.equal(formatByteSize(0), '0B');
    assert.equal(formatByteSize(256), '256B');
    assert.equal(formatByteSize(1000), '1000B');
    assert.equal(formatByteSize(1024), '1KiB');
    assert.equal(formatByteSize(1536), '1536B');
    assert.equal(formatByteSize(32_768), '32KiB');
    assert.equal(formatByteSize(1536 * 1024), '1536KiB');
    assert.equal(formatByteSize(1024 ** 2), '1MiB');
    assert.equal(formatByteSize(3 * 1024 ** 3), '3GiB');
  });

  it('round-trips through parseByteSize', () => {
    for (const bytes of [0, 1, 256, 1023, 1024, 1536, 32_768, 10 * 1024 ** 2, 5 * 1024 ** 3, MAX_BYTES]) {
      assert.deepEqual(parseByteSize(formatByteSize(bytes)), { ok: true, value: bytes }, String(bytes));
    }
  });
});
