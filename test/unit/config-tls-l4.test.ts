/**
 * Config keys for https, tcp and tls-passthrough listeners, TLS certificates,
 * the PROXY protocol, redirects, h2c and TLS backends and tunnel timeouts:
 * defaults, value formats, the rules across keys and their messages, file
 * checks and path resolution, the JSON Schema and the docs.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { configJsonSchema, formatIssue, loadConfigFile, parseConfig, quickConfig, type ConfigResult, type ListenerConfig, type PoolConfig, type UsherConfig } from '../../src/config/index.ts';
import { renderConfigDocs } from '../../src/config/docs.ts';
import type { JsonSchemaNode } from '../../src/config/json-schema.ts';

/** A directory with placeholder certificate, key and CA files: their content does not matter to the loader. */
let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'usher-config-tls-'));
  for (const name of ['site.crt', 'site.key', 'other.crt', 'other.key', 'ca.pem']) writeFileSync(join(dir, name), 'placeholder\n');
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'sub', 'nested.crt'), 'placeholder\n');
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** The config file name: in `dir`, so relative paths resolve there. */
const configFile = (): string => join(dir, 'usher.yaml');

const POOLS = 'pools:\n  web: { backends: [{ address: "h:1" }] }\n';

/** A file with the given `listeners` items (each line indented 2 by the caller) and pools. */
function file(listeners: string, pools = POOLS): string {
  return `listeners:\n${listeners}${pools}`;
}

/** An http listener named `web` on port 8080 whose extra lines (indented 4) are `extra`, routing to `web`. */
function httpListener(extra = '', routes = '[{ pool: web }]'): string {
  const body = extra.split('\n').filter((line) => line !== '').map((line) => `    ${line}\n`).join('');
  return `  - name: web\n    bind: 127.0.0.1:8080\n${body}    routes: ${routes}\n`;
}

function ok(result: ConfigResult): { readonly config: UsherConfig; readonly warnings: readonly string[] } {
  if (!result.ok) assert.fail(`expected a valid config, got:\n${result.errors.map(formatIssue).join('\n')}`);
  return { config: result.config, warnings: result.warnings.map((w) => `${w.path}: ${w.message}`) };
}

function parse(text: string, env: NodeJS.ProcessEnv = {}): ConfigResult {
  return parseConfig(text, configFile(), env);
}

/** The config, asserting there are no warnings. */
function valid(text: string, env: NodeJS.ProcessEnv = {}): UsherConfig {
  const { config, warnings } = ok(parse(text, env));
  assert.deepEqual(warnings, []);
  return config;
}

function listenerOf(text: string, index = 0): ListenerConfig {
  const listener = valid(text).listeners[index];
  assert.ok(listener !== undefined);
  return listener;
}

function poolOf(text: string, name = 'web'): PoolConfig {
  const pool = valid(text).pools[name];
  assert.ok(pool !== undefined);
  return pool;
}

/** `path: message` for every error. */
function problems(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  const result = parse(text, env);
  if (result.ok) assert.fail('expected errors, the config is valid');
  return result.errors.map((e) => `${e.path}: ${e.message}`);
}

/** `line:col path: message` for every error. */
function located(text: string): string[] {
  const result = parse(text);
  if (result.ok) assert.fail('expected errors, the config is valid');
  return result.errors.map((e) => `${e.line}:${e.column} ${e.path}: ${e.message}`);
}

/** `path: message` for every warning of a valid file. */
function warnings(text: string): string[] {
  return [...ok(parse(text)).warnings];
}

/** An https listener's tls mapping with the placeholder certificate, plus `extra` keys. */
const TLS = (extra = ''): string => `tls: { certificates: [{ cert: site.crt, key: site.key }]${extra} }`;

const schema = configJsonSchema() as JsonSchemaNode;
const listenerNode = schema.properties?.['listeners']?.items as JsonSchemaNode;
const routeNode = listenerNode.properties?.['routes']?.items as JsonSchemaNode;
const poolNode = schema.properties?.['pools']?.additionalProperties as JsonSchemaNode;
const backendNode = poolNode.properties?.['backends']?.items as JsonSchemaNode;

