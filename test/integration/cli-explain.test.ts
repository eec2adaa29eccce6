/**
 * `usher explain` through the real CLI: for each route before the match, the
 * first condition that failed, in words; the match's action (pool and the
 * path the backend sees, or the redirect), the pool, its backends and, for
 * hash pools, the backend the request's key picks; `--json`; `-H`; no match
 * (exit 1); a wrong command line (exit 2); `--admin` against a real running
 * usher with a drained backend; and the predicted hash pick is the backend a
 * real usher sends the request to.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { request } from 'undici';
import { parseConfig } from '../../src/config/index.ts';
import { explain, type Explanation } from '../../src/explain/explain.ts';
import type { PickExplanation } from '../../src/explain/pool.ts';
import { readExplainRequest } from '../../src/explain/request.ts';
import { runCli } from '../helpers/cli.ts';
import { startOrigin } from '../helpers/origin.ts';
import { startUsher } from '../helpers/usher.ts';

const routesYaml = `listeners:
  - name: web
    bind: 127.0.0.1:18080
    routes:
      - name: to-https
        match: { host: old.example.com }
        redirect: { scheme: https, host: www.example.com, code: 301 }
      - name: admin
        match: { pathPrefix: /admin/, methods: [GET] }
        pool: admin
      - name: canary
        match: { pathPrefix: /api, headers: { x-canary: "1" } }
        pool: api
      - name: users
        match: { pathRegex: "/users/[0-9]+", query: { v: "~v[23]" } }
        pool: users
      - name: beta
        match: { host: "*.example.com", cookies: { plan: beta } }
        pool: api
      - name: api
        match: { pathPrefix: /api }
        stripPrefix: /api
        pool: sessions
  - name: internal
    bind: 127.0.0.1:18081
    routes:
      - pool: admin
  - name: db
    protocol: tcp
    bind: 127.0.0.1:15432
    routes:
      - pool: admin
pools:
  admin:
    backends: [{ address: 127.0.0.1:3001 }]
  api:
    algorithm: round-robin
    backends: [{ address: 127.0.0.1:3001 }, { address: 127.0.0.1:3002, weight: 2 }]
  users:
    algorithm: maglev
    hashKey: header:x-user-id
    backends:
      - { address: 10.0.0.5:3000, name: alpha }
      - { address: 10.0.0.6:3000, name: beta, weight: 2 }
      - { address: 10.0.0.7:3000, backup: true }
  sessions:
    algorithm: hash
    hashKey: query:id
    backends:
      - { address: 10.0.0.8:3000, state: draining }
      - { address: 10.0.0.9:3000 }
      - { address: 10.0.1.1:3000 }
`;

function tempConfig(t: { after(fn: () => void): void }, yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'usher-explain-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'usher.yaml');
  writeFileSync(file, yaml);
  return file;
}

test('usher explain on a multi-route config: why each earlier route fails, what the match does', async (t) => {
  const file = tempConfig(t, routesYaml);

  await t.test('host, methods, headers, regex and cookies fail in words; stripPrefix shows the path the backend sees; hash pick', async () => {
    const result = await runCli(['explain', '-c', file, 'POST', 'http://api.example.com:18080/api/users?id=7']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.stdout.trimEnd().split('\n'), [
      'request: POST /api/users?id=7 (Host: api.example.com:18080)',
      "listener: web (http 127.0.0.1:18080), chosen as it is bound to the URL's port 18080",
      'route 0 to-https: no match: host api.example.com:18080 does not match old.example.com',
      'route 1 admin: no match: method POST not in [GET]',
      'route 2 canary: no match: header x-canary is missing',
      'route 3 users: no match: path /api/users does not match the regex /users/[0-9]+ (whole path)',
      'route 4 beta: no match: cookie plan is missing',
      'route 5 api: match: path /api/users starts with /api',
      'action: proxy to pool sessions; the backend sees POST /users?id=7 (stripPrefix /api)',
      'filters: none',
      'pool sessions: algorithm hash on query:id, mode primary (from the file; health is known only with --admin)',
      '  backend 10.0.0.8:3000: weight 1, draining',
      '  backend 10.0.0.9:3000: weight 1, enabled',
      '  backend 10.0.1.1:3000: weight 1, enabled',
      'pick: hash on query:id = "7" picks 10.0.0.9:3000',
    ]);
  });

  await t.test('-H reaches the canary route; a value that differs is named', async () => {
    const canary = await runCli(['explain', '-c', file, '-H', 'X-Canary: 1', 'GET', 'http://api.example.com:18080/api/x']);
    assert.equal(canary.code, 0, canary.stderr);
    assert.match(canary.stdout, /^route 2 canary: match: path \/api\/x starts with \/api; header x-canary is "1"$/m);
    assert.match(canary.stdout, /^action: proxy to pool api; the backend sees GET \/api\/x$/m);
    assert.match(canary.stdout, /^pool api: algorithm round-robin, mode primary/m);
    assert.match(canary.stdout, /^ {2}backend 127\.0\.0\.1:3002: weight 2, enabled$/m);
    assert.match(canary.stdout, /^pick: round-robin depends on load and chance: any available candidate$/m);
    const other = await runCli(['explain', '-c', file, '-H', 'x-canary: 0', 'GET', 'http://api.example.com:18080/api/x']);
    assert.match(other.stdout, /^route 2 canary: no match: header x-canary is "0", not "1"$/m);
  });

  await t.test('regex and query; the Maglev pick of a header key; a host from -H; the listener by port', async () => {
    const users = await runCli(['explain', '-c', file, '-H', 'x-user-id: 42', '-H', 'Host: x.example.com', 'GET', '/users/12?v=v2']);
    assert.equal(users.code, 0, users.stderr);
    assert.match(users.stdout, /^listener: web \(http 127\.0\.0\.1:18080\), chosen as the first http\/https listener$/m);
    assert.match(users.stdout, /^route 3 users: match: path \/users\/12 matches the regex \/users\/\[0-9\]\+ \(whole path\); query parameter v "v2" matches ~v\[23\]$/m);
    assert.match(users.stdout, /^ {2}backend 10\.0\.0\.7:3000: weight 1, backup, enabled$/m);
    assert.match(users.stdout, /^pick: maglev on header:x-user-id = "42" picks 10\.0\.0\.\d:3000/m);
    const wrongQuery = await runCli(['explain', '-c', file, 'GET', 'http://x.example.com/users/12?v=v1']);
    assert.match(wrongQuery.stdout, /^route 3 users: no match: query parameter v "v1" does not match ~v\[23\]$/m);
    const cookie = await runCli(['explain', '-c', file, '-H', 'Cookie: a=1; plan=beta', 'GET', 'http://x.example.com/x']);
    assert.match(cookie.stdout, /^route 4 beta: match: host x\.example\.com matches \*\.example\.com; cookie plan is "beta"$/m);
    const byPort = await runCli(['explain', '-c', file, 'GET', 'http://127.0.0.1:18081/anything']);
    assert.match(byPort.stdout, /^listener: internal \(http 127\.0\.0\.1:18081\), chosen as it is bound to the URL's port 18081$/m);
    assert.match(byPort.stdout, /^route 0 route-0: match: catch-all \(no match conditions\)$/m);
    const named = await runCli(['explain', '-c', file, '--listener', 'internal', 'GET', '/anything']);
    assert.match(named.stdout, /^listener: internal \(http 127\.0\.0\.1:18081\), chosen as --listener$/m);
  });

  await t.test('a redirect route shows the Location', async () => {
    const result = await runCli(['explain', '-c', file, 'GET', 'http://old.example.com/a?b=1']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^route 0 to-https: match: host old\.example\.com matches old\.example\.com$/m);
    assert.match(result.stdout, /^action: redirect 301 to https:\/\/www\.example\.com\/a\?b=1$/m);
    assert.doesNotMatch(result.stdout, /^pool /m);
  });

  await t.test('no match: every route says why, exit 1', async () => {
    const result = await runCli(['explain', '-c', file, 'GET', '/nothing']);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /^route 0 to-https: no match: the request has no Host; the route needs host old\.example\.com$/m);
    assert.match(result.stdout, /^route 1 admin: no match: path \/nothing does not start with \/admin\/$/m);
    assert.match(result.stdout, /^route 5 api: no match: path \/nothing does not start with \/api$/m);
    assert.match(result.stdout, /^no route matches: usher answers 404 \(no_route\)$/m);
  });

  await t.test('--json', async () => {
    const result = await runCli(['explain', '-c', file, '--json', '-H', 'x-user-id: 42', 'GET', 'http://x.example.com/users/12?v=v3']);
    assert.equal(result.code, 0, result.stderr);
    const body = JSON.parse(result.stdout) as Explanation;
    assert.deepEqual(body.request, { method: 'GET', url: 'http://x.example.com/users/12?v=v3', host: 'x.example.com', target: '/users/12?v=v3' });
    assert.deepEqual(body.routes.map((r) => [r.index, r.name, r.matched]), [[0, 'to-https', false], [1, 'admin', false], [2, 'canary', false], [3, 'users', true]]);
    assert.equal(body.routes[1]!.reason, 'path /users/12 does not start with /admin/');
    assert.deepEqual(body.routes[1]!.conditions.map((c) => [c.key, c.ok]), [['methods', true], ['pathPrefix', false]]);
    assert.deepEqual(body.match, { index: 3, name: 'users', action: 'proxy', pool: 'users', upstream: { method: 'GET', target: '/users/12?v=v3' }, stripPrefix: null, redirect: null, filters: null });
    assert.equal(body.pool?.algorithm, 'maglev');
    assert.equal(body.pool?.hashKey, 'header:x-user-id');
    assert.equal(body.pool?.mode, 'primary');
    assert.equal(body.pool?.source, 'file');
    assert.deepEqual(body.pool?.backends.map((b) => [b.address, b.name, b.weight, b.backup, b.state]), [
      ['10.0.0.5:3000', 'alpha', 1, false, 'enabled'],
      ['10.0.0.6:3000', 'beta', 2, false, 'enabled'],
      ['10.0.0.7:3000', null, 1, true, 'enabled'],
    ]);
    assert.equal(body.pool?.pick.computable, true);
    assert.match(body.pool?.pick.backend ?? '', /^10\.0\.0\.[56]:3000$/);
  });

  await t.test('a wrong command line: exit 2 with what is wrong', async () => {
    const cases: readonly (readonly [readonly string[], RegExp])[] = [
      [['explain', '-c', file, 'GET'], /give METHOD and URL/],
      [['explain', '-c', file, 'GET', 'api.example.com/x'], /URL must be absolute \(http:\/\/host\/path\) or a path starting with "\/"/],
      [['explain', '-c', file, '-H', 'no-colon', 'GET', '/x'], /-H takes 'name: value', got "no-colon"/],
      [['explain', '-c', file, 'G E T', '/x'], /METHOD must be an HTTP method/],
      [['explain', '-c', file, '--listener', 'nope', 'GET', '/x'], /no listener is named "nope"; listeners: web, internal, db/],
      [['explain', '-c', file, '--listener', 'db', 'GET', '/x'], /listener db is a tcp listener/],
      [['explain', 'GET', '/x'], /give the config file with -c FILE/],
      [['explain', '-c', file, '--bogus', 'GET', '/x'], /Unknown option '--bogus'/],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(args);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
    }
  });
});

test('usher explain --admin shows live health, drain state and mode from a running usher', async (t) => {
  const a = await startOrigin('a');
  const b = await startOrigin('b');
  const token = 'explain-test-token-0123456789';
  const yaml = `listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: main
pools:
  main:
    algorithm: round-robin
    backends:
      - { address: ${a.address}, name: a }
      - { address: ${b.address}, name: b }
admin:
  bind: 127.0.0.1:0
  token: ${token}
accessLog:
  enabled: false
`;
  const usher = await startUsher(yaml);
  t.after(async () => {
    await usher.stop({ timeoutMs: 0 });
    await Promise.all([a.close(), b.close()]);
  });
  const file = tempConfig(t, yaml);
  const drained = await request(`${usher.adminUrl}/api/pools/main/backends/${encodeURIComponent(b.address)}/drain`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(drained.statusCode, 200);
  await drained.body.text();

  // From the file alone, b is enabled; live, it is draining. The token comes from the file's admin section.
  const fromFile = await runCli(['explain', '-c', file, 'GET', '/x']);
  assert.match(fromFile.stdout, new RegExp(`^ {2}backend ${b.address} \\(b\\): weight 1, enabled$`, 'm'));
  const live = await runCli(['explain', '-c', file, '--admin', usher.adminUrl!, 'GET', '/x']);
  assert.equal(live.code, 0, live.stderr);
  assert.match(live.stdout, /^pool main: algorithm round-robin, mode primary \(live, from the admin API\)$/m);
  assert.match(live.stdout, new RegExp(`^ {2}backend ${a.address} \\(a\\): weight 1, healthy, 0 in flight$`, 'm'));
  assert.match(live.stdout, new RegExp(`^ {2}backend ${b.address} \\(b\\): weight 1, draining, 0 in flight$`, 'm'));
  const json = JSON.parse((await runCli(['explain', '-c', file, '--admin', usher.adminUrl!, '--json', 'GET', '/x'])).stdout) as Explanation;
  assert.equal(json.pool?.source, 'live');
  assert.deepEqual(json.pool?.backends.map((backend) => [backend.name, backend.state, backend.available]), [['a', 'healthy', true], ['b', 'draining', false]]);

  // Both drained: the live mode is none, and explain says usher answers 503.
  const second = await request(`${usher.adminUrl}/api/pools/main/backends/${encodeURIComponent(a.address)}/drain`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
  await second.body.text();
  const none = await runCli(['explain', '-c', file, '--admin', usher.adminUrl!, 'GET', '/x']);
  assert.match(none.stdout, /^pool main: algorithm round-robin, mode none \(live, from the admin API\)$/m);
  assert.match(none.stdout, /^pick: no backend is available: usher answers 503 \(no_backend\)$/m);

  // A file that has drifted from the running usher: its pool is not live, and explain says so.
  const drifted = tempConfig(t, yaml.replaceAll('main', 'renamed'));
  const notLive = await runCli(['explain', '-c', drifted, '--admin', usher.adminUrl!, 'GET', '/x']);
  assert.equal(notLive.code, 0, notLive.stderr);
  assert.match(notLive.stdout, /^pool renamed: algorithm round-robin, mode primary \(from the file: the running usher has no such pool; reload it\?\)$/m);

  // A wrong token is refused by the admin API: exit 1 and its message.
  const refused = await runCli(['explain', '-c', file, '--admin', usher.adminUrl!, '--token', 'wrong-token-0123456789', 'GET', '/x']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /admin API at .*: /);
});

test('the backend explain predicts for a hash key is the one a real usher sends the request to', async (t) => {
  const origins = await Promise.all(['a', 'b', 'c', 'd'].map((name) => startOrigin(name)));
  for (const [algorithm, hashKey] of [['maglev', 'header:x-user-id'], ['hash', 'query:id']] as const) {
    const yaml = `listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: main
pools:
  main:
    algorithm: ${algorithm}
    hashKey: ${hashKey}
    backends:
${origins.map((origin, i) => `      - { address: ${origin.address}, weight: ${i + 1}${i === 1 ? ', state: draining' : ''} }\n`).join('')}`;
    const usher = await startUsher(yaml);
    const parsed = parseConfig(yaml, 'test.yaml', {});
    assert.ok(parsed.ok);
    const seen = new Set<string>();
    for (let user = 0; user < 24; user++) {
      const headers = hashKey.startsWith('header') ? [`x-user-id: user-${user}`] : [];
      const url = hashKey.startsWith('query') ? `/p?id=user-${user}` : '/p';
      const predicted: string | null = explain(parsed.config, readExplainRequest('GET', url, headers)).pool!.pick.backend;
      const res = await request(`${usher.url('web')}${url}`, { headers: hashKey.startsWith('header') ? { 'x-user-id': `user-${user}` } : {} });
      const served = origins.find((origin) => origin.name === (res.headers['x-origin'] as string))!;
      await res.body.text();
      assert.equal(predicted, served.address, `${algorithm} user-${user}`);
      seen.add(served.name);
    }
    assert.ok(seen.size >= 2, `${algorithm}: the keys spread over several backends (${[...seen].join(',')})`);
    assert.ok(!seen.has('b'), 'the draining backend takes none');
    await usher.stop({ timeoutMs: 0 });
  }
  await Promise.all(origins.map((origin) => origin.close()));
});

test('a sticky cookie signed with a known secret: explain names the backend it pins, as usher routes it', async (t) => {
  const origins = await Promise.all(['a', 'b', 'c'].map((name) => startOrigin(name)));
  const yaml = (secret: string): string => `listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: main
pools:
  main:
    sticky: { cookie: pin${secret} }
    backends:
${origins.map((origin) => `      - address: ${origin.address}\n`).join('')}`;
  const usher = await startUsher(yaml(', secret: explain-sticky-secret-0123'));
  t.after(async () => {
    await usher.stop({ timeoutMs: 0 });
    await Promise.all(origins.map((origin) => origin.close()));
  });
  const parsed = parseConfig(yaml(', secret: explain-sticky-secret-0123'), 'test.yaml', {});
  assert.ok(parsed.ok);
  for (let i = 0; i < 4; i++) {
    const first = await request(usher.url('web'));
    await first.body.text();
    const cookie = String(first.headers['set-cookie']).split(';')[0]!;
    const pinned: PickExplanation = explain(parsed.config, readExplainRequest('GET', '/', [`cookie: ${cookie}`])).pool!.pick;
    assert.equal(pinned.computable, true);
    assert.match(pinned.text, /^the pin cookie pins 127\.0\.0\.1:\d+$/);
    const again = await request(usher.url('web'), { headers: { cookie } });
    await again.body.text();
    assert.equal(pinned.backend, origins.find((origin) => origin.name === again.headers['x-origin'])!.address);
  }
  // Without a secret the key is made at start: explain says it cannot tell.
  const unsigned = parseConfig(yaml(''), 'test.yaml', {});
  assert.ok(unsigned.ok);
  const unknown = explain(unsigned.config, readExplainRequest('GET', '/', ['cookie: pin=abc'])).pool!.pick;
  assert.equal(unknown.computable, false);
  assert.match(unknown.text, /key made at start \(no sticky\.secret\): cannot tell/);
});
