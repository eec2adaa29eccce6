/**
 * PROXY protocol v1/v2 codec, byte for byte against the spec
 * (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeProxyV1,
  encodeProxyV2,
  PROXY_V1_MAX_LENGTH,
  PROXY_V2_MAX_LENGTH,
  PROXY_V2_SIGNATURE,
  readProxyHeader,
  startsWithProxySignature,
  type ProxyHeaderResult,
} from '../../src/l4/proxy-protocol.ts';

const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const SIG = '0d0a0d0a000d0a515549540a';

function expectError(result: ProxyHeaderResult, pattern: RegExp): void {
  assert.ok(typeof result === 'object' && 'error' in result, `expected an error, got ${JSON.stringify(result)}`);
  assert.match(result.error, pattern);
}

describe('encodeProxyV1', () => {
  it('writes the spec example for TCP4 (§2.1)', () => {
    const bytes = encodeProxyV1({ address: '192.168.0.1', port: 56324 }, { address: '192.168.0.11', port: 443 });
    assert.deepEqual(bytes, latin1('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n'));
  });

  it('writes the longest TCP4 and TCP6 lines of §2.1 (56 and 104 bytes)', () => {
    const v4 = encodeProxyV1({ address: '255.255.255.255', port: 65535 }, { address: '255.255.255.255', port: 65535 });
    assert.deepEqual(v4, latin1('PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n'));
    assert.equal(v4.length, 56);
    const full = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
    const v6 = encodeProxyV1({ address: full, port: 65535 }, { address: full, port: 65535 });
    assert.deepEqual(v6, latin1(`PROXY TCP6 ${full} ${full} 65535 65535\r\n`));
    assert.equal(v6.length, 104);
  });

  it('sends IPv4-mapped addresses from dual-stack sockets as TCP4', () => {
    const bytes = encodeProxyV1({ address: '::ffff:10.1.2.3', port: 40000 }, { address: '::ffff:127.0.0.1', port: 8443 });
    assert.deepEqual(bytes, latin1('PROXY TCP4 10.1.2.3 127.0.0.1 40000 8443\r\n'));
  });

  it('writes TCP6 in RFC 5952 form, mapping an IPv4 end when the other is IPv6', () => {
    assert.deepEqual(
      encodeProxyV1({ address: '2001:DB8:0:0:0:0:0:1', port: 1 }, { address: '::1', port: 2 }),
      latin1('PROXY TCP6 2001:db8::1 ::1 1 2\r\n'),
    );
    assert.deepEqual(
      encodeProxyV1({ address: '10.0.0.1', port: 1 }, { address: 'fe80::1%lo', port: 2 }),
      latin1('PROXY TCP6 ::ffff:10.0.0.1 fe80::1 1 2\r\n'),
    );
  });

  it('writes UNKNOWN when an end is missing or not an address', () => {
    assert.deepEqual(encodeProxyV1(undefined, { address: '1.2.3.4', port: 1 }), latin1('PROXY UNKNOWN\r\n'));
    assert.deepEqual(encodeProxyV1({ address: 'example.com', port: 1 }, { address: '1.2.3.4', port: 1 }), latin1('PROXY UNKNOWN\r\n'));
    assert.deepEqual(encodeProxyV1({ address: '1.2.3.4', port: 70000 }, { address: '1.2.3.4', port: 1 }), latin1('PROXY UNKNOWN\r\n'));
  });
});

describe('encodeProxyV2', () => {
  it('writes TCP over IPv4: signature, 0x21, 0x11, length 12, addresses, ports (§2.2)', () => {
    const bytes = encodeProxyV2({ address: '192.168.0.1', port: 56324 }, { address: '192.168.0.11', port: 443 });
    assert.deepEqual(bytes, hex(`${SIG} 21 11 000c c0a80001 c0a8000b dc04 01bb`));
  });

  it('writes TCP over IPv6: 0x21, length 36', () => {
    const bytes = encodeProxyV2({ address: '2001:db8::1', port: 1234 }, { address: '2001:db8::2', port: 443 });
    assert.deepEqual(
      bytes,
      hex(`${SIG} 21 21 0024 20010db8000000000000000000000001 20010db8000000000000000000000002 04d2 01bb`),
    );
  });

  it('maps dual-stack IPv4 clients to 0x11 and writes LOCAL for unknown addresses', () => {
    assert.deepEqual(
      encodeProxyV2({ address: '::ffff:127.0.0.1', port: 1 }, { address: '::ffff:127.0.0.2', port: 2 }),
      hex(`${SIG} 21 11 000c 7f000001 7f000002 0001 0002`),
    );
    assert.deepEqual(encodeProxyV2(undefined, undefined), hex(`${SIG} 20 00 0000`));
  });
});

describe('readProxyHeader v1', () => {
  it('reads the spec example and leaves the payload', () => {
    const input = latin1('PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n\r\n');
    const result = readProxyHeader(input);
    assert.deepEqual(result, {
      header: { version: 1, command: 'proxy', source: { address: '192.168.0.1', port: 56324 }, destination: { address: '192.168.0.11', port: 443 } },
      length: 47,
    });
  });

  it('reads TCP6 and normalises addresses to RFC 5952', () => {
    const result = readProxyHeader(latin1('PROXY TCP6 2001:DB8:0::1 ::ffff:1.2.3.4 1 65535\r\n'));
    assert.ok(typeof result === 'object' && 'header' in result);
    assert.deepEqual(result.header.source, { address: '2001:db8::1', port: 1 });
    assert.deepEqual(result.header.destination, { address: '::ffff:1.2.3.4', port: 65535 });
  });

  it('reads UNKNOWN, short and worst-case long (107 bytes), ignoring what follows the keyword', () => {
    assert.deepEqual(readProxyHeader(latin1('PROXY UNKNOWN\r\n')), {
      header: { version: 1, command: 'proxy', source: undefined, destination: undefined },
      length: 15,
    });
    const full = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff';
    const worst = latin1(`PROXY UNKNOWN ${full} ${full} 65535 65535\r\n`);
    assert.equal(worst.length, PROXY_V1_MAX_LENGTH);
    const result = readProxyHeader(worst);
    assert.ok(typeof result === 'object' && 'header' in result);
    assert.equal(result.length, 107);
  });

  it('answers incomplete for every proper prefix, and never reads past the CRLF', () => {
    const line = latin1('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n');
    for (let n = 0; n < line.length; n++) assert.equal(readProxyHeader(line.subarray(0, n)), 'incomplete', `prefix of ${n}`);
    const result = readProxyHeader(Buffer.concat([line, latin1('\r\nPROXY junk')]));
    assert.ok(typeof result === 'object' && 'header' in result);
    assert.equal(result.length, line.length);
  });

  const malformed: [string, RegExp][] = [
    ['GET / HTTP/1.1\r\n', /not a PROXY protocol header/],
    ['proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n', /not a PROXY protocol header/],
    ['PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n', /TCP4, TCP6 or UNKNOWN/],
    ['PROXY UNKNOWNX\r\n', /TCP4, TCP6 or UNKNOWN/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n', /bare LF/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1\r2\r\n', /CR before its end/],
    ['PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n', /4 fields/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n', /4 fields/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n', /4 fields/],
    ['PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n', /invalid IPv4 address "1.2.3.256"/],
    ['PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n', /invalid IPv4 address/],
    ['PROXY TCP4 ::1 5.6.7.8 1 2\r\n', /invalid IPv4 address/],
    ['PROXY TCP6 1.2.3.4 ::1 1 2\r\n', /invalid IPv6 address/],
    ['PROXY TCP6 ::1 1::2::3 1 2\r\n', /invalid IPv6 address/],
    ['PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n', /invalid IPv6 address/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n', /invalid port "65536"/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n', /invalid port "080"/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n', /invalid port/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2x\r\n', /invalid port/],
    ['PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n', /byte 0x09/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2\u00e9\r\n', /byte 0xe9/],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2\0\r\n', /byte 0x00/],
  ];
  for (const [input, pattern] of malformed) {
    it(`rejects ${JSON.stringify(input)}`, () => expectError(readProxyHeader(latin1(input)), pattern));
  }

  it('rejects a line without CRLF in 107 bytes, but waits below that', () => {
    const long = latin1(`PROXY UNKNOWN ${'x'.repeat(200)}`);
    assert.equal(readProxyHeader(long.subarray(0, 106)), 'incomplete');
    expectError(readProxyHeader(long.subarray(0, 107)), /no CRLF within 107 bytes/);
    expectError(readProxyHeader(long), /no CRLF within 107 bytes/);
  });
});

describe('readProxyHeader v2', () => {
  it('reads TCP over IPv4 and IPv6 as encoded', () => {
    const v4 = Buffer.concat([hex(`${SIG} 21 11 000c c0a80001 c0a8000b dc04 01bb`), latin1('payload')]);
    assert.deepEqual(readProxyHeader(v4), {
      header: { version: 2, command: 'proxy', source: { address: '192.168.0.1', port: 56324 }, destination: { address: '192.168.0.11', port: 443 } },
      length: 28,
    });
    const v6 = encodeProxyV2({ address: '2001:db8::1', port: 1234 }, { address: '::ffff:10.0.0.1', port: 443 });
    assert.deepEqual(readProxyHeader(v6), {
      header: { version: 2, command: 'proxy', source: { address: '2001:db8::1', port: 1234 }, destination: { address: '::ffff:10.0.0.1', port: 443 } },
      length: 52,
    });
  });

  it('skips TLVs that tile the header (ALPN, AUTHORITY, NOOP, AWS 0xEA)', () => {
    const tlvs = '01 0002 6832' + '02 000b 6578616d706c652e636f6d' + '04 0000' + 'ea 0005 0170636531';
    const body = 'c0a80001 c0a8000b dc04 01bb' + tlvs;
    const length = (hex(body).length).toString(16).padStart(4, '0');
    const input = hex(`${SIG} 21 11 ${length} ${body}`);
    const result = readProxyHeader(input);
    assert.ok(typeof result === 'object' && 'header' in result, JSON.stringify(result));
    assert.equal(result.length, input.length);
    assert.deepEqual(result.header.source, { address: '192.168.0.1', port: 56324 });
  });

  it('reads LOCAL (any address block ignored) and AF_UNSPEC/AF_UNIX as "use the real addresses"', () => {
    assert.deepEqual(readProxyHeader(hex(`${SIG} 20 00 0000`)), {
      header: { version: 2, command: 'local', source: undefined, destination: undefined },
      length: 16,
    });
    assert.deepEqual(readProxyHeader(hex(`${SIG} 20 11 000c c0a80001 c0a8000b dc04 01bb`)), {
      header: { version: 2, command: 'local', source: undefined, destination: undefined },
      length: 28,
    });
    assert.deepEqual(readProxyHeader(hex(`${SIG} 21 00 0000`)), {
      header: { version: 2, command: 'proxy', source: undefined, destination: undefined },
      length: 16,
    });
    const unix = Buffer.concat([hex(`${SIG} 21 31 00d8`), Buffer.alloc(216)]);
    assert.deepEqual(readProxyHeader(unix), {
      header: { version: 2, command: 'proxy', source: undefined, destination: undefined },
      length: 232,
    });
  });

  it('answers incomplete for every proper prefix', () => {
    const input = encodeProxyV2({ address: '2001:db8::1', port: 1 }, { address: '2001:db8::2', port: 2 });
    for (let n = 0; n < input.length; n++) assert.equal(readProxyHeader(input.subarray(0, n)), 'incomplete', `prefix of ${n}`);
  });

  const malformed: [string, string, RegExp][] = [
    ['a bad signature byte', '0d0a0d0a000d0a515549540b 21 11 000c', /bad v2 signature/],
    ['version 1 in the binary form', `${SIG} 11 11 000c`, /version 1, expected 2/],
    ['version 3', `${SIG} 31 11 000c`, /version 3/],
    ['command 2', `${SIG} 22 11 000c`, /unknown command 2/],
    ['family 4', `${SIG} 21 41 000c`, /family\/transport 0x41/],
    ['transport 3', `${SIG} 21 13 000c`, /family\/transport 0x13/],
    ['UNSPEC family with a transport', `${SIG} 21 01 0000`, /family\/transport 0x01/],
    ['an IPv4 block shorter than 12 bytes', `${SIG} 21 11 000b c0a80001 c0a8000b dc04 01`, /too short for its addresses: 11 < 12/],
    ['an IPv6 block shorter than 36 bytes', `${SIG} 21 21 000c c0a80001 c0a8000b dc04 01bb`, /too short for its addresses: 12 < 36/],
    ['a TLV overrunning the header', `${SIG} 21 11 0010 c0a80001 c0a8000b dc04 01bb 01 0002 68`, /TLV 0x01 of 2 bytes overruns/],
    ['stray bytes after the TLVs', `${SIG} 21 11 000e c0a80001 c0a8000b dc04 01bb 0400`, /2 stray byte/],
  ];
  for (const [name, input, pattern] of malformed) {
    it(`rejects ${name}`, () => expectError(readProxyHeader(hex(input)), pattern));
  }

  it(`rejects a declared length above ${PROXY_V2_MAX_LENGTH} bytes before buffering it`, () => {
    const length = (PROXY_V2_MAX_LENGTH - 16 + 1).toString(16).padStart(4, '0');
    expectError(readProxyHeader(hex(`${SIG} 21 11 ${length}`)), /more than the 4096/);
    expectError(readProxyHeader(hex(`${SIG} 21 11 ffff`)), /65551 bytes/);
  });
});

describe('startsWithProxySignature', () => {
  it('spots v1 and v2 headers, and nothing shorter than a signature', () => {
    assert.equal(startsWithProxySignature(latin1('PROXY TCP4')), true);
    assert.equal(startsWithProxySignature(PROXY_V2_SIGNATURE), true);
    assert.equal(startsWithProxySignature(latin1('PROXY')), false);
    assert.equal(startsWithProxySignature(latin1('GET / HTTP/1.1')), false);
    assert.equal(startsWithProxySignature(PROXY_V2_SIGNATURE.subarray(0, 11)), false);
  });
});

describe('never throws on garbage', () => {
  it('decodes 20 000 random inputs without throwing, in bounds', () => {
    let seed = 12345;
    const random = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const starts = [latin1('PROXY '), PROXY_V2_SIGNATURE, latin1('PROXY TCP4 '), hex(`${SIG} 21`)];
    for (let i = 0; i < 20_000; i++) {
      const prefix = starts[i % starts.length]!;
      const tail = Buffer.from(Array.from({ length: Math.floor(random() * 80) }, () => Math.floor(random() * 256)));
      const input = Buffer.concat([prefix, tail]);
      const result = readProxyHeader(input);
      if (typeof result === 'object' && 'header' in result) assert.ok(result.length <= input.length);
    }
  });
});