describe('listener protocols, TLS and PROXY protocol: defaults', () => {
  it('fills every default of a listener and a pool when the keys are left out', () => {
    const config = valid(file(httpListener()));
    const listener = config.listeners[0];
    assert.equal(listener?.protocol, 'http');
    assert.equal(listener?.acceptProxyProtocol, false);
    assert.deepEqual(listener?.trustedProxies, []);
    assert.equal(listener?.timeouts.tunnelIdleMs, 3_600_000);
    assert.equal(listener !== undefined && 'tls' in listener, false);
    const pool = config.pools['web'];
    assert.equal(pool?.protocol, 'http1');
    assert.equal(pool?.drainTimeoutMs, 30_000);
    assert.equal(pool !== undefined && 'proxyProtocol' in pool, false);
    assert.equal('tls' in (pool?.backends[0] ?? {}), false);
    assert.equal('redirect' in (listener?.routes[0] ?? {}), false);
  });

  it('fills the tls defaults: TLS 1.2 and ALPN h2 then http/1.1', () => {
    const tls = listenerOf(file(httpListener(`protocol: https\n${TLS()}`))).tls;
    assert.deepEqual(tls, {
      certificates: [{ certFile: join(dir, 'site.crt'), keyFile: join(dir, 'site.key') }],
      minVersion: 'TLSv1.2',
      alpn: ['h2', 'http/1.1'],
    });
  });

  it('defaults a redirect to 308, keeping scheme, host and port unset', () => {
    const { config } = ok(parse(file(httpListener('', '[{ redirect: {} }]'))));
    assert.deepEqual(config.listeners[0]?.routes, [{ redirect: { code: 308 } }]);
  });

  it('reads backend tls: true as {}, and insecureSkipVerify as false', () => {
    const backends = poolOf(file(httpListener(), 'pools:\n  web: { backends: [{ address: "h:1", tls: true }, { address: "h:2", tls: {} }, { address: "h:3", tls: false }] }\n')).backends;
    assert.deepEqual(backends.map((b) => b.tls), [{ insecureSkipVerify: false }, { insecureSkipVerify: false }, undefined]);
    assert.equal('tls' in (backends[2] ?? {}), false, 'tls: false is the same as leaving it out');
  });

  it('quick mode still produces a complete config', () => {
    const { config, warnings: found } = ok(quickConfig({ bind: '127.0.0.1:0', backends: ['h:1'] }));
    assert.deepEqual(found, []);
    const listener = config.listeners[0];
    assert.deepEqual(
      [listener?.protocol, listener?.acceptProxyProtocol, listener?.trustedProxies, listener?.timeouts.tunnelIdleMs, listener?.routes],
      ['http', false, [], 3_600_000, [{ pool: 'default' }]],
    );
    assert.deepEqual([config.pools['default']?.protocol, config.pools['default']?.drainTimeoutMs], ['http1', 30_000]);
  });

  it('documents the defaults in the JSON Schema as they are written in the file', () => {
    const timeouts = listenerNode.properties?.['timeouts'] as JsonSchemaNode;
    const tls = listenerNode.properties?.['tls'] as JsonSchemaNode;
    const redirect = routeNode.properties?.['redirect'] as JsonSchemaNode;
    assert.deepEqual(listenerNode.properties?.['protocol']?.enum, ['http', 'https', 'tcp', 'tls-passthrough']);
    assert.equal(listenerNode.properties?.['protocol']?.default, 'http');
    assert.equal(listenerNode.properties?.['acceptProxyProtocol']?.default, false);
    assert.deepEqual(listenerNode.properties?.['trustedProxies']?.default, []);
    assert.equal(timeouts.properties?.['tunnelIdle']?.default, '1h');
    assert.deepEqual(tls.required, ['certificates']);
    assert.equal(tls.properties?.['minVersion']?.default, 'TLSv1.2');
    assert.deepEqual(tls.properties?.['alpn']?.default, ['h2', 'http/1.1']);
    assert.deepEqual(listenerNode.required, ['name', 'bind', 'routes']);
    assert.deepEqual(routeNode.required ?? [], [], 'neither pool nor redirect is required on its own');
    assert.equal(redirect.properties?.['code']?.default, 308);
    assert.deepEqual(redirect.properties?.['code']?.enum, [301, 302, 303, 307, 308]);
    assert.equal(poolNode.properties?.['protocol']?.default, 'http1');
    assert.equal(poolNode.properties?.['drainTimeout']?.default, '30s');
    assert.deepEqual(poolNode.properties?.['proxyProtocol']?.enum, ['v1', 'v2']);
    const backendTls = backendNode.properties?.['tls']?.anyOf ?? [];
    assert.deepEqual(backendTls.map((option) => option.type), ['boolean', 'object']);
    assert.equal(backendTls[1]?.properties?.['insecureSkipVerify']?.default, false);
  });

  it('renders the new keys in docs/config.md, backend tls sub-keys included', () => {
    const docs = renderConfigDocs('');
    for (const section of ['listeners[].tls', 'listeners[].tls.certificates[]', 'listeners[].routes[].redirect', 'pools.<name>.backends[].tls']) {
      assert.match(docs, new RegExp(`^### \`${section.replace(/[[\].<>]/g, '\\$&')}\`$`, 'm'), section);
    }
    assert.match(docs, /^\| `protocol` \| one of `http`, `https`, `tcp`, `tls-passthrough` \| `http` \|/m);
    assert.match(docs, /^\| `trustedProxies` \| list of IP or CIDR \| `\[\]` \|/m);
    assert.match(docs, /^\| `tunnelIdle` \| duration \| `1h` \|/m);
    assert.match(docs, /^\| `code` \| one of `301`, `302`, `303`, `307`, `308` \| `308` \|/m);
    assert.match(docs, /^\| `tls` \| boolean or mapping \| — \|/m);
    assert.match(docs, /^\| `insecureSkipVerify` \| boolean \| `false` \|/m);
    assert.match(docs, /^\| `drainTimeout` \| duration \| `30s` \|/m);
    assert.match(docs, /^- `protocol: https` requires `tls`/m);
    assert.match(docs, /^- `trustedProxies` without `acceptProxyProtocol: true` does nothing\.$/m);
  });
});

