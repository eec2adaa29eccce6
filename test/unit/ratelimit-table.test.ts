/**
 * The shared key table: keys get their own state, a second view of the same
 * buffer (another thread's) sees the same state, full probe windows evict
 * the oldest and count it, expired slots are reused without counting, the
 * memory is fixed by maxKeys; and the key parts (IPv6 /64 grouping).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gcra, gcraExpired } from '../../src/ratelimit/algorithms.ts';
import { clientKey, keyOf, parseKeyPart } from '../../src/ratelimit/key.ts';
import { LimiterTable, PROBE, type SlotAlgorithm } from '../../src/ratelimit/table.ts';
import type { FilterRequest } from '../../src/filter/filter.ts';

/** GCRA 1 per second, burst 0: a key is admitted once, then refused for a second. */
const onePerSecond: SlotAlgorithm = {
  step: (state, nowMs) => gcra(state, nowMs * 1000, { intervalUs: 1_000_000, burst: 0, maxDelayUs: 0 }),
  expired: (state, nowMs) => gcraExpired(state, nowMs * 1000),
};
const T0 = 1_700_000_000_000;

test('each key has its own state; another view of the same buffer decides on the same state', () => {
  const table = new LimiterTable(1000);
  const other = new LimiterTable(table.shared);
  assert.equal(table.decide(table.hashOf('a'), T0, onePerSecond).step.decision.allowed, true);
  assert.equal(table.decide(table.hashOf('b'), T0, onePerSecond).step.decision.allowed, true, 'b is not a');
  assert.deepEqual(other.hashOf('a'), table.hashOf('a'), 'the seed travels with the buffer');
  assert.equal(other.decide(other.hashOf('a'), T0 + 1, onePerSecond).step.decision.allowed, false, 'the other view sees a as used');
  assert.equal(other.reset(other.hashOf('a')), true);
  assert.equal(table.decide(table.hashOf('a'), T0 + 2, onePerSecond).step.decision.allowed, true, 'reset forgets the key');
  assert.equal(table.reset(table.hashOf('never')), false);
});

test('memory is fixed by maxKeys: 16 bytes per slot, slots the power of two at or above 4/3 of maxKeys', () => {
  const table = new LimiterTable(100_000);
  assert.equal(table.slots, 262_144);
  assert.ok(table.bytes < 4.3 * 1024 * 1024, `${table.bytes} bytes`);
  const big = new LimiterTable(1_000_000);
  assert.equal(big.slots, 2_097_152);
  assert.ok(big.bytes <= 33 * 1024 * 1024);
});

test('20k live keys through a 1000-key table: memory stays, live keys are evicted and counted, the newest keeps its state', () => {
  const table = new LimiterTable(1000); // 2048 slots
  const before = table.bytes;
  for (let i = 0; i < 20_000; i++) table.decide(table.hashOf(`k${i}`), T0 + i / 100, onePerSecond);
  assert.equal(table.bytes, before);
  assert.ok(table.evictions > 10_000, `evictions ${table.evictions}`);
  // The most recent key survived: it is refused within its second.
  assert.equal(table.decide(table.hashOf('k19999'), T0 + 201, onePerSecond).step.decision.allowed, false);
});

test('expired slots are reused without counting an eviction', () => {
  const table = new LimiterTable(1); // 64 slots
  // PROBE keys a round: a key's window of PROBE slots then always has room besides this round's other keys
  // (with more, a random seed can crowd one window with live keys, and that eviction would be correct).
  // 10 rounds put 160 keys through 64 slots: without reusing expired slots, evictions would be certain.
  for (let round = 0; round < 10; round++) {
    for (let i = 0; i < PROBE; i++) table.decide(table.hashOf(`r${round}-${i}`), T0 + round * 2000, onePerSecond);
  }
  assert.equal(table.evictions, 0, 'each round finds the previous round expired');
  assert.ok(table.liveKeys(T0 + 18_000, onePerSecond) <= PROBE);
});

test('a full table evicts for each newcomer; the slot with the oldest state goes first', () => {
  const table = new LimiterTable(1); // 64 slots
  // 64 keys whose state is older (admitted 500 ms earlier), then 200 newer ones: all live at T0.
  for (let i = 0; i < 64; i++) table.decide(table.hashOf(`old${i}`), T0 - 500, onePerSecond);
  for (let i = 0; i < 200; i++) table.decide(table.hashOf(`new${i}`), T0, onePerSecond);
  assert.ok(table.evictions >= 200 - 64, `evictions ${table.evictions}`);
  assert.equal(table.decide(table.hashOf('new199'), T0 + 1, onePerSecond).step.decision.allowed, false, 'the newest key has its own state');
  // reset() finds a key without taking a slot: none of the older keys is left.
  const oldLeft = Array.from({ length: 64 }, (_, i) => table.reset(table.hashOf(`old${i}`))).filter(Boolean).length;
  assert.equal(oldLeft, 0, 'every older key was evicted before a newer one');
  assert.ok(PROBE <= table.slots);
});

test('IPv6 clients are grouped by /64 (ipv6Prefix), IPv4 and IPv4-mapped addresses kept whole', () => {
  assert.equal(clientKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd', 64), '2001:db8:1:2:0:0:0:0/64');
  assert.equal(clientKey('2001:db8:1:2::1', 64), clientKey('2001:0db8:0001:0002:ffff::9', 64), 'one /64, one key');
  assert.notEqual(clientKey('2001:db8:1:2::1', 64), clientKey('2001:db8:1:3::1', 64));
  assert.equal(clientKey('2001:db8:1:2::1', 48), '2001:db8:1:0:0:0:0:0/48');
  assert.equal(clientKey('2001:db8:1:2ff::1', 56), '2001:db8:1:200:0:0:0:0/56');
  assert.equal(clientKey('fe80::1%eth0', 128), 'fe80:0:0:0:0:0:0:1');
  assert.equal(clientKey('::ffff:192.0.2.7', 64), '192.0.2.7');
  assert.equal(clientKey('192.0.2.7', 64), '192.0.2.7');
});

test('key parts: combined; an absent header or cookie makes the key empty', () => {
  const headers: Record<string, string> = { 'x-api-key': 'k1', cookie: 'a=1; session=s9' };
  const request = {
    clientIp: '10.0.0.1', method: 'GET', route: 'r0', host: 'Example.COM',
    header: (name: string) => headers[name],
    headerValues: (name: string) => (headers[name] === undefined ? [] : [headers[name]!]),
  } as unknown as FilterRequest;
  const parts = (...texts: string[]) => texts.map((text) => parseKeyPart(text)!);
  assert.equal(keyOf(parts('header:X-Api-Key', 'client-ip'), request, 64), 'k1\n10.0.0.1');
  assert.equal(keyOf(parts('cookie:session', 'method', 'route', 'host'), request, 64), 's9\nGET\nr0\nexample.com');
  assert.equal(keyOf(parts('client-ip', 'header:authorization'), request, 64), undefined);
  assert.equal(keyOf(parts('cookie:missing'), request, 64), undefined);
  assert.equal(parseKeyPart('header:'), undefined);
  assert.equal(parseKeyPart('ip'), undefined);
  assert.equal(parseKeyPart('header:bad name'), undefined);
});
