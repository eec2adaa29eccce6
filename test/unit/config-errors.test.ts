import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatIssue, parseConfig, type ConfigIssue } from '../../src/config/index.ts';

/** [line, column, path, message] for every error; fails if the config is valid. */
function errorsOf(yaml: string, env: NodeJS.ProcessEnv = {}, file = 'usher.yaml'): (string | number | undefined)[][] {
  const result = parseConfig(yaml, file, env);
  if (result.ok) assert.fail('expected errors, the config is valid');
  for (const issue of result.errors) assert.equal(issue.file, file);
  return result.errors.map((e: ConfigIssue) => [e.line, e.column, e.path, e.message]);
}

const VALID_TAIL = `pools:
  web:
    backends:
      - address: 127.0.0.1:3001
`;

describe('config errors: one file, every problem, in line order', () => {
  it('reports each class of problem with its exact position, key path and message', () => {
    const yaml = `listeners:
  - name: web
    bind: 127.0.0.1:8080
    protocl: http
    routes:
      - match:
          host: "api.example.com:80"
          pathPrefx: /api/
          pathRegex: "([a-z]+"
          methods: [GET, post]
          headers: { x-canary: 1, x-ab: "~[" }
          query: { v: "~(?<n>a)(?<n>b)" }
        pool: apii
        stripPrefix: api
      - pool: web
  - name: web
    bind: 127.0.0.1:8080
    routes: []
pools:
  web:
    algorithm: roundrobin
    backends:
      - address: 127.0.0.1:3001
        weight: 0
      - address: localhost
      - address: 127.0.0.1:70000
      - address: 127.0.0.1:3001
  api:
    algorithm: p2c
    hashKey: header:x-user
    hashBalanceFactor: 99
    timeouts: { connect: 30, response: 0s, idle: 5 minutes }
    sticky: { ttl: 500ms, secret: short }
    backends: []
  empty: {}
accessLog: { enabled: "yes", pat: x }
`;
    assert.deepEqual(errorsOf(yaml), [
      [4, 5, 'listeners[0].protocl', 'unknown key "protocl" (did you mean "protocol"?)'],
      [7, 17, 'listeners[0].routes[0].match.host', 'expected a hostname such as "api.example.com" or a wildcard such as "*.example.com" (no port), got "api.example.com:80"'],
      [8, 11, 'listeners[0].routes[0].match.pathPrefx', 'unknown key "pathPrefx" (did you mean "pathPrefix"?)'],
      [9, 22, 'listeners[0].routes[0].match.pathRegex', 'invalid regular expression: Unterminated group, got "([a-z]+"'],
      [10, 26, 'listeners[0].routes[0].match.methods[1]', 'expected an uppercase HTTP method such as "GET", got "post"'],
      [11, 32, 'listeners[0].routes[0].match.headers.x-canary', 'expected a string (quote numbers and booleans, e.g. "1"), got 1'],
      [11, 41, 'listeners[0].routes[0].match.headers.x-ab', 'invalid regular expression: Unterminated character class (after "~"), got "~["'],
      [12, 23, 'listeners[0].routes[0].match.query.v', 'invalid regular expression: Duplicate capture group name (after "~"), got "~(?<n>a)(?<n>b)"'],
      [13, 15, 'listeners[0].routes[0].pool', 'unknown pool "apii" (did you mean "api"?); defined pools: web, api, empty'],
      [14, 22, 'listeners[0].routes[0].stripPrefix', 'expected a path starting with "/", got "api"'],
      [16, 11, 'listeners[1].name', 'duplicate listener name "web" (also listeners[0])'],
      [17, 11, 'listeners[1].bind', 'bind "127.0.0.1:8080" is also used by listeners[0] (same port)'],
      [18, 13, 'listeners[1].routes', 'a listener needs at least one route'],
      [21, 16, 'pools.web.algorithm', 'expected one of p2c, round-robin, least-connections, random, ewma, hash, maglev, or a balancer module ({ module: ./balancer.ts }) (did you mean "round-robin"?), got "roundrobin"'],
      [24, 17, 'pools.web.backends[0].weight', 'weight must be an integer in [1, 1000], got 0'],
      [25, 18, 'pools.web.backends[1].address', 'expected host:port, got "localhost"'],
      [26, 18, 'pools.web.backends[2].address', 'port must be an integer in [1, 65535], got "127.0.0.1:70000"'],
      [27, 18, 'pools.web.backends[3].address', 'duplicate backend "127.0.0.1:3001" (also backends[0]); raise its weight instead'],
      [30, 5, 'pools.api.hashKey', 'hashKey only applies to algorithm "hash" or "maglev", but this pool uses "p2c"'],
      [31, 5, 'pools.api.hashBalanceFactor', 'hashBalanceFactor only applies to algorithm "hash" or "maglev", but this pool uses "p2c"'],
      [31, 24, 'pools.api.hashBalanceFactor', 'hashBalanceFactor must be an integer in [100, 1000], got 99'],
      [32, 26, 'pools.api.timeouts.connect', 'expected a duration such as "500ms", "5s", "1m", "1h" or "1d" (the unit is required), got 30'],
      [32, 40, 'pools.api.timeouts.response', 'duration must be greater than 0, got "0s"'],
      [32, 50, 'pools.api.timeouts.idle', 'expected a duration such as "500ms", "5s", "1m", "1h" or "1d", got "5 minutes"'],
      [33, 20, 'pools.api.sticky.ttl', 'duration must be at least 1s (it is the cookie\'s Max-Age in seconds), got "500ms"'],
      [33, 35, 'pools.api.sticky.secret', 'secret must be at least 16 characters, got 5 characters (not shown: it is a secret)'],
      [36, 23, 'accessLog.enabled', 'expected true or false, got "yes"'],
      [36, 30, 'accessLog.pat', 'unknown key "pat" (did you mean "path"?)'],
    ]);
  });

  it('formats issues as file:line:col path: message', () => {
    const result = parseConfig(`listeners:\n  - name: web\n    bind: 127.0.0.1:8080\n    routes: [{ pool: web }]\n${VALID_TAIL}      - address: localhost\n`, 'usher.yaml', {});
    assert.equal(result.ok, false);
    assert.deepEqual(!result.ok && result.errors.map(formatIssue), [
      'usher.yaml:9:18 pools.web.backends[1].address: expected host:port, got "localhost"',
    ]);
  });

  it('lists the allowed keys when an unknown key is not a near miss', () => {
    assert.deepEqual(errorsOf(`listeners: [{ name: a, bind: "h:1", routes: [{ pool: web }] }]\n${VALID_TAIL}frobnicate: 1\n`), [
      [6, 1, 'frobnicate', 'unknown key "frobnicate"; expected one of: listeners, pools, accessLog, log, admin, shutdownTimeout, runtime, cache, rateLimits, redis, kubernetes'],
    ]);
  });

  it('reports missing required keys on the mapping that lacks them', () => {
    assert.deepEqual(errorsOf('accessLog: { enabled: true }\n'), [
      [1, 1, '', 'missing required key "listeners"'],
      [1, 1, '', 'missing required key "pools"'],
    ]);
    assert.deepEqual(errorsOf(`listeners:\n  - name: a\n    routes: [{ match: { path: /x } }]\n${VALID_TAIL}`), [
      [2, 5, 'listeners[0]', 'missing required key "bind"'],
      [3, 14, 'listeners[0].routes[0]', 'a route needs "pool" or "redirect"'],
    ]);
  });

  it('names the expected and found kinds for wrong types', () => {
    assert.deepEqual(errorsOf(`listeners:\n  - name: a\n    bind: 8080\n    routes: { pool: web }\n${VALID_TAIL}`), [
      [3, 11, 'listeners[0].bind', 'expected host:port, got 8080'],
      [4, 13, 'listeners[0].routes', 'expected a list of routes, got a mapping'],
    ]);
    assert.deepEqual(errorsOf('- a\n- b\n'), [[1, 1, '', 'expected a mapping with "listeners" and "pools", got a list']]);
  });

  it('rejects duplicate keys, pointing at the second with the line of the first', () => {
    assert.deepEqual(errorsOf(`listeners:\n  - name: a\n    bind: "h:1"\n    bind: "h:2"\n    routes: [{ pool: web }]\n${VALID_TAIL}`), [
      [4, 5, 'listeners[0].bind', 'duplicate key "bind" (first defined on line 3)'],
    ]);
  });

  it('rejects path conditions that conflict and paths that cannot match', () => {
    const yaml = `listeners:
  - name: a
    bind: "h:1"
    routes:
      - match: { path: /a, pathPrefix: /b, pathRegex: "/c" }
        pool: web
      - match: { path: "/a?x=1", pathPrefix: "no-slash" }
        pool: web
${VALID_TAIL}`;
    assert.deepEqual(errorsOf(yaml), [
      [5, 28, 'listeners[0].routes[0].match.pathPrefix', 'use only one of path, pathPrefix and pathRegex (found path and pathPrefix and pathRegex)'],
      [7, 24, 'listeners[0].routes[1].match.path', 'paths must not contain "?", "#" or whitespace (match query parameters with "query"), got "/a?x=1"'],
      [7, 34, 'listeners[0].routes[1].match.pathPrefix', 'use only one of path, pathPrefix and pathRegex (found path and pathPrefix)'],
      [7, 46, 'listeners[0].routes[1].match.pathPrefix', 'expected a path starting with "/", got "no-slash"'],
    ]);
  });

  it('treats 0.0.0.0 and :: as overlapping every address on the port, but not port 0', () => {
    const yaml = `listeners:
  - { name: a, bind: "127.0.0.1:80", routes: [{ pool: web }] }
  - { name: b, bind: "0.0.0.0:80", routes: [{ pool: web }] }
  - { name: c, bind: "[::]:81", routes: [{ pool: web }] }
  - { name: d, bind: "[::1]:81", routes: [{ pool: web }] }
  - { name: e, bind: "127.0.0.1:0", routes: [{ pool: web }] }
  - { name: f, bind: "127.0.0.1:0", routes: [{ pool: web }] }
${VALID_TAIL}`;
    assert.deepEqual(errorsOf(yaml), [
      [3, 22, 'listeners[1].bind', 'bind "0.0.0.0:80" overlaps listeners[0] (same port)'],
      [5, 22, 'listeners[3].bind', 'bind "[::1]:81" overlaps listeners[2] (same port)'],
    ]);
  });

  it('rejects hash options on pools that do not hash, naming the algorithm in use', () => {
    const yaml = `listeners: [{ name: a, bind: "h:1", routes: [{ pool: p }, { pool: q }] }]
pools:
  p: { hashKey: path, backends: [{ address: "h:2" }] }
  q: { algorithm: \${ALG}, hashBalanceFactor: 125, backends: [{ address: "h:2" }] }
  r: { algorithm: maglev, hashKey: path, hashBalanceFactor: 125, backends: [{ address: "h:2" }] }
`;
    assert.deepEqual(errorsOf(yaml, { ALG: 'ewma' }), [
      [3, 8, 'pools.p.hashKey', 'hashKey only applies to algorithm "hash" or "maglev", but this pool uses "p2c" (the default)'],
      [4, 27, 'pools.q.hashBalanceFactor', 'hashBalanceFactor only applies to algorithm "hash" or "maglev", but this pool uses "${ALG}"'],
    ]);
  });

  it('rejects invalid names for listeners and pools', () => {
    const yaml = `listeners: [{ name: "-bad", bind: "h:1", routes: [{ pool: web }] }]\n${VALID_TAIL}  "my pool": { backends: [{ address: "h:2" }] }\n`;
    assert.deepEqual(errorsOf(yaml), [
      [1, 21, 'listeners[0].name', 'listener names start with a letter or digit and contain only letters, digits, "_", "." and "-" (at most 63), got "-bad"'],
      [6, 3, 'pools["my pool"]', 'pool names start with a letter or digit and contain only letters, digits, "_", "." and "-" (at most 63), got "my pool"'],
    ]);
  });

  it('reports YAML syntax errors with line and column, without the cascade that follows', () => {
    assert.deepEqual(errorsOf('listeners:\n  - name: a\n   bind: x\n'), [[3, 1, '', 'YAML syntax error: Sequence item without - indicator']]);
    assert.deepEqual(errorsOf('a:\n\tb: 1\n'), [[2, 1, '', 'YAML syntax error: Tabs are not allowed as indentation']]);
    assert.deepEqual(errorsOf('a: 1\n---\nb: 2\n'), [[2, 1, '', 'YAML syntax error: the file holds more than one document (a second "---"); usher reads one']]);
    assert.deepEqual(errorsOf('x: {a: 1}}\ny: [1\nz: {"a": }}}\n'), [[1, 10, '', 'YAML syntax error: Unexpected flow-map-end token in YAML stream: "}"']]);
  });

  it('explains the flow-mapping dash trap', () => {
    assert.deepEqual(errorsOf(`accessLog: { enabled: true, path: - }\n`), [
      [1, 35, '', 'YAML syntax error: Block collections are not allowed within flow collections; inside { } or [ ] quote a lone "-", e.g. path: "-"'],
    ]);
  });

  it('reports JSON syntax errors as JSON', () => {
    assert.deepEqual(errorsOf('{\n  "listeners": [1,\n  "pools": x\n}\n', {}, 'usher.json'), [
      [3, 12, '', 'JSON syntax error: Unresolved plain scalar "x"'],
      [4, 1, '', 'JSON syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]'],
      [4, 2, '', 'JSON syntax error: Flow map must end with a }'],
    ]);
  });

  it('reports an empty file once, clearly', () => {
    assert.deepEqual(errorsOf(''), [[1, 1, '', 'the file is empty; expected a mapping with "listeners" and "pools"']]);
    assert.deepEqual(errorsOf('# only a comment\n'), [[1, 1, '', 'the file is empty; expected a mapping with "listeners" and "pools"']]);
  });

  it('rejects __proto__ keys and non-string keys without polluting anything', () => {
    assert.deepEqual(errorsOf(`__proto__: { polluted: true }\n? [a]\n: 1\nlisteners: [{ name: a, bind: "h:1", routes: [{ pool: web }] }]\n${VALID_TAIL}`), [
      [1, 1, '__proto__', 'the key "__proto__" is not allowed'],
      [2, 3, '', 'mapping keys must be plain strings'],
    ]);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });

  it('bounds alias expansion (billion laughs) with an error instead of hanging', () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
    const started = performance.now();
    const errors = errorsOf(`${levels.join('\n')}\n`);
    assert.ok(performance.now() - started < 5000, 'expansion is bounded');
    assert.ok(errors.some((e) => String(e[3]).startsWith('the document is too large or too deeply nested')), JSON.stringify(errors.slice(0, 3)));
  });
});

