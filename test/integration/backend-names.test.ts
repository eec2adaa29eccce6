/**
 * Backend names: a backend may carry a `name` (the demo's alpha, bravo and
 * charlie), shown beside its address by the admin API (and so the dashboard
 * and `usher status`) and in the access log; the address stays its identity.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { startOrigins } from '../helpers/origin.ts';
import { startUsher } from '../helpers/usher.ts';
import { waitFor } from '../fixtures/health.ts';

test('a named backend shows its name in the admin API and the access log; an unnamed one shows null and no field', async (t) => {
  const [alpha, other] = await startOrigins(2, 'o');
  const dir = mkdtempSync(join(tmpdir(), 'usher-names-'));
  const logFile = join(dir, 'access.log');
  const usher = await startUsher(`listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - match: { pathPrefix: /named }
        pool: named
      - pool: plain
pools:
  named:
    backends:
      - address: "${alpha!.address}"
        name: alpha
  plain:
    backends:
      - address: "${other!.address}"
admin:
  bind: 127.0.0.1:0
accessLog:
  path: ${JSON.stringify(logFile)}
`);
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await Promise.all([alpha!.close(), other!.close()]);
    rmSync(dir, { recursive: true, force: true });
  });
  for (const path of ['/named/x', '/y']) {
    const res = await request(`${usher.url('web')}${path}`);
    assert.equal(res.statusCode, 200);
    await res.body.text();
  }
  const pools = (await (await fetch(`${usher.adminUrl!}/api/pools`)).json()) as { pools: { name: string; backends: { address: string; name: string | null }[] }[] };
  assert.deepEqual(
    pools.pools.map((pool) => [pool.name, pool.backends.map((b) => [b.address, b.name])]),
    [['named', [[alpha!.address, 'alpha']]], ['plain', [[other!.address, null]]]],
  );
  // Added at runtime with a name.
  const added = await fetch(`${usher.adminUrl!}/api/pools/plain/backends`, { method: 'POST', body: JSON.stringify({ address: '127.0.0.1:9', name: 'delta' }) });
  assert.equal(added.status, 201);
  assert.equal(((await added.json()) as { name: string }).name, 'delta');
  const bad = await fetch(`${usher.adminUrl!}/api/pools/plain/backends`, { method: 'POST', body: JSON.stringify({ address: '127.0.0.1:10', name: 'no spaces' }) });
  assert.equal(bad.status, 400);

  let lines: Record<string, unknown>[] = [];
  await waitFor(() => {
    try {
      lines = readFileSync(logFile, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
    } catch {
      return false;
    }
    return lines.length >= 2;
  }, 'two access log lines', 5000);
  const named = lines.find((line) => line['path'] === '/named/x');
  const plain = lines.find((line) => line['path'] === '/y');
  assert.equal(named?.['backend'], alpha!.address);
  assert.equal(named?.['backendName'], 'alpha');
  assert.equal(plain?.['backend'], other!.address);
  assert.equal('backendName' in (plain ?? {}), false);
});
