import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { startUsher } from '../helpers/usher.ts';

test('routes by host, path, method, header, query and cookie, first match wins, with stripPrefix', async (t) => {
  const names = ['api', 'admin', 'canary', 'beta', 'web'] as const;
  const origins = new Map<string, Origin>();
  for (const name of names) origins.set(name, await startOrigin(name));
  const pools = names.map((name) => `  ${name}:\n    backends:\n      - address: ${origins.get(name)!.address}\n`).join('');
  const usher = await startUsher(`listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - match: { host: api.example.com, pathPrefix: /api/, methods: [GET, POST], headers: { x-canary: "1" } }
        pool: canary
      - match: { host: api.example.com, pathPrefix: /api/ }
        pool: api
        stripPrefix: /api
      - match: { host: "*.example.com", path: /admin }
        pool: admin
      - match: { query: { beta: "~^(yes|true)$" } }
        pool: beta
      - match: { cookies: { group: beta } }
        pool: beta
      - pool: web
pools:
${pools}`);
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await Promise.all([...origins.values()].map((o) => o.close()));
  });

  async function via(path: string, headers: Record<string, string> = {}, method = 'GET') {
    const res = await request(`${usher.url('web')}${path}`, { headers, method });
    return { origin: await res.body.text(), status: res.statusCode };
  }
  assert.equal((await via('/api/users', { host: 'api.example.com', 'x-canary': '1' })).origin, 'canary');
  assert.equal((await via('/api/users', { host: 'api.example.com', 'x-canary': '1' }, 'DELETE')).origin, 'api', 'method not listed');
  assert.equal((await via('/api/users?page=2', { host: 'API.example.com:8080' })).origin, 'api', 'host is case-insensitive, port ignored');
  assert.equal(origins.get('api')!.seen.at(-1)!.url, '/users?page=2', 'stripPrefix keeps the query');
  assert.equal((await via('/admin', { host: 'ops.example.com' })).origin, 'admin');
  assert.equal((await via('/admin', { host: 'example.com' })).origin, 'web', 'wildcard needs a subdomain');
  assert.equal((await via('/x?beta=yes')).origin, 'beta');
  assert.equal((await via('/x?beta=no')).origin, 'web');
  assert.equal((await via('/x', { cookie: 'a=1; group=beta' })).origin, 'beta');
  assert.equal((await via('/anything')).origin, 'web', 'catch-all');
});
