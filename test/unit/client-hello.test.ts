/**
 * SNI extraction from real ClientHellos, captured from Node's own TLS client
 * (OpenSSL) connecting to a plain TCP server, plus truncations, corruptions
 * and hand-split records.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CLIENT_HELLO_MAX_BYTES, readServerName, type ClientHelloResult } from '../../src/l4/client-hello.ts';
import { captureClientHello } from '../helpers/tls.ts';

function expectError(result: ClientHelloResult, pattern: RegExp): void {
  assert.ok(typeof result === 'object' && 'error' in result, `expected an error, got ${JSON.stringify(result)}`);
  assert.match(result.error, pattern);
}

/** Re-frames a captured single-record ClientHello into records of at most `size` handshake bytes each. */
function splitRecords(hello: Buffer, size: number): Buffer {
  const handshake = hello.subarray(5, 5 + hello.readUInt16BE(3));
  const records: Buffer[] = [];
  for (let at = 0; at < handshake.length; at += size) {
    const fragment = handshake.subarray(at, at + size);
    const header = Buffer.from([22, hello[1]!, hello[2]!, 0, 0]);
    header.writeUInt16BE(fragment.length, 3);
    records.push(header, fragment);
  }
  return Buffer.concat(records);
}

/** Offset of the server_name extension's type field in a single-record hello, found by walking it. */
function sniOffset(hello: Buffer): number {
  let at = 5 + 4 + 2 + 32;
  at += 1 + hello[at]!;
  at += 2 + hello.readUInt16BE(at);
  at += 1 + hello[at]!;
  const end = at + 2 + hello.readUInt16BE(at);
  at += 2;
  while (at < end) {
    if (hello.readUInt16BE(at) === 0) return at;
    at += 4 + hello.readUInt16BE(at + 2);
  }
  throw new Error('no server_name extension');
}

const hellos: Record<string, Buffer> = {};