describe('listener protocols, TLS and PROXY protocol: values', () => {
  it('resolves every key as written', () => {
    const listeners = httpListener(`protocol: https
tls:
  certificates:
    - { cert: site.crt, key: site.key }
    - { cert: ${join(dir, 'other.crt')}, key: ./sub/../other.key }
  minVersion: TLSv1.3
  alpn: [http/1.1]
acceptProxyProtocol: true
trustedProxies: [10.0.0.0/8, 127.0.0.1, "::1/128", 2001:DB8::/32, 0.0.0.0/0, "::/0", 10.1.2.3/8]
timeouts: { tunnelIdle: 10m }`, '[{ match: { host: www.example.com }, redirect: { scheme: https, host: WWW.Example.com, port: 8443, code: 301 } }, { pool: web }]');
    const config = valid(file(`${listeners}  - name: other\n    bind: 127.0.0.1:8081\n    routes: [{ pool: secure }]\n`, `pools:
  web:
    protocol: h2c
    proxyProtocol: v2
    drainTimeout: 5m
    backends: [{ address: "h:1" }]
  secure:
    proxyProtocol: v1
    backends: [{ address: "h:2", tls: { servername: API.Internal, ca: ca.pem, insecureSkipVerify: true } }]
`));
    const listener = config.listeners[0];
    assert.equal(listener?.protocol, 'https');
    assert.deepEqual(listener?.tls, {
      certificates: [
        { certFile: join(dir, 'site.crt'), keyFile: join(dir, 'site.key') },
        { certFile: join(dir, 'other.crt'), keyFile: join(dir, 'other.key') },
      ],
      minVersion: 'TLSv1.3',
      alpn: ['http/1.1'],
    });
    assert.equal(listener?.acceptProxyProtocol, true);
    assert.deepEqual(listener?.trustedProxies, ['10.0.0.0/8', '127.0.0.1', '::1/128', '2001:db8::/32', '0.0.0.0/0', '::/0', '10.1.2.3/8']);
    assert.equal(listener?.timeouts.tunnelIdleMs, 600_000);
    assert.deepEqual(listener?.routes[0]?.redirect, { scheme: 'https', host: 'www.example.com', port: 8443, code: 301 });
    assert.equal(listener?.routes[0]?.pool, undefined);
    assert.deepEqual([config.pools['web']?.protocol, config.pools['web']?.proxyProtocol, config.pools['web']?.drainTimeoutMs], ['h2c', 'v2', 300_000]);
    assert.deepEqual(config.pools['secure']?.backends[0]?.tls, { servername: 'api.internal', caFile: join(dir, 'ca.pem'), insecureSkipVerify: true });
    assert.equal(config.pools['secure']?.proxyProtocol, 'v1');
  });

  it('reads tcp and tls-passthrough listeners, sni exact and wildcard, lowercased without a trailing dot', () => {
    const config = valid(file(`  - name: db
    bind: 127.0.0.1:5432
    protocol: tcp
    routes: [{ pool: web }]
  - name: sni
    bind: 127.0.0.1:9443
    protocol: tls-passthrough
    routes:
      - { match: { sni: DB.Example.com. }, pool: web }
      - { match: { sni: "*.apps.example.com" }, pool: web }
      - pool: web
`));
    assert.deepEqual(config.listeners.map((l) => l.protocol), ['tcp', 'tls-passthrough']);
    assert.deepEqual(config.listeners[1]?.routes.map((r) => r.match?.sni), ['db.example.com', '*.apps.example.com', undefined]);
  });

  it('rejects unknown protocols and versions, suggesting near misses', () => {
    assert.deepEqual(problems(file(httpListener('protocol: htps'))), [
      'listeners[0].protocol: expected one of http, https, tcp, tls-passthrough (did you mean "https"?), got "htps"',
    ]);
    assert.deepEqual(problems(file(httpListener(`protocol: https\n${TLS(', minVersion: TLSv1.1, alpn: [h3]')}`))), [
      'listeners[0].tls.minVersion: expected one of TLSv1.2, TLSv1.3 (did you mean "TLSv1.2"?), got "TLSv1.1"',
      'listeners[0].tls.alpn[0]: expected one of h2, http/1.1 (did you mean "h2"?), got "h3"',
    ]);
    assert.deepEqual(problems(file(httpListener(), 'pools:\n  web: { protocol: h2, proxyProtocol: v3, backends: [{ address: "h:1" }] }\n')), [
      'pools.web.protocol: expected one of http1, h2c (did you mean "h2c"?), got "h2"',
      'pools.web.proxyProtocol: expected one of v1, v2 (did you mean "v1"?), got "v3"',
    ]);
  });

  it('requires certificates with both files, and at least one ALPN protocol', () => {
    assert.deepEqual(problems(file(httpListener('protocol: https\ntls: { certificates: [], alpn: [] }'))), [
      'listeners[0].tls.certificates: list at least one certificate',
      'listeners[0].tls.alpn: list at least one of h2, http/1.1',
    ]);
    assert.deepEqual(problems(file(httpListener('protocol: https\ntls: { certificates: [{ cert: site.crt }] }'))), [
      'listeners[0].tls.certificates[0]: missing required key "key"',
    ]);
    assert.deepEqual(problems(file(httpListener('protocol: https\ntls: { certificates: [{ cert: "", key: site.key }] }'))), [
      'listeners[0].tls.certificates[0].cert: expected a file path, got ""',
    ]);
    assert.deepEqual(problems(file(httpListener('protocol: https\ntls: {}'))), ['listeners[0].tls: missing required key "certificates"']);
    assert.deepEqual(problems(file(httpListener('protocol: https\ntls: { certificates: [{ crt: a, key: site.key }] }'))), [
      'listeners[0].tls.certificates[0]: missing required key "cert"',
      'listeners[0].tls.certificates[0].crt: unknown key "crt" (did you mean "cert"?)',
    ]);
  });

  it('accepts IPv4 and IPv6 CIDRs and bare addresses in trustedProxies, and says what is wrong with the rest', () => {
    const cases: [string, string][] = [
      ['10.0.0.0/33', 'an IPv4 prefix length is 0 to 32, written after "/"'],
      ['"::1/129"', 'an IPv6 prefix length is 0 to 128, written after "/"'],
      ['10.0.0.0/08', 'an IPv4 prefix length is 0 to 32, written after "/"'],
      ['10.0.0.0/', 'an IPv4 prefix length is 0 to 32, written after "/"'],
      ['10.0.0.0/x', 'an IPv4 prefix length is 0 to 32, written after "/"'],
      ['localhost', 'expected an IP address or CIDR such as "10.0.0.0/8", "127.0.0.1" or "::1/128"'],
      ['10.0.0', 'expected an IP address or CIDR such as "10.0.0.0/8", "127.0.0.1" or "::1/128"'],
      ['256.0.0.1', 'expected an IP address or CIDR such as "10.0.0.0/8", "127.0.0.1" or "::1/128"'],
      ['"[::1]"', 'expected an IP address or CIDR such as "10.0.0.0/8", "127.0.0.1" or "::1/128" (no brackets around IPv6 addresses)'],
      ['"fe80::1%eth0"', 'expected an IP address or CIDR such as "10.0.0.0/8", "127.0.0.1" or "::1/128" (without a "%zone")'],
    ];
    for (const [written, message] of cases) {
      assert.deepEqual(problems(file(httpListener(`acceptProxyProtocol: true\ntrustedProxies: [10.0.0.0/8, ${written}]`))), [
        `listeners[0].trustedProxies[1]: ${message}, got ${JSON.stringify(written.replace(/^"|"$/g, ''))}`,
      ], written);
    }
    assert.deepEqual(problems(file(httpListener('trustedProxies: [10]'))), [
      'listeners[0].trustedProxies[0]: expected an IP address or CIDR such as "10.0.0.0/8", "127.0.0.1" or "::1/128", got 10',
    ]);
    assert.deepEqual(problems(file(httpListener('trustedProxies: 10.0.0.0/8'))), [
      'listeners[0].trustedProxies: expected a list of IP addresses or CIDRs, got "10.0.0.0/8"',
    ]);
  });

  it('checks sni like host, without ports or IP addresses', () => {
    const sni = (value: string): string[] => problems(file(`  - name: t\n    bind: 127.0.0.1:9443\n    protocol: tls-passthrough\n    routes: [{ match: { sni: ${value} }, pool: web }]\n`));
    const expected = 'expected a server name such as "db.example.com" or a wildcard such as "*.example.com"';
    assert.deepEqual(sni('db.example.com:443'), [`listeners[0].routes[0].match.sni: ${expected} (no port), got "db.example.com:443"`]);
    assert.deepEqual(sni('"*"'), [`listeners[0].routes[0].match.sni: ${expected} (no port), got "*"`]);
    assert.deepEqual(sni('a..b'), [`listeners[0].routes[0].match.sni: ${expected} (no port), got "a..b"`]);
    assert.deepEqual(sni('10.0.0.1'), [`listeners[0].routes[0].match.sni: ${expected}: TLS SNI carries names, never IP addresses, got "10.0.0.1"`]);
    assert.deepEqual(sni('"[::1]"'), [`listeners[0].routes[0].match.sni: ${expected}: TLS SNI carries names, never IP addresses, got "[::1]"`]);
  });

  it('checks every redirect key', () => {
    const redirect = (value: string): string[] => problems(file(httpListener('', `[{ redirect: ${value} }]`)));
    assert.deepEqual(redirect('{ scheme: ftp }'), ['listeners[0].routes[0].redirect.scheme: expected one of http, https (did you mean "http"?), got "ftp"']);
    assert.deepEqual(redirect('{ scheme: https, code: 300 }'), ['listeners[0].routes[0].redirect.code: expected one of 301, 302, 303, 307, 308, got 300']);
    assert.deepEqual(redirect('{ scheme: https, code: "308" }'), ['listeners[0].routes[0].redirect.code: expected one of 301, 302, 303, 307, 308, got "308"']);
    assert.deepEqual(redirect('{ scheme: https, port: 0 }'), ['listeners[0].routes[0].redirect.port: port must be an integer in [1, 65535], got 0']);
    assert.deepEqual(redirect('{ host: "example.com:8443" }'), [
      'listeners[0].routes[0].redirect.host: expected a host name such as "www.example.com", an IPv4 address or an IPv6 address in brackets (no port here: set "port"), got "example.com:8443"',
    ]);
    assert.deepEqual(redirect('{ host: "::1" }'), [
      'listeners[0].routes[0].redirect.host: expected a host name such as "www.example.com", an IPv4 address or an IPv6 address in brackets; write IPv6 addresses in brackets, e.g. "[::1]", got "::1"',
    ]);
    assert.deepEqual(redirect('{ host: "https://example.com" }'), [
      'listeners[0].routes[0].redirect.host: expected a host name such as "www.example.com", an IPv4 address or an IPv6 address in brackets (a name, not a URL), got "https://example.com"',
    ]);
    assert.deepEqual(redirect('{ scheme: https, status: 301 }'), ['listeners[0].routes[0].redirect.status: unknown key "status"; expected one of: scheme, host, port, code']);
    assert.deepEqual(redirect('https'), ['listeners[0].routes[0].redirect: expected a redirect mapping, got "https"']);
    assert.deepEqual(listenerOf(file(httpListener('', '[{ match: { path: /x }, redirect: { host: "[2001:DB8::1]", code: 307 } }, { pool: web }]'))).routes[0]?.redirect, { host: '[2001:db8::1]', code: 307 });
    assert.deepEqual(problems(file(httpListener('', '[{ redirect: { host: "[nope]" } }]'))), [
      'listeners[0].routes[0].redirect.host: expected a host name such as "www.example.com", an IPv4 address or an IPv6 address in brackets (with a valid IPv6 address inside the brackets), got "[nope]"',
    ]);
  });

  it('checks backend tls: true, false or a mapping with known keys, a server name and a duration for drainTimeout', () => {
    const backend = (tls: string, pool = ''): string[] => problems(file(httpListener(), `pools:\n  web: { ${pool}backends: [{ address: "h:1", tls: ${tls} }] }\n`));
    assert.deepEqual(backend('yes'), ['pools.web.backends[0].tls: expected true (TLS with the default settings) or a tls mapping, got "yes"']);
    assert.deepEqual(backend('{ caFile: ca.pem }'), ['pools.web.backends[0].tls.caFile: unknown key "caFile"; expected one of: servername, ca, insecureSkipVerify']);
    assert.deepEqual(backend('{ servername: 10.0.0.1 }'), ['pools.web.backends[0].tls.servername: expected a server name such as "api.internal": TLS SNI carries names, never IP addresses, got "10.0.0.1"']);
    assert.deepEqual(backend('{ servername: "*.internal" }'), ['pools.web.backends[0].tls.servername: expected a server name such as "api.internal" (no port), got "*.internal"']);
    assert.deepEqual(backend('{ insecureSkipVerify: "yes" }'), ['pools.web.backends[0].tls.insecureSkipVerify: expected true or false, got "yes"']);
    assert.deepEqual(backend('true', 'drainTimeout: 30, '), ['pools.web.drainTimeout: expected a duration such as "500ms", "5s", "1m", "1h" or "1d" (the unit is required), got 30']);
  });
});

