/**
 * The DNS source's rules on a fake clock and a scripted resolver, so
 * schedules of minutes are checked in milliseconds: TTLs clamped to 1-300 s
 * (D1), SRV priority groups and weights (D2), failures that keep the last
 * answer with a backoff (D3), NXDOMAIN/NODATA held for `hold` (D4), logs on
 * transitions only; and PoolDiscovery across reloads. The same behaviour over
 * real UDP, with a real usher, is in test/integration/discovery-dns.test.ts.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/index.ts';
import type { DnsDiscoveryConfig, PoolConfig } from '../../src/config/types.ts';
import { DnsSource, type DnsClock, type DnsResolver, type DnsResult } from '../../src/discovery/dns-source.ts';
import { PoolDiscovery } from '../../src/discovery/pool-discovery.ts';
import type { DiscoveredBackend } from '../../src/pool/pool-control.ts';
import { PoolControl } from '../../src/pool/pool-control.ts';

/** Timers on a clock that moves only when told. */
class FakeClock implements DnsClock {
  t = 1_700_000_000_000;
  #id = 0;
  readonly #timers = new Map<number, { at: number; callback: () => void }>();
  now = (): number => this.t;
  setTimeout = (callback: () => void, ms: number): unknown => {
    const id = ++this.#id;
    this.#timers.set(id, { at: this.t + ms, callback });
    return id;
  };
  clearTimeout = (handle: unknown): void => void this.#timers.delete(handle as number);
  /** Moves time forward by `ms`, running each timer at its time and letting the promises it starts settle. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (let fired = 0; ; fired++) {
      if (fired > 10_000) throw new Error('more than 10000 timers in one advance: a zero-delay loop?');
      await settle();
      let next: [number, { at: number; callback: () => void }] | undefined;
      for (const entry of this.#timers) if (entry[1].at <= end && (next === undefined || entry[1].at < next[1].at)) next = entry;
      if (next === undefined) break;
      this.#timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].callback();
    }
    this.t = end;
    await settle();
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

type Answer = { a?: string[]; aaaa?: string[]; srv?: { name: string; port: number; priority: number; weight: number }[]; ttl?: number } | { code: string } | 'silent';

/** A resolver answering from a table (name → answer), recording each call's time. */
class ScriptedResolver implements DnsResolver {
  readonly table = new Map<string, Answer>();
  readonly calls: { type: string; name: string; at: number }[] = [];
  readonly #pending = new Set<(err: Error) => void>();
  readonly clock: FakeClock;
  constructor(clock: FakeClock) {
    this.clock = clock;
  }
  #answer<T>(type: string, name: string, pick: (answer: Exclude<Answer, 'silent' | { code: string }>) => T[] | undefined): Promise<T[]> {
    this.calls.push({ type, name, at: this.clock.now() });
    const answer = this.table.get(name);
    if (answer === 'silent') return new Promise((_, reject) => this.#pending.add(reject));
    const fail = (code: string): Promise<never> => Promise.reject(Object.assign(new Error(code), { code }));
    if (answer === undefined) return fail('ENOTFOUND');
    if ('code' in answer) return fail(answer.code);
    const records = pick(answer);
    return records === undefined || records.length === 0 ? fail('ENODATA') : Promise.resolve(records);
  }
  resolve4 = (name: string): Promise<{ address: string; ttl: number }[]> => this.#answer('A', name, (a) => a.a?.map((address) => ({ address, ttl: a.ttl ?? 60 })));
  resolve6 = (name: string): Promise<{ address: string; ttl: number }[]> => this.#answer('AAAA', name, (a) => a.aaaa?.map((address) => ({ address, ttl: a.ttl ?? 60 })));
  resolveSrv = (name: string): Promise<{ name: string; port: number; priority: number; weight: number }[]> => this.#answer('SRV', name, (a) => a.srv);
  cancel = (): void => {
    for (const reject of this.#pending) reject(Object.assign(new Error('ECANCELLED'), { code: 'ECANCELLED' }));
    this.#pending.clear();
  };
  count(name: string, type?: string): number {
    return this.calls.filter((c) => c.name === name && (type === undefined || c.type === type)).length;
  }
}

function dnsConfig(text: string): DnsDiscoveryConfig {
  const yaml = `listeners: [{ name: web, bind: "127.0.0.1:0", routes: [{ pool: p }] }]\npools:\n  p:\n    discovery: { dns: ${text} }\n`;
  const result = parseConfig(yaml, 'test.yaml');
  if (!result.ok) throw new Error(result.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  return result.config.pools['p']!.discovery!.dns!;
}

interface Harness {
  clock: FakeClock;
  resolver: ScriptedResolver;
  source: DnsSource;
  reports: (readonly DiscoveredBackend[])[];
  results: DnsResult[];
  logs: { level: number; msg: string }[];
  /** `host:port` of the last report's members. */
  members(): string[];
}

function harness(config: string, table: Record<string, Answer>): Harness {
  const clock = new FakeClock();
  const resolver = new ScriptedResolver(clock);
  for (const [name, answer] of Object.entries(table)) resolver.table.set(name, answer);
  const reports: (readonly DiscoveredBackend[])[] = [];
  const results: DnsResult[] = [];
  const logs: { level: number; msg: string }[] = [];
  const stream = new Writable({ write(chunk: Buffer, _encoding, done) { for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line) as { level: number; msg: string }); done(); } });
  const source = new DnsSource(dnsConfig(config), {
    pool: 'p',
    logger: pino({ level: 'info' }, stream),
    report: (members) => reports.push(members),
    count: (result) => results.push(result),
    resolver: () => resolver,
    clock,
    random: () => 0.5, // no jitter
  });
  return { clock, resolver, source, reports, results, logs, members: () => (reports.at(-1) ?? []).map((m) => `${m.address.host}:${m.address.port}`) };
}

/** Times between consecutive lookups of `name`, ms. */
function gaps(resolver: ScriptedResolver, name: string, type = 'A'): number[] {
  const times = resolver.calls.filter((c) => c.name === name && c.type === type).map((c) => c.at);
  return times.slice(1).map((at, i) => at - times[i]!);
}

const warnings = (h: Harness): string[] => h.logs.filter((l) => l.level === 40).map((l) => l.msg);

test('D1: A records are asked again at their TTL, clamped to [1 s, 300 s]; a fixed refresh wins over the TTL', async (t) => {
  for (const [ttl, expected] of [[1, 1000], [0, 1000], [7, 7000], [3600, 300_000]] as const) {
    const h = harness('{ name: api.test, port: 80, family: ipv4 }', { 'api.test': { a: ['10.0.0.1'], ttl } });
    t.after(() => h.source.close());
    await h.clock.advance(0);
    assert.deepEqual(h.members(), ['10.0.0.1:80']);
    assert.equal(h.source.nextLookupAt! - h.clock.now(), expected, `TTL ${ttl}`);
    await h.clock.advance(expected * 3);
    assert.deepEqual(gaps(h.resolver, 'api.test'), [expected, expected, expected], `TTL ${ttl}: asked every ${expected} ms`);
    assert.equal(h.source.status().records[0]!.ttlSeconds, ttl);
  }
  const fixed = harness('{ name: api.test, port: 80, family: ipv4, refresh: 7s }', { 'api.test': { a: ['10.0.0.1'], ttl: 1 } });
  t.after(() => fixed.source.close());
  await fixed.clock.advance(21_000);
  assert.deepEqual(gaps(fixed.resolver, 'api.test'), [7000, 7000, 7000]);
});

test('D1: family any asks A and AAAA, each on its own TTL; a name with only A records is fine', async (t) => {
  const h = harness('{ name: api.test, port: 80 }', { 'api.test': { a: ['10.0.0.1', '10.0.0.2'], aaaa: ['fd00::1'], ttl: 5 } });
  t.after(() => h.source.close());
  await h.clock.advance(0);
  assert.deepEqual(h.members(), ['10.0.0.1:80', '10.0.0.2:80', 'fd00::1:80']);
  h.resolver.table.set('api.test', { a: ['10.0.0.1'], ttl: 5 });
  await h.clock.advance(5000);
  assert.deepEqual(h.members(), ['10.0.0.1:80', 'fd00::1:80'], 'the A side changed at once; the AAAA address is held (NODATA within hold)');
  assert.equal(h.source.status().state, 'holding');
  await h.clock.advance(30_000);
  assert.deepEqual(h.members(), ['10.0.0.1:80']);
  assert.equal(h.source.status().state, 'ok', 'NODATA on AAAA beside A records is normal');
  assert.equal(h.source.status().lastError, null);
});

test('D2: SRV records, then their targets: port and weight from the record, priority groups, "." ignored, weights scaled to 1000', async (t) => {
  const h = harness('{ srv: _http._tcp.svc.test, family: ipv4 }', {
    '_http._tcp.svc.test': {
      srv: [
        { name: 'a.test', port: 8001, priority: 10, weight: 60 },
        { name: 'b.test', port: 8002, priority: 10, weight: 20 },
        { name: 'c.test', port: 8003, priority: 20, weight: 0 },
        { name: '.', port: 0, priority: 5, weight: 0 },
      ],
    },
    'a.test': { a: ['10.0.0.1'], ttl: 2 },
    'b.test': { a: ['10.0.0.2', '10.0.0.3'], ttl: 60 },
    'c.test': { a: ['10.0.0.4'] },
  });
  t.after(() => h.source.close());
  await h.clock.advance(0);
  assert.equal(h.reports.length, 1, 'one report, after the targets answered');
  assert.deepEqual(
    h.reports[0]!.map((m) => [`${m.address.host}:${m.address.port}`, m.weight, m.priority, m.name]),
    [['10.0.0.1:8001', 60, 10, 'a.test'], ['10.0.0.2:8002', 20, 10, 'b.test'], ['10.0.0.3:8002', 20, 10, 'b.test'], ['10.0.0.4:8003', 1, 20, 'c.test']],
  );
  assert.equal(h.source.nextLookupAt! - h.clock.now(), 2000, 'a.test\'s TTL is the soonest');
  await h.clock.advance(30_000);
  assert.equal(h.resolver.count('_http._tcp.svc.test'), 2, 'SRV records every 30 s (no TTL in Node)');
  assert.equal(h.resolver.count('a.test'), 16, 'a.test every 2 s');
  assert.equal(h.resolver.count('b.test'), 1);
  // A target leaves the SRV answer: its addresses go, and it is asked no more.
  h.resolver.table.set('_http._tcp.svc.test', { srv: [{ name: 'a.test', port: 8001, priority: 10, weight: 65535 }, { name: 'c.test', port: 8003, priority: 20, weight: 655 }] });
  await h.clock.advance(30_000);
  assert.deepEqual(h.reports.at(-1)!.map((m) => [`${m.address.host}:${m.address.port}`, m.weight]), [['10.0.0.1:8001', 1000], ['10.0.0.4:8003', 10]]);
  const before = h.resolver.count('b.test');
  await h.clock.advance(120_000);
  assert.equal(h.resolver.count('b.test'), before);
});

test('D3: SERVFAIL, REFUSED and timeouts keep the last answer; retries back off 1, 2, 4 … 30 s; counted; logged once per run of failures', async (t) => {
  const h = harness('{ name: api.test, port: 80, family: ipv4, timeout: 500ms }', { 'api.test': { a: ['10.0.0.1'], ttl: 1 } });
  t.after(() => h.source.close());
  await h.clock.advance(0);
  h.resolver.table.set('api.test', { code: 'ESERVFAIL' });
  await h.clock.advance(1000); // the TTL's lookup fails
  const start = h.resolver.calls.length;
  await h.clock.advance(1000 + 2000 + 4000 + 8000 + 16_000 + 30_000 + 30_000);
  assert.deepEqual(gaps(h.resolver, 'api.test').slice(start - 1), [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
  assert.deepEqual(h.members(), ['10.0.0.1:80'], 'the last answer stays');
  assert.equal(h.reports.length, 1, 'nothing changed: nothing reported');
  assert.equal(h.source.status().state, 'failing');
  assert.match(h.source.status().lastError!, /ESERVFAIL/);
  h.resolver.table.set('api.test', { code: 'EREFUSED' });
  await h.clock.advance(30_000);
  h.resolver.table.set('api.test', 'silent');
  await h.clock.advance(30_000 + 500);
  assert.deepEqual(h.results.slice(-3), ['servfail', 'refused', 'timeout']);
  assert.deepEqual(h.members(), ['10.0.0.1:80']);
  assert.deepEqual(warnings(h), ['dns discovery: lookup failing; keeping the last answer and retrying with backoff'], 'one warning for the whole run of failures');
  h.resolver.table.set('api.test', { a: ['10.0.0.2'], ttl: 1 });
  await h.clock.advance(30_000);
  assert.deepEqual(h.members(), ['10.0.0.2:80']);
  assert.ok(h.logs.some((l) => l.msg === 'dns discovery: the name answers again'));
  await h.clock.advance(3000);
  assert.deepEqual(gaps(h.resolver, 'api.test').slice(-3), [1000, 1000, 1000], 'back on the TTL');
  // With a fixed refresh, a retry is never later than it.
  const r = harness('{ name: api.test, port: 80, family: ipv4, refresh: 3s }', { 'api.test': { code: 'ESERVFAIL' } });
  t.after(() => r.source.close());
  await r.clock.advance(20_000);
  assert.deepEqual(gaps(r.resolver, 'api.test'), [1000, 2000, 3000, 3000, 3000, 3000, 3000]);
});

test('D4: NXDOMAIN and NODATA keep the last answer for hold, then the members go; they come back with the name', async (t) => {
  const h = harness('{ name: api.test, port: 80, family: ipv4, hold: 10s, refresh: 1s }', { 'api.test': { a: ['10.0.0.1'], ttl: 60 } });
  t.after(() => h.source.close());
  await h.clock.advance(0);
  h.resolver.table.delete('api.test'); // NXDOMAIN
  await h.clock.advance(1000);
  assert.deepEqual(h.members(), ['10.0.0.1:80']);
  assert.equal(h.source.status().state, 'holding');
  assert.ok(h.source.status().records[0]!.holdUntil !== null);
  await h.clock.advance(9999);
  assert.deepEqual(h.members(), ['10.0.0.1:80'], 'still within hold (10 s from the first NXDOMAIN)');
  await h.clock.advance(1);
  assert.deepEqual(h.members(), [], 'hold is over');
  assert.equal(h.source.status().state, 'empty');
  assert.deepEqual(warnings(h), ['dns discovery: nxdomain; keeping the last answer for hold', 'dns discovery: nxdomain for longer than hold: the name\'s members are removed']);
  h.resolver.table.set('api.test', { a: ['10.0.0.3'] });
  await h.clock.advance(1000);
  assert.deepEqual(h.members(), ['10.0.0.3:80']);
  // NODATA (the name exists, without A records) is held the same way; hold 0s drops at once.
  const z = harness('{ name: api.test, port: 80, family: ipv4, hold: 0s }', { 'api.test': { a: ['10.0.0.1'], ttl: 1 } });
  t.after(() => z.source.close());
  await z.clock.advance(0);
  z.resolver.table.set('api.test', { aaaa: ['fd00::1'] });
  await z.clock.advance(1000);
  assert.deepEqual(z.members(), []);
  assert.equal(z.results.at(-1), 'nodata');
});

test('a source that never answered reports no members once its first lookups end, whatever they were', async (t) => {
  for (const [answer, ms] of [['silent', 300], [{ code: 'ESERVFAIL' }, 0]] as const) {
    const h = harness('{ srv: _x._tcp.nowhere.test, timeout: 300ms }', { '_x._tcp.nowhere.test': answer });
    t.after(() => h.source.close());
    let settled = false;
    void h.source.settled.then(() => (settled = true));
    if (ms > 0) {
      await h.clock.advance(ms - 1);
      assert.equal(h.source.status().state, 'resolving');
      assert.equal(settled, false);
    }
    await h.clock.advance(1);
    assert.equal(settled, true);
    assert.deepEqual(h.reports, [[]]);
    assert.equal(h.source.status().state, 'failing');
  }
  const nx = harness('{ srv: _x._tcp.nowhere.test }', {});
  t.after(() => nx.source.close());
  await nx.clock.advance(0);
  assert.deepEqual(nx.reports, [[]]);
  assert.deepEqual(warnings(nx), ['dns discovery: nxdomain: the name has no records']);
});

test('close stops the loop: no lookup, no report', async () => {
  const h = harness('{ name: api.test, port: 80, family: ipv4 }', { 'api.test': { a: ['10.0.0.1'], ttl: 1 } });
  await h.clock.advance(0);
  h.source.close();
  const calls = h.resolver.calls.length;
  await h.clock.advance(10_000);
  assert.equal(h.resolver.calls.length, calls);
  assert.equal(h.source.nextLookupAt, undefined);
});

// ---- PoolDiscovery: a pool's sources across reloads -------------------------------------------------

function poolConfig(discovery: string | undefined): PoolConfig {
  const yaml = `listeners: [{ name: web, bind: "127.0.0.1:0", routes: [{ pool: p }] }]\npools:\n  p:\n    backends: [{ address: "127.0.0.1:1" }]\n${discovery === undefined ? '' : `    discovery: { dns: ${discovery} }\n`}`;
  const result = parseConfig(yaml, 'test.yaml');
  if (!result.ok) throw new Error(result.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  return result.config.pools['p']!;
}

test('PoolDiscovery: the same config keeps the source and its members; a changed one replaces it once the new one answered; a removed one takes its members', async (t) => {
  const clock = new FakeClock();
  const resolver = new ScriptedResolver(clock);
  resolver.table.set('a.test', { a: ['10.0.0.1', '10.0.0.2'], ttl: 5 });
  resolver.table.set('b.test', 'silent');
  let made = 0;
  const config = poolConfig('{ name: a.test, port: 80, family: ipv4, timeout: 1s }');
  const control = new PoolControl('p', config);
  t.after(() => control.close());
  const discovery = new PoolDiscovery('p', control, { dns: { resolver: () => (made++, resolver), clock, random: () => 0.5 } });
  t.after(() => discovery.close());
  discovery.configure(config.discovery);
  await clock.advance(0);
  const keys = (): string[] => control.backends.map((b) => b.key);
  assert.deepEqual(keys(), ['127.0.0.1:1', '10.0.0.1:80', '10.0.0.2:80']);
  const kept = control.find('10.0.0.1:80')!;
  discovery.configure(poolConfig('{ name: a.test, port: 80, family: ipv4, timeout: 1s }').discovery);
  assert.equal(made, 1, 'same config: same source');
  discovery.configure(poolConfig('{ name: b.test, port: 80, family: ipv4, timeout: 1s }').discovery);
  assert.equal(made, 2);
  await clock.advance(999);
  assert.deepEqual(keys(), ['127.0.0.1:1', '10.0.0.1:80', '10.0.0.2:80'], 'the old members serve until the new source\'s first lookups end');
  assert.equal(control.find('10.0.0.1:80'), kept);
  await clock.advance(1);
  assert.deepEqual(keys(), ['127.0.0.1:1'], 'b.test never answered');
  resolver.table.set('b.test', { a: ['10.0.0.9'] });
  await clock.advance(1000);
  assert.deepEqual(keys(), ['127.0.0.1:1', '10.0.0.9:80']);
  discovery.configure(undefined);
  assert.deepEqual(keys(), ['127.0.0.1:1'], 'discovery removed: its members go, the file\'s stay');
  assert.equal(discovery.view(), undefined);
  assert.equal(discovery.counts().get('dns ok'), 2);
  assert.equal(discovery.counts().get('dns timeout'), 1);
});

test('PoolDiscovery: an address the file took over and then dropped comes back as discovered at once (republish after a reload)', async (t) => {
  const clock = new FakeClock();
  const resolver = new ScriptedResolver(clock);
  resolver.table.set('a.test', { a: ['10.0.0.1'], ttl: 300 });
  const withFile = (backends: string): PoolConfig => {
    const yaml = `listeners: [{ name: web, bind: "127.0.0.1:0", routes: [{ pool: p }] }]\npools:\n  p:\n    backends: [${backends}]\n    discovery: { dns: { name: a.test, port: 80, family: ipv4, timeout: 1s } }\n`;
    const result = parseConfig(yaml, 'test.yaml');
    if (!result.ok) throw new Error(result.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
    return result.config.pools['p']!;
  };
  const first = withFile('{ address: "10.0.0.1:80" }');
  const control = new PoolControl('p', first);
  t.after(() => control.close());
  const discovery = new PoolDiscovery('p', control, { dns: { resolver: () => resolver, clock, random: () => 0.5 } });
  t.after(() => discovery.close());
  discovery.configure(first.discovery);
  await clock.advance(0);
  assert.equal(control.find('10.0.0.1:80')?.discovered, false, 'the file lists it: the file\'s');
  // A reload drops it from the file; the DNS answer (TTL 300 s) has not changed, so no new report comes.
  const second = withFile('');
  control.reconfigure(second);
  discovery.configure(second.discovery);
  discovery.republish();
  assert.equal(control.find('10.0.0.1:80')?.discovered, true, 'back at once, as discovery\'s');
});