describe('config errors: never a crash', () => {
  const VALID = `listeners:
  - name: web
    bind: 127.0.0.1:8080
    routes:
      - match: { host: "*.example.com", pathPrefix: /api, methods: [GET], headers: { x-a: "~b+" }, query: { q: "1" }, cookies: { c: d } }
        pool: web
        stripPrefix: /api
      - pool: web
pools:
  web:
    algorithm: hash
    hashKey: cookie:sid
    sticky: { ttl: 1h, secret: "\${S:-0123456789abcdef}" }
    timeouts: { connect: 1s }
    healthCheck: { path: /h, interval: 1s, fastInterval: 500ms, expectStatus: "200,300-399", expectBody: "~u+p" }
    outlier: { ejectionTime: 1s, maxEjectionPercent: 20% }
    retry: { on: [reset, 503], budget: 10% }
    panicThreshold: 50
    backends: [{ address: "127.0.0.1:1", weight: 2, state: draining }, { address: "[::1]:2", backup: true }]
accessLog: { enabled: false }
admin: { bind: "127.0.0.1:9", token: "\${T:-0123456789abcdef}" }
`;

  it('answers every truncation and byte mutation of a valid file with a config or errors', () => {
    assert.ok(parseConfig(VALID, 'v.yaml', {}).ok, 'the seed is valid');
    let seed = 42;
    const random = (n: number): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    const alphabet = ' \n\t:-{}[],"\'#&*!|>%@`~?${}0123456789abcxyz\u0000\u00e9\ud83d';
    const inputs: string[] = [];
    for (let i = 0; i <= VALID.length; i += 3) inputs.push(VALID.slice(0, i));
    for (let i = 0; i < 1000; i++) {
      const chars = [...VALID];
      for (let k = 1 + random(4); k > 0; k--) chars[random(chars.length)] = alphabet[random(alphabet.length)] ?? '';
      inputs.push(chars.join(''));
    }
    for (const input of inputs) {
      for (const file of ['f.yaml', 'f.json']) {
        const result = parseConfig(input, file, {});
        if (result.ok) continue;
        assert.ok(result.errors.length > 0, `no errors for ${JSON.stringify(input)}`);
        for (const issue of result.errors) {
          assert.equal(typeof issue.message, 'string');
          assert.ok(!issue.message.startsWith('internal error'), `${issue.message}\nfor ${JSON.stringify(input)}`);
        }
      }
    }
  });
});