describe('listener protocols, TLS and PROXY protocol: interpolation', () => {
  it('types ${VAR} by the key: booleans, ports and text', () => {
    const text = file(
      httpListener('acceptProxyProtocol: ${ACCEPT}\ntrustedProxies: ["${LB}"]\ntimeouts: { tunnelIdle: "${IDLE}" }', '[{ redirect: { port: "${PORT}", scheme: https } }]'),
      'pools:\n  web: { backends: [{ address: "h:1", tls: { insecureSkipVerify: "${SKIP}" } }] }\n',
    );
    const result = ok(parse(text, { ACCEPT: 'true', LB: '10.0.0.0/8', IDLE: '5m', PORT: '8443', SKIP: 'true' }));
    const listener = result.config.listeners[0];
    assert.deepEqual([listener?.acceptProxyProtocol, listener?.trustedProxies, listener?.timeouts.tunnelIdleMs], [true, ['10.0.0.0/8'], 300_000]);
    assert.deepEqual(listener?.routes[0]?.redirect, { scheme: 'https', port: 8443, code: 308 });
    assert.deepEqual(result.config.pools['web']?.backends[0]?.tls, { insecureSkipVerify: true });
    assert.deepEqual(result.warnings, ['pools.web: pool "web" is not used by any route']);
  });
});

