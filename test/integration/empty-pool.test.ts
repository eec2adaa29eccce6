/**
 * A pool may be empty: `usher check` warns but accepts it, requests routed to
 * it get 503 no_backend at once, and the admin API can fill it, or empty it
 * again by removing every backend.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { runCli } from '../helpers/cli.ts';
import { startOrigin } from '../helpers/origin.ts';
import { startUsher } from '../helpers/usher.ts';

const EMPTY = `listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: main
pools:
  main:
    backends: []
admin:
  bind: 127.0.0.1:0
`;

test('usher check accepts an empty pool with a warning', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'usher-empty-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'usher.yaml');
  writeFileSync(file, EMPTY);
  const result = await runCli(['check', '-c', file]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^ok/);
  assert.match(result.stderr, /warning: .*usher\.yaml:8:\d+ pools\.main\.backends: pool "main" has no backends: requests routed to it get 503 no_backend/);
});

test('an empty pool answers 503 no_backend at once; backends added and removed through the admin API fill and empty it', async (t) => {
  const origin = await startOrigin('o');
  const usher = await startUsher(EMPTY);
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  const get = async (): Promise<{ status: number; reason: unknown; ms: number }> => {
    const start = performance.now();
    const res = await request(`${usher.url('web')}/`);
    await res.body.text();
    return { status: res.statusCode, reason: res.headers['x-usher-error'], ms: performance.now() - start };
  };
  const empty = await get();
  assert.equal(empty.status, 503);
  assert.equal(empty.reason, 'no_backend');
  assert.ok(empty.ms < 1000, `answered after ${empty.ms.toFixed(0)} ms`); // not queued, not timed out
  assert.equal(usher.snapshot.pools.get('main')?.control.mode, 'none');

  const admin = (method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${usher.adminUrl!}${path}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  assert.equal((await admin('POST', '/api/pools/main/backends', { address: origin.address })).status, 201);
  assert.equal((await get()).status, 200);
  assert.equal((await admin('DELETE', `/api/pools/main/backends/${encodeURIComponent(origin.address)}`)).status, 200);
  const emptied = await get();
  assert.equal(emptied.status, 503);
  assert.equal(emptied.reason, 'no_backend');
});
