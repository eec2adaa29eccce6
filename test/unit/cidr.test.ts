import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isIPv4, isIPv6 } from 'node:net';
import { cidrError, compileCidrs } from '../../src/l4/cidr.ts';
import { formatV6, parseIp } from '../../src/l4/ip.ts';

describe('compileCidrs', () => {
  it('matches IPv4 prefixes, including peers Node reports IPv4-mapped', () => {
    const trusted = compileCidrs(['10.0.0.0/8', '192.168.1.0/24', '203.0.113.7']);
    for (const ip of ['10.0.0.0', '10.255.255.255', '192.168.1.1', '203.0.113.7', '::ffff:10.1.2.3', '::FFFF:192.168.1.200']) {
      assert.equal(trusted(ip), true, ip);
    }
    for (const ip of ['11.0.0.0', '9.255.255.255', '192.168.2.1', '203.0.113.8', '::ffff:11.0.0.1', '::10.1.2.3', '2001:db8::1']) {
      assert.equal(trusted(ip), false, ip);
    }
  });

  it('matches IPv6 prefixes and ignores a zone', () => {
    const trusted = compileCidrs(['2001:db8::/32', 'fe80::/10', '::1']);
    for (const ip of ['2001:db8::1', '2001:0db8:ffff::', '2001:db8:1:2:3:4:5:6', 'fe80::1%eth0', 'febf::1', '::1']) assert.equal(trusted(ip), true, ip);
    for (const ip of ['2001:db9::1', 'fec0::1', '::2', '127.0.0.1', '::ffff:127.0.0.1']) assert.equal(trusted(ip), false, ip);
  });

  it('handles prefix edges: /0, /32, /128, /31, /127 and bits in the middle of a word', () => {
    assert.equal(compileCidrs(['0.0.0.0/0'])('255.255.255.255'), true);
    assert.equal(compileCidrs(['0.0.0.0/0'])('::1'), false, 'an IPv4 /0 is all of IPv4, not IPv6');
    assert.equal(compileCidrs(['::/0'])('1.2.3.4'), true, '::/0 covers the IPv4-mapped range too');
    assert.equal(compileCidrs(['1.2.3.4/32'])('1.2.3.5'), false);
    assert.equal(compileCidrs(['1.2.3.4/31'])('1.2.3.5'), true);
    assert.equal(compileCidrs(['1.2.3.4/31'])('1.2.3.6'), false);
    assert.equal(compileCidrs(['2001:db8::/127'])('2001:db8::1'), true);
    assert.equal(compileCidrs(['2001:db8::/127'])('2001:db8::2'), false);
    assert.equal(compileCidrs(['2001:db8:8000::/33'])('2001:db8:ffff::'), true);
    assert.equal(compileCidrs(['2001:db8:8000::/33'])('2001:db8:7fff::'), false);
    assert.equal(compileCidrs(['172.16.0.0/12'])('172.31.255.255'), true);
    assert.equal(compileCidrs(['172.16.0.0/12'])('172.32.0.0'), false);
  });

  it('masks host bits in a prefix, as Go and HAProxy do', () => {
    assert.equal(compileCidrs(['10.1.2.3/8'])('10.200.0.1'), true);
  });

  it('never matches what is not an address, and an empty list matches nothing', () => {
    const trusted = compileCidrs(['0.0.0.0/0', '::/0']);
    for (const ip of ['', 'localhost', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.4/32', ':::', '1::2::3', 'fe80::1%', '::ffff:1.2.3']) {
      assert.equal(trusted(ip), false, JSON.stringify(ip));
    }
    assert.equal(compileCidrs([])('127.0.0.1'), false);
  });

  it('throws on an invalid entry, naming it', () => {
    assert.throws(() => compileCidrs(['10.0.0.0/8', '10.0.0.0/33']), /trustedProxies\[1\]: prefix length of "10.0.0.0\/33" must be an integer in \[0, 32\]/);
    assert.throws(() => compileCidrs(['nope']), /trustedProxies\[0\]: expected an IPv4 or IPv6 address or CIDR, got "nope"/);
  });
});

describe('cidrError', () => {
  it('accepts addresses and prefixes, and says what is wrong with the rest', () => {
    for (const ok of ['10.0.0.0/8', '0.0.0.0/0', '1.2.3.4', '::/0', '2001:db8::/32', '::ffff:10.0.0.0/104', '::1/128']) assert.equal(cidrError(ok), undefined, ok);
    assert.match(cidrError('10.0.0.0/')!, /must be an integer in \[0, 32\]/);
    assert.match(cidrError('10.0.0.0/08')!, /must be an integer/);
    assert.match(cidrError('::/129')!, /\[0, 128\]/);
    assert.match(cidrError('10.0.0.256/8')!, /expected an IPv4 or IPv6 address/);
    assert.match(cidrError('fe80::/10%eth0')!, /prefix length of/);
    assert.match(cidrError('fe80::1%eth0/64')!, /expected an IPv4 or IPv6 address/);
  });
});

describe('ip text', () => {
  it('parses and formats IPv6 the RFC 5952 way', () => {
    const bytes = new Uint8Array(16);
    const cases: [string, string][] = [
      ['::', '::'],
      ['::1', '::1'],
      ['1::', '1::'],
      ['2001:DB8:0:0:0:0:2:1', '2001:db8::2:1'],
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
      ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['0:0:0:0:0:ffff:1.2.3.4', '::ffff:1.2.3.4'],
      ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
      ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
    ];
    for (const [input, want] of cases) {
      assert.equal(parseIp(input, bytes), 'IPv6', input);
      assert.equal(formatV6(bytes), want, input);
    }
    for (const bad of [':', ':1', '1:', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '12345::', '::g', '1:2:3:4:5:6:7:1.2.3.4', '::1.2.3']) {
      assert.equal(parseIp(bad, bytes), undefined, bad);
    }
  });
});

describe('agreement with node:net', () => {
  it('parseIp accepts exactly what isIPv4/isIPv6 accept (the config schema validates with them), and formatting round-trips', () => {
    let seed = 1;
    const random = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const alphabet = '0123456789abcdefF:.:.:0';
    const seeds = ['::ffff:1.2.3.4', '1:2:3:4:5:6:7:8', '10.0.0.1', '2001:db8::1', '::', 'fe80::1', '255.255.255.255'];
    const bytes = new Uint8Array(16);
    const again = new Uint8Array(16);
    let addresses = 0;
    for (let i = 0; i < 200_000; i++) {
      let text: string;
      if (i % 2 === 0) {
        text = '';
        const n = 1 + Math.floor(random() * 22);
        for (let j = 0; j < n; j++) text += alphabet[Math.floor(random() * alphabet.length)];
      } else {
        // Small mutations of valid addresses reach the interesting edges far more often than random text.
        const chars = seeds[i % seeds.length]!.split('');
        for (let k = 1 + Math.floor(random() * 3); k > 0; k--) {
          const at = Math.floor(random() * (chars.length + 1));
          const c = alphabet[Math.floor(random() * alphabet.length)]!;
          const op = random();
          if (op < 0.33) chars.splice(at, 1);
          else if (op < 0.66) chars.splice(at, 0, c);
          else chars[at] = c;
        }
        text = chars.join('');
      }
      const family = parseIp(text, bytes);
      assert.equal(family, isIPv4(text) ? 'IPv4' : isIPv6(text) ? 'IPv6' : undefined, JSON.stringify(text));
      if (family === 'IPv6') {
        addresses++;
        assert.equal(parseIp(formatV6(bytes), again), 'IPv6');
        assert.deepEqual(again, bytes, JSON.stringify(text));
      }
    }
    assert.ok(addresses > 10_000);
  });
});