describe('listener protocols, TLS and PROXY protocol: certificate and CA files', () => {
  const https = (certificates: string): string => file(httpListener(`protocol: https\ntls: { certificates: [${certificates}] }`));

  it('resolves relative paths against the config file\'s directory and stores them absolute', () => {
    const tls = listenerOf(https(`{ cert: site.crt, key: ./site.key }, { cert: sub/nested.crt, key: ${join(dir, 'other.key')} }`)).tls;
    assert.deepEqual(tls?.certificates, [
      { certFile: join(dir, 'site.crt'), keyFile: join(dir, 'site.key') },
      { certFile: join(dir, 'sub', 'nested.crt'), keyFile: join(dir, 'other.key') },
    ]);
  });

  it('resolves the same way through loadConfigFile, whatever the working directory', () => {
    const path = join(dir, 'sub', 'usher.yaml');
    writeFileSync(path, https('{ cert: nested.crt, key: ../site.key }'));
    const result = loadConfigFile(path, {});
    assert.deepEqual(ok(result).config.listeners[0]?.tls?.certificates, [{ certFile: join(dir, 'sub', 'nested.crt'), keyFile: join(dir, 'site.key') }]);
    rmSync(path);
  });

  it('reports a file that cannot be read, naming the resolved path and the reason, at the key\'s line and column', () => {
    assert.deepEqual(located(https('{ cert: missing.crt, key: site.key }, { cert: site.crt, key: sub }')), [
      `5:35 listeners[0].tls.certificates[0].cert: cannot read "${join(dir, 'missing.crt')}": no such file (ENOENT)`,
      `5:88 listeners[0].tls.certificates[1].key: cannot read "${join(dir, 'sub')}": it is a directory (EISDIR)`,
    ]);
    assert.deepEqual(problems(https('{ cert: site.crt/x, key: site.key }')), [
      `listeners[0].tls.certificates[0].cert: cannot read "${join(dir, 'site.crt', 'x')}": a part of the path is not a directory (ENOTDIR)`,
    ]);
  });

  it('reports a file without read permission', { skip: process.getuid?.() === 0 ? 'root can read any file' : false }, () => {
    const locked = join(dir, 'locked.key');
    writeFileSync(locked, 'placeholder\n');
    chmodSync(locked, 0o000);
    try {
      assert.deepEqual(problems(https('{ cert: site.crt, key: locked.key }')), [
        `listeners[0].tls.certificates[0].key: cannot read "${locked}": permission denied (EACCES)`,
      ]);
    } finally {
      rmSync(locked, { force: true });
    }
  });

  it('resolves against the working directory when the config file\'s directory does not exist', () => {
    const result = parseConfig(https('{ cert: no-such-cert.crt, key: no-such-cert.key }'), join(dir, 'nowhere', 'deeper', 'u.yaml'), {});
    assert.equal(result.ok, false);
    assert.deepEqual(!result.ok && result.errors.map((e) => e.message), [
      `cannot read "${join(process.cwd(), 'no-such-cert.crt')}": no such file (ENOENT)`,
      `cannot read "${join(process.cwd(), 'no-such-cert.key')}": no such file (ENOENT)`,
    ]);
    const existing = parseConfig(https(`{ cert: ${join(dir, 'site.crt')}, key: ${join(dir, 'site.key')} }`), 'made-up/u.yaml', {});
    assert.deepEqual(ok(existing).config.listeners[0]?.tls?.certificates, [{ certFile: join(dir, 'site.crt'), keyFile: join(dir, 'site.key') }]);
  });

  it('checks and resolves a backend\'s CA file the same way', () => {
    const pools = (ca: string): string => `pools:\n  web: { backends: [{ address: "h:1", tls: { ca: ${ca} } }] }\n`;
    assert.deepEqual(poolOf(file(httpListener(), pools('ca.pem'))).backends[0]?.tls, { caFile: join(dir, 'ca.pem'), insecureSkipVerify: false });
    assert.deepEqual(problems(file(httpListener(), pools('nope.pem'))), [
      `pools.web.backends[0].tls.ca: cannot read "${join(dir, 'nope.pem')}": no such file (ENOENT)`,
    ]);
  });

  it('never reads the content: any readable file passes at this layer', () => {
    writeFileSync(join(dir, 'empty.crt'), '');
    assert.equal(listenerOf(https('{ cert: empty.crt, key: empty.crt }')).tls?.certificates.length, 1);
  });
});