before(async () => {
  hellos['tls13'] = await captureClientHello({ servername: 'a.example' });
  hellos['tls12'] = await captureClientHello({ servername: 'b.example', minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
  hellos['tls13NoSni'] = await captureClientHello({ servername: '' });
  hellos['tls12NoSni'] = await captureClientHello({ maxVersion: 'TLSv1.2' }); // host is an IP: Node sends no SNI
  hellos['mixedCase'] = await captureClientHello({ servername: 'Api.Example.COM' });
  hellos['long'] = await captureClientHello({ servername: `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.example` });
});

describe('real ClientHellos from node:tls', () => {
  it('finds the SNI in a TLS 1.3 ClientHello', () => {
    assert.deepEqual(readServerName(hellos['tls13']!), { serverName: 'a.example' });
  });

  it('finds the SNI in a TLS 1.2-only ClientHello', () => {
    const hello = hellos['tls12']!;
    assert.deepEqual(readServerName(hello), { serverName: 'b.example' });
    assert.equal(hello.readUInt16BE(9), 0x0303, 'legacy_version TLS 1.2');
  });

  it('reports no SNI when the client sent none (TLS 1.3 and 1.2)', () => {
    assert.deepEqual(readServerName(hellos['tls13NoSni']!), { serverName: undefined });
    assert.deepEqual(readServerName(hellos['tls12NoSni']!), { serverName: undefined });
  });

  it('lowercases the name and accepts long names', () => {
    assert.deepEqual(readServerName(hellos['mixedCase']!), { serverName: 'api.example.com' });
    const long = readServerName(hellos['long']!);
    assert.ok(typeof long === 'object' && 'serverName' in long);
    assert.equal(long.serverName!.length, 63 * 3 + 3 + 7);
  });

  it('ignores bytes after the ClientHello', () => {
    const hello = hellos['tls13']!;
    assert.deepEqual(readServerName(Buffer.concat([hello, Buffer.from([23, 3, 3, 0, 5, 1, 2, 3])])), { serverName: 'a.example' });
  });
});

describe('truncation', () => {
  it('answers incomplete for every proper prefix of every captured hello', () => {
    for (const [name, hello] of Object.entries(hellos)) {
      for (let n = 0; n < hello.length; n++) assert.equal(readServerName(hello.subarray(0, n)), 'incomplete', `${name}: ${n} of ${hello.length}`);
    }
  });
});

describe('fragmented ClientHellos', () => {
  it('reassembles a ClientHello split over two, several and one-byte records', () => {
    const hello = hellos['tls13']!;
    const handshakeLength = hello.readUInt16BE(3);
    for (const size of [Math.ceil(handshakeLength / 2), 100, 7, 3, 1]) {
      const split = splitRecords(hello, size);
      if (split.length > CLIENT_HELLO_MAX_BYTES) {
        expectError(readServerName(split), /does not fit in 32778 bytes/);
        continue;
      }
      assert.deepEqual(readServerName(split), { serverName: 'a.example' }, `records of ${size}`);
      for (const n of [1, 5, 6, 9, split.length - 1]) assert.equal(readServerName(split.subarray(0, n)), 'incomplete', `${size}: prefix ${n}`);
    }
  });

  it('refuses a hello spread over more than two records worth of input', () => {
    // 1-byte records cost 6 input bytes per hello byte: a hello over ~5.4 KiB cannot fit.
    const big = Buffer.alloc(6000);
    big[0] = 1;
    big.writeUIntBE(big.length - 4, 1, 3);
    const records: Buffer[] = [];
    for (const byte of big) records.push(Buffer.from([22, 3, 1, 0, 1, byte]));
    expectError(readServerName(Buffer.concat(records)), /does not fit in 32778 bytes/);
  });

  it('refuses a declared ClientHello larger than two records', () => {
    expectError(readServerName(Buffer.from([22, 3, 1, 0, 4, 1, 0x01, 0x00, 0x00])), /ClientHello of 65540 bytes/);
  });

  it('refuses a non-handshake record before the ClientHello is complete', () => {
    const split = splitRecords(hellos['tls13']!, 100);
    const corrupted = Buffer.from(split);
    corrupted[105] = 23; // second record's type: application_data
    expectError(readServerName(corrupted), /record type 23 arrived before the ClientHello was complete/);
  });
});

describe('corruption', () => {
  const corruptions: [string, (hello: Buffer) => void, RegExp][] = [
    ['record type alert', (h) => (h[0] = 21), /not a TLS handshake record \(content type 21\)/],
    ['record version 0x0201', (h) => (h[1] = 2), /record version 0x0201 is not 0x0300..0x0304/],
    ['record version 0x0305', (h) => (h[2] = 5), /0x0305 is not 0x0300..0x0304/],
    ['a zero-length record', (h) => h.writeUInt16BE(0, 3), /zero-length/],
    ['a record above 2^14', (h) => h.writeUInt16BE(16385, 3), /16385 bytes exceeds 2\^14/],
    ['handshake type ServerHello', (h) => (h[5] = 2), /type 2, not ClientHello/],
    ['session id length 33', (h) => (h[5 + 4 + 2 + 32] = 33), /session id of 33 bytes/],
    ['odd cipher suites length', (h) => h.writeUInt16BE(h.readUInt16BE(44 + h[43]!) + 1, 44 + h[43]!), /cipher suites length \d+ is not even/],
    ['an extensions length one too long', (h) => {
      const at = extensionsAt(h);
      h.writeUInt16BE(h.readUInt16BE(at) + 1, at);
    }, /extensions length \d+ does not match/],
    ['a server_name list length that disagrees', (h) => {
      const at = sniOffset(h);
      h.writeUInt16BE(h.readUInt16BE(at + 4) + 1, at + 4);
    }, /server_name list length does not match/],
    ['a host_name with a space', (h) => (h[sniOffset(h) + 9] = 0x20), /host_name contains byte 0x20/],
    ['a host_name with a NUL', (h) => (h[sniOffset(h) + 10] = 0), /host_name contains byte 0x00/],
    ['an unknown name_type', (h) => (h[sniOffset(h) + 6] = 1), /unknown name_type 1/],
    ['an extension overrunning the block', (h) => h.writeUInt16BE(0xfff0, sniOffset(h) + 2), /overruns the extensions/],
  ];
  for (const [name, corrupt, pattern] of corruptions) {
    it(`refuses ${name}`, () => {
      const hello = Buffer.from(hellos['tls13']!);
      corrupt(hello);
      expectError(readServerName(hello), pattern);
    });
  }

  it('refuses two server_name extensions and two host_names', () => {
    const hello = hellos['tls13']!;
    const at = sniOffset(hello);
    const sni = hello.subarray(at, at + 4 + hello.readUInt16BE(at + 2));
    expectError(readServerName(withExtraExtension(hello, sni)), /two server_name extensions/);
    // One extension whose list holds the same host_name twice.
    const entry = sni.subarray(6);
    const list = Buffer.concat([entry, entry]);
    const doubled = Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0]), list]);
    doubled.writeUInt16BE(list.length + 2, 2);
    doubled.writeUInt16BE(list.length, 4);
    const replaced = Buffer.concat([hello.subarray(0, at), doubled, hello.subarray(at + sni.length)]);
    fixLengths(replaced, doubled.length - sni.length);
    expectError(readServerName(replaced), /two host_name entries/);
  });

  it('refuses a bad first byte or version major without waiting for a whole header', () => {
    expectError(readServerName(Buffer.from([23])), /content type 23/);
    expectError(readServerName(Buffer.from([22, 2])), /version major 2 is not 3/);
  });

  it('names PROXY headers and SSLv2 hellos for what they are', () => {
    expectError(readServerName(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n')), /looks like a PROXY protocol header/);
    expectError(readServerName(Buffer.from([0x80, 0x2e, 0x01, 0x00, 0x02])), /SSLv2-compatible ClientHello/);
    expectError(readServerName(Buffer.from('GET / HTTP/1.1\r\n')), /content type 71/);
  });

  it('never throws on 20 000 random mutations of real hellos', () => {
    let seed = 7;
    const random = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const sources = Object.values(hellos);
    let names = 0;
    for (let i = 0; i < 20_000; i++) {
      const hello = Buffer.from(sources[i % sources.length]!);
      const flips = 1 + Math.floor(random() * 4);
      for (let f = 0; f < flips; f++) hello[Math.floor(random() * hello.length)] = Math.floor(random() * 256);
      const cut = random() < 0.3 ? Math.floor(random() * hello.length) : hello.length;
      const result = readServerName(hello.subarray(0, cut));
      if (typeof result === 'object' && 'serverName' in result && result.serverName !== undefined) {
        names++;
        assert.match(result.serverName, /^[a-z0-9._-]{1,255}$/);
      }
    }
    assert.ok(names > 0);
  });
});

function extensionsAt(hello: Buffer): number {
  let at = 5 + 4 + 2 + 32;
  at += 1 + hello[at]!;
  at += 2 + hello.readUInt16BE(at);
  at += 1 + hello[at]!;
  return at;
}

/** Appends an extension to a single-record hello and fixes the three enclosing lengths. */
function withExtraExtension(hello: Buffer, extension: Buffer): Buffer {
  const out = Buffer.concat([hello, extension]);
  fixLengths(out, extension.length);
  return out;
}

/** Adds `delta` to the record, handshake and extensions lengths of a single-record hello. */
function fixLengths(hello: Buffer, delta: number): void {
  hello.writeUInt16BE(hello.readUInt16BE(3) + delta, 3);
  hello.writeUIntBE(hello.readUIntBE(6, 3) + delta, 6, 3);
  const at = extensionsAt(hello);
  hello.writeUInt16BE(hello.readUInt16BE(at) + delta, at);
}