describe('listener protocols, TLS and PROXY protocol: rules across keys', () => {
  it('requires tls on https listeners, and allows it on no other', () => {
    assert.deepEqual(located(file(httpListener('protocol: https'))), [
      '4:15 listeners[0].protocol: protocol "https" requires "tls" with the certificates to serve, e.g. tls: { certificates: [{ cert: example.com.crt, key: example.com.key }] }',
    ]);
    assert.deepEqual(located(file(httpListener(TLS()))), [
      '4:5 listeners[0].tls: tls only applies to protocol "https", but this listener uses "http" (the default); set protocol: https to terminate TLS',
    ]);
    assert.deepEqual(problems(file(`  - name: t\n    bind: 127.0.0.1:9443\n    protocol: tls-passthrough\n    ${TLS()}\n    routes: [{ pool: web }]\n`)), [
      'listeners[0].tls: tls only applies to protocol "https", but this listener uses "tls-passthrough"; a tls-passthrough listener forwards TLS untouched to backends that terminate it; remove tls',
    ]);
    assert.deepEqual(problems(file(`  - name: t\n    bind: 127.0.0.1:5432\n    protocol: tcp\n    ${TLS()}\n    routes: [{ pool: web }]\n`)), [
      'listeners[0].tls: tls only applies to protocol "https", but this listener uses "tcp"; remove tls, or use protocol https or tls-passthrough',
    ]);
  });

  it('rejects an ALPN protocol listed twice', () => {
    assert.deepEqual(located(file(httpListener(`protocol: https\n${TLS(', alpn: [h2, http/1.1, h2]')}`))), [
      '5:84 listeners[0].tls.alpn[2]: ALPN protocol "h2" is listed twice (also alpn[0])',
    ]);
  });

  it('gives each route exactly one of pool and redirect', () => {
    assert.deepEqual(located(file(httpListener('', '\n      - { match: { path: /a }, pool: web, redirect: { scheme: https } }\n      - { match: { path: /b } }\n      - { redirect: { scheme: https } }'))), [
      '5:43 listeners[0].routes[0].redirect: give either "pool" or "redirect", not both',
      '6:9 listeners[0].routes[1]: a route needs "pool" or "redirect"',
    ]);
  });

  it('rejects stripPrefix with a redirect, and checks pool references only for routes with a pool', () => {
    assert.deepEqual(problems(file(httpListener('', '[{ match: { pathPrefix: /api }, redirect: { scheme: https }, stripPrefix: /api }, { pool: web }]'))), [
      'listeners[0].routes[0].stripPrefix: stripPrefix does not apply to a redirect: the new URL keeps the request\'s path; remove stripPrefix',
    ]);
    // A redirect-only listener uses no pool: the pool is reported unused, never "unknown".
    assert.deepEqual(warnings(file(httpListener('', '[{ redirect: { scheme: https } }]'))), ['pools.web: pool "web" is not used by any route']);
    assert.deepEqual(problems(file(httpListener('', '[{ redirect: { scheme: https } }, { pool: nope }]'))), [
      'listeners[0].routes[1].pool: unknown pool "nope"; defined pools: web',
    ]);
  });

  it('gives a tcp listener exactly one route, with a pool and without match, redirect or stripPrefix', () => {
    const tcp = (routes: string): string => file(`  - name: db\n    bind: 127.0.0.1:5432\n    protocol: tcp\n    routes: ${routes}\n`);
    assert.deepEqual(problems(tcp('[{ pool: web }, { pool: web }]')), [
      'listeners[0].routes[1]: a tcp listener has exactly one route (a connection carries nothing to route on), found 2; use one tcp listener per pool, or tls-passthrough to route TLS by SNI',
    ]);
    assert.deepEqual(located(tcp('[{ match: { sni: db.example.com }, pool: web, stripPrefix: /x }]')), [
      '5:16 listeners[0].routes[0].match: a tcp listener does not match: every connection goes to its route\'s pool; remove match (tls-passthrough listeners route TLS by sni)',
      '5:59 listeners[0].routes[0].stripPrefix: stripPrefix only applies to "http" and "https" listeners, but this one uses "tcp"',
    ]);
    assert.deepEqual(problems(tcp('[{ redirect: { scheme: https } }]')), [
      'listeners[0].routes[0].redirect: redirect only applies to "http" and "https" listeners, but this one uses "tcp"',
    ]);
    assert.deepEqual(problems(tcp('[{ name: db }]')), ['listeners[0].routes[0]: a route needs "pool"']);
  });

  it('lets tls-passthrough routes match only sni; a route without match is the catch-all', () => {
    const passthrough = (routes: string): string => file(`  - name: t\n    bind: 127.0.0.1:9443\n    protocol: tls-passthrough\n    routes:\n${routes}`);
    assert.deepEqual(located(passthrough('      - { match: { sni: a.example.com, host: a.example.com, pathPrefix: /x }, pool: web }\n      - { redirect: { scheme: https }, stripPrefix: /x }\n')), [
      '6:40 listeners[0].routes[0].match.host: only "sni" can be matched on a tls-passthrough listener (the rest of the connection is encrypted), found "host"',
      '6:61 listeners[0].routes[0].match.pathPrefix: only "sni" can be matched on a tls-passthrough listener (the rest of the connection is encrypted), found "pathPrefix"',
      '7:11 listeners[0].routes[1].redirect: redirect only applies to "http" and "https" listeners, but this one uses "tls-passthrough"',
      '7:40 listeners[0].routes[1].stripPrefix: stripPrefix only applies to "http" and "https" listeners, but this one uses "tls-passthrough"',
    ]);
    assert.deepEqual(warnings(passthrough('      - { match: { sni: a.example.com }, pool: web }\n      - pool: web\n      - { match: { sni: b.example.com }, pool: web }\n')), [
      'listeners[0].routes[2]: this route is never reached: routes[1] before it matches every connection',
    ]);
  });

  it('allows sni only on tls-passthrough listeners', () => {
    assert.deepEqual(problems(file(httpListener('', '[{ match: { sni: a.example.com }, pool: web }]'))), [
      'listeners[0].routes[0].match.sni: sni only applies to tls-passthrough listeners, but this one uses "http" (the default)',
    ]);
    assert.deepEqual(problems(file(httpListener(`protocol: https\n${TLS()}`, '[{ match: { sni: a.example.com }, pool: web }]'))), [
      'listeners[0].routes[0].match.sni: sni only applies to tls-passthrough listeners, but this one uses "https"; on an https listener match "host"',
    ]);
  });

  it('allows redirects on http and https listeners', () => {
    const config = valid(file(`${httpListener('', '[{ redirect: { scheme: https } }]')}  - name: s\n    bind: 127.0.0.1:8443\n    protocol: https\n    ${TLS()}\n    routes: [{ match: { host: example.com }, redirect: { host: www.example.com } }, { pool: web }]\n`));
    assert.deepEqual(config.listeners.map((l) => l.routes[0]?.redirect), [{ scheme: 'https', code: 308 }, { host: 'www.example.com', code: 308 }]);
  });

  it('warns about a redirect that keeps the listener\'s scheme and the host', () => {
    const loop = (protocol: string, redirect: string): string[] =>
      warnings(file(httpListener(protocol === 'https' ? `protocol: https\n${TLS()}` : '', `[{ match: { path: /x }, redirect: ${redirect} }, { pool: web }]`)));
    const message = (scheme: string): string => `listeners[0].routes[0].redirect: this redirect keeps the request's scheme ("${scheme}") and host, so clients may be sent back here in a loop; set scheme, host or port`;
    assert.deepEqual(loop('http', '{}'), [message('http')]);
    assert.deepEqual(loop('http', '{ scheme: http, code: 301 }'), [message('http')]);
    assert.deepEqual(loop('https', '{ scheme: https }'), [message('https')]);
    assert.deepEqual(loop('http', '{ scheme: https }'), []);
    assert.deepEqual(loop('https', '{ scheme: http }'), []);
    assert.deepEqual(loop('http', '{ host: www.example.com }'), []);
    assert.deepEqual(loop('http', '{ port: 8080 }'), []);
  });

  it('requires trustedProxies with acceptProxyProtocol, and warns about trustedProxies alone', () => {
    assert.deepEqual(located(file(httpListener('acceptProxyProtocol: true'))), [
      '4:26 listeners[0].acceptProxyProtocol: acceptProxyProtocol: true requires "trustedProxies": the addresses or CIDRs of the load balancers allowed to send a PROXY header (anyone else could forge client addresses), e.g. trustedProxies: [10.0.0.0/8]',
    ]);
    assert.deepEqual(located(file(httpListener('acceptProxyProtocol: true\ntrustedProxies: []'))), [
      '5:21 listeners[0].trustedProxies: acceptProxyProtocol: true requires at least one trusted proxy: list the addresses or CIDRs of the load balancers allowed to send a PROXY header',
    ]);
    assert.deepEqual(warnings(file(httpListener('trustedProxies: [10.0.0.0/8]'))), ['listeners[0].trustedProxies: trustedProxies has no effect without acceptProxyProtocol: true']);
    assert.deepEqual(warnings(file(httpListener('acceptProxyProtocol: false\ntrustedProxies: [10.0.0.0/8]'))), ['listeners[0].trustedProxies: trustedProxies has no effect without acceptProxyProtocol: true']);
    assert.deepEqual(warnings(file(httpListener('acceptProxyProtocol: false\ntrustedProxies: []'))), []);
    assert.deepEqual(listenerOf(file(httpListener('acceptProxyProtocol: true\ntrustedProxies: [10.0.0.0/8]'))).trustedProxies, ['10.0.0.0/8']);
  });

  it('rejects TLS backends in an h2c pool', () => {
    const pool = (protocol: string, tls: string): string => file(httpListener(), `pools:\n  web:\n    protocol: ${protocol}\n    backends: [{ address: "h:1", tls: ${tls} }, { address: "h:2" }]\n`);
    assert.deepEqual(located(pool('h2c', 'true')), ['8:34 pools.web.backends[0].tls: h2c is cleartext; for TLS backends use protocol http1 (this pool has protocol "h2c")']);
    assert.deepEqual(problems(pool('h2c', '{ servername: a.internal }')), ['pools.web.backends[0].tls: h2c is cleartext; for TLS backends use protocol http1 (this pool has protocol "h2c")']);
    assert.equal(poolOf(pool('h2c', 'false')).protocol, 'h2c');
    assert.deepEqual(poolOf(pool('http1', 'true')).backends[0]?.tls, { insecureSkipVerify: false });
  });

  it('applies limits to http and https listeners only; timeouts.tunnelIdle to all', () => {
    const l4 = (protocol: string, extra: string): string => file(`  - name: t\n    bind: 127.0.0.1:5432\n    protocol: ${protocol}\n    ${extra}\n    routes: [{ pool: web }]\n`);
    assert.deepEqual(located(l4('tcp', 'limits: { maxConnections: 10 }')), [
      '5:5 listeners[0].limits: limits only apply to "http" and "https" listeners, but this one uses "tcp"; remove limits (timeouts.tunnelIdle closes idle connections)',
    ]);
    assert.deepEqual(problems(l4('tls-passthrough', 'limits: {}')), [
      'listeners[0].limits: limits only apply to "http" and "https" listeners, but this one uses "tls-passthrough"; remove limits (timeouts.tunnelIdle closes idle connections)',
    ]);
    assert.equal(listenerOf(l4('tcp', 'timeouts: { tunnelIdle: 90s }')).timeouts.tunnelIdleMs, 90_000);
    assert.equal(listenerOf(l4('tls-passthrough', 'timeouts: { tunnelIdle: 2h }')).timeouts.tunnelIdleMs, 7_200_000);
    assert.equal(listenerOf(file(httpListener(`protocol: https\n${TLS()}\nlimits: { maxHeaders: 50 }\ntimeouts: { tunnelIdle: 1m }`))).timeouts.tunnelIdleMs, 60_000);
  });

  it('warns that pools used by tcp and tls-passthrough listeners ignore sticky and HTTP retry statuses', () => {
    const pools = `pools:
  web:
    sticky: {}
    retry: { on: [connect-failure, 503, "504"] }
    backends: [{ address: "h:1" }]
  quiet:
    retry: { attempts: 1 }
    backends: [{ address: "h:2" }]
`;
    const listeners = `  - name: http\n    bind: 127.0.0.1:8080\n    routes: [{ match: { path: /q }, pool: quiet }, { pool: web }]\n  - name: db\n    bind: 127.0.0.1:5432\n    protocol: tcp\n    routes: [{ pool: web }]\n  - name: t\n    bind: 127.0.0.1:9443\n    protocol: tls-passthrough\n    routes: [{ pool: quiet }]\n`;
    assert.deepEqual(warnings(file(listeners, pools)), [
      'pools.web.sticky: sticky is ignored on connections from tcp and tls-passthrough listeners (listeners[1] uses this pool): they carry no cookies',
      'pools.web.retry.on: retry on 503, 504 is ignored on connections from tcp and tls-passthrough listeners (listeners[1] uses this pool): they see no HTTP status (connect-failure still applies)',
    ]);
    // Used by http listeners only: nothing to say.
    assert.deepEqual(warnings(file(httpListener(), pools.replace(/  quiet:[^]*$/, ''))), []);
  });

  it('reports every problem at once, in line order, with schema errors', () => {
    const text = file(`  - name: web
    bind: 127.0.0.1:8080
    protocol: https
    acceptProxyProtocol: true
    routes:
      - { match: { sni: a.example.com }, pool: web, redirect: { scheme: https } }
  - name: db
    bind: 127.0.0.1:5432
    protocol: tcp
    trustedProxies: [10.0.0.0/40]
    routes: [{ pool: web, match: { host: a } }, { pool: web }]
`, `pools:
  web:
    protocol: h2c
    backends: [{ address: "h:1", tls: { ca: missing.pem } }]
`);
    assert.deepEqual(located(text), [
      '4:15 listeners[0].protocol: protocol "https" requires "tls" with the certificates to serve, e.g. tls: { certificates: [{ cert: example.com.crt, key: example.com.key }] }',
      '5:26 listeners[0].acceptProxyProtocol: acceptProxyProtocol: true requires "trustedProxies": the addresses or CIDRs of the load balancers allowed to send a PROXY header (anyone else could forge client addresses), e.g. trustedProxies: [10.0.0.0/8]',
      '7:20 listeners[0].routes[0].match.sni: sni only applies to tls-passthrough listeners, but this one uses "https"; on an https listener match "host"',
      '7:53 listeners[0].routes[0].redirect: give either "pool" or "redirect", not both',
      '11:22 listeners[1].trustedProxies[0]: an IPv4 prefix length is 0 to 32, written after "/", got "10.0.0.0/40"',
      '12:27 listeners[1].routes[0].match: a tcp listener does not match: every connection goes to its route\'s pool; remove match (tls-passthrough listeners route TLS by sni)',
      '12:49 listeners[1].routes[1]: a tcp listener has exactly one route (a connection carries nothing to route on), found 2; use one tcp listener per pool, or tls-passthrough to route TLS by SNI',
      '16:34 pools.web.backends[0].tls: h2c is cleartext; for TLS backends use protocol http1 (this pool has protocol "h2c")',
      `16:45 pools.web.backends[0].tls.ca: cannot read "${join(dir, 'missing.pem')}": no such file (ENOENT)`,
    ]);
  });
});
