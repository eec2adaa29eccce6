/**
 * The `cache` filter against a real origin and real clients: hits and what
 * they carry, collapsed misses, responses that must not be shared,
 * revalidation, client preconditions and ranges served from the cache,
 * invalidation by unsafe methods, and Vary.
 */
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { test, type TestContext } from 'node:test';
import type { Usher } from '../../src/runtime/usher.ts';
import { startOrigin, type Origin, type OriginHandler } from '../helpers/origin.ts';
import { send, type Reply } from '../helpers/send.ts';
import { configFromYaml, startUsher } from '../helpers/usher.ts';
import { waitFor } from '../helpers/wait.ts';

/** An origin and usher with one cached route in front of it; `top` adds top-level keys (runtime, admin). */
async function cached(t: TestContext, handler: OriginHandler, cacheOptions = '{}', top = ''): Promise<{ origin: Origin; usher: Usher; port: number }> {
  const origin = await startOrigin('o', handler);
  const usher = await startUsher(`${top}listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: main
        filters:
          - cache: ${cacheOptions}
pools:
  main:
    backends:
      - address: ${origin.address}
`);
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  return { origin, usher, port: usher.address('web').port };
}

const upstreamGets = (origin: Origin, path: string): number => origin.seen.filter((r) => r.method === 'GET' && r.url === path).length;

test('a fresh response is stored on the miss (Content-Length kept) and served from the cache with Age and Cache-Status', async (t) => {
  const { origin, port } = await cached(t, (req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain', 'content-length': '11', 'surrogate-key': 'k1' }).end('hello cache');
  });
  const miss = await send(port, '/a');
  assert.equal(miss.body, 'hello cache');
  assert.equal(miss.headers['content-length'], '11', 'an observed body keeps its length');
  assert.match(String(miss.headers['cache-status']), /^usher; fwd=uri-miss; fwd-status=200; stored$/);
  assert.equal(miss.headers['surrogate-key'], undefined, 'surrogate keys are for the cache, not the client');
  const hit = await send(port, '/a');
  assert.equal(hit.body, 'hello cache');
  assert.match(String(hit.headers['cache-status']), /^usher; hit; ttl=\d+$/);
  assert.ok(Number(hit.headers['age']) >= 0);
  assert.equal(hit.headers['content-type'], 'text/plain');
  const head = await send(port, '/a', {}, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], '11', 'HEAD is answered from the GET entry');
  assert.equal(upstreamGets(origin, '/a'), 1);
  assert.equal(origin.seen.length, 1);
});

test('500 concurrent misses on one key make one upstream request; everyone gets the body', async (t) => {
  const { origin, port } = await cached(t, (req, res) => {
    setTimeout(() => res.writeHead(200, { 'cache-control': 'max-age=60' }).end('slow body'), 300);
  });
  const replies = await Promise.all(Array.from({ length: 500 }, () => send(port, '/stampede')));
  assert.deepEqual(new Set(replies.map((r) => `${r.status} ${r.body}`)), new Set(['200 slow body']));
  assert.equal(upstreamGets(origin, '/stampede'), 1);
  assert.ok(replies.filter((r) => /collapsed/.test(String(r.headers['cache-status']))).length >= 400, 'the waiters were answered from the fill');
});

test('responses with Set-Cookie are never shared: 50 clients with distinct cookies get 50 distinct Set-Cookie values', async (t) => {
  const { origin, port } = await cached(t, (req, res) => {
    setTimeout(() => res.writeHead(200, { 'cache-control': 'max-age=60', 'set-cookie': `session=${String(req.headers['cookie'])}` }).end('personal'), 50);
  });
  const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => send(port, '/me', { cookie: `u${i}` })));
  const cookies = new Set(replies.map((r) => String(r.headers['set-cookie'])));
  assert.equal(cookies.size, 50);
  for (let i = 0; i < 50; i++) assert.equal(String(replies[i]!.headers['set-cookie']), `session=u${i}`);
  assert.equal(upstreamGets(origin, '/me'), 50);
});

test('private, no-store and Vary: * responses are not stored', async (t) => {
  const { origin, port } = await cached(t, (req, res) => {
    const cc = req.url === '/private' ? 'private, max-age=60' : req.url === '/nostore' ? 'no-store' : 'max-age=60';
    res.writeHead(200, { 'cache-control': cc, ...(req.url === '/star' ? { vary: '*' } : {}) }).end(req.url);
  });
  for (const path of ['/private', '/nostore', '/star']) {
    await send(port, path);
    const second = await send(port, path);
    assert.equal(second.body, path);
    assert.equal(upstreamGets(origin, path), 2, `${path} went upstream twice`);
  }
});

test('a stale response is revalidated with If-None-Match; the 304 freshens the stored headers and the client gets the stored body', async (t) => {
  let version = 1;
  const { origin, port } = await cached(t, (req, res) => {
    if (req.headers['if-none-match'] === '"e1"') {
      res.writeHead(304, { 'cache-control': 'max-age=60', etag: '"e1"', 'x-version': String(++version) }).end();
      return;
    }
    res.writeHead(200, { 'cache-control': 'max-age=0', etag: '"e1"', 'x-version': String(version) }).end('stored body');
  });
  const first = await send(port, '/r');
  assert.equal(first.headers['x-version'], '1');
  const second = await send(port, '/r');
  assert.equal(second.status, 200, 'an unconditional client never gets the 304');
  assert.equal(second.body, 'stored body');
  assert.equal(second.headers['x-version'], '2', 'the 304 updated the stored headers (RFC 9111 §4.3.4)');
  assert.match(String(second.headers['cache-status']), /fwd=stale; fwd-status=304/);
  assert.equal(origin.seen[1]!.headers['if-none-match'], '"e1"');
  const third = await send(port, '/r');
  assert.match(String(third.headers['cache-status']), /^usher; hit/, 'fresh again after the 304 (max-age=60)');
  assert.equal(third.headers['x-version'], '2');
  assert.equal(upstreamGets(origin, '/r'), 2);
});

test('client preconditions and ranges are answered from the stored response', async (t) => {
  const { origin, port } = await cached(t, (req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', etag: '"abc"', 'last-modified': 'Mon, 07 Dec 2026 08:00:00 GMT' }).end('0123456789');
  });
  await send(port, '/c');
  const notModified = await send(port, '/c', { 'if-none-match': '"abc"' });
  assert.equal(notModified.status, 304);
  assert.equal(notModified.body, '');
  assert.equal(notModified.headers['etag'], '"abc"');
  const changed = await send(port, '/c', { 'if-none-match': '"other"' });
  assert.equal(changed.status, 200);
  const range = await send(port, '/c', { range: 'bytes=2-5' });
  assert.equal(range.status, 206);
  assert.equal(range.body, '2345');
  assert.equal(range.headers['content-range'], 'bytes 2-5/10');
  const wrongIfRange = await send(port, '/c', { range: 'bytes=2-5', 'if-range': '"old"' });
  assert.equal(wrongIfRange.status, 200, 'an If-Range that does not match gets the whole response');
  assert.equal(wrongIfRange.body, '0123456789');
  const unsatisfiable = await send(port, '/c', { range: 'bytes=50-60' });
  assert.equal(unsatisfiable.status, 416);
  assert.equal(unsatisfiable.headers['content-range'], 'bytes */10');
  assert.equal(upstreamGets(origin, '/c'), 1);
});

test('a client conditional request on a miss fills the cache; later ones get their 304 from it', async (t) => {
  const { origin, port } = await cached(t, (req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', etag: '"z"' }).end('full');
  });
  const first = await send(port, '/m', { 'if-none-match': '"z"' });
  assert.equal(first.status, 200, 'the full response is a valid answer, and it was stored');
  assert.equal(origin.seen[0]!.headers['if-none-match'], undefined, 'the origin was asked for the full response');
  const second = await send(port, '/m', { 'if-none-match': '"z"' });
  assert.equal(second.status, 304);
  const third = await send(port, '/m');
  assert.equal(third.body, 'full');
  assert.equal(upstreamGets(origin, '/m'), 1);
});

test('a successful POST invalidates its URI and its Location; a failed one does not', async (t) => {
  const { origin, port } = await cached(t, (req, res) => {
    req.resume();
    if (req.method === 'POST') {
      const failed = req.url === '/fail';
      res.writeHead(failed ? 500 : 201, failed ? {} : { location: '/other' }).end();
      return;
    }
    res.writeHead(200, { 'cache-control': 'max-age=60' }).end(`${req.url} ${origin.seen.length}`);
  });
  await send(port, '/item');
  await send(port, '/other');
  await send(port, '/fail');
  await send(port, '/item', {}, 'POST', 'x');
  await send(port, '/fail', {}, 'POST', 'x');
  await send(port, '/item');
  await send(port, '/other');
  await send(port, '/fail');
  assert.equal(upstreamGets(origin, '/item'), 2, 'the POST target was invalidated');
  assert.equal(upstreamGets(origin, '/other'), 2, 'its Location was invalidated');
  assert.equal(upstreamGets(origin, '/fail'), 1, 'a failed POST invalidates nothing');
});

test('Vary: each variant is stored and served to matching requests only', async (t) => {
  const { origin, port } = await cached(t, (req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'accept-language' }).end(`lang=${String(req.headers['accept-language'])}`);
  });
  assert.equal((await send(port, '/v', { 'accept-language': 'en' })).body, 'lang=en');
  assert.equal((await send(port, '/v', { 'accept-language': 'fr' })).body, 'lang=fr');
  assert.equal((await send(port, '/v', { 'accept-language': 'en' })).body, 'lang=en');
  assert.equal((await send(port, '/v', { 'accept-language': 'fr' })).body, 'lang=fr');
  assert.equal(upstreamGets(origin, '/v'), 2);
});

test('request no-cache revalidates, and no default TTL: a response without freshness information is not reused', async (t) => {
  const { origin, port } = await cached(t, (req, res) => {
    res.writeHead(200, req.url === '/fresh' ? { 'cache-control': 'max-age=60' } : {}).end(req.url);
  });
  await send(port, '/bare');
  await send(port, '/bare');
  assert.equal(upstreamGets(origin, '/bare'), 2);
  await send(port, '/fresh');
  await send(port, '/fresh', { 'cache-control': 'no-cache' });
  assert.equal(upstreamGets(origin, '/fresh'), 2, 'the client asked for validation');
});

/** One kept-alive connection: every request on it is served by the same worker thread. */
function connection(port: number): { get: (path: string) => Promise<Reply>; close: () => void } {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const get = (path: string): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (chunk: Buffer) => parts.push(chunk));
        res.on('end', () => {
          const raw = Buffer.concat(parts);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, raw, body: raw.toString('utf8') });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  return { get, close: () => agent.destroy() };
}

/** A connection to each worker: new connections until each worker has served one (told apart by the workers' request counts). */
async function connectionPerWorker(t: TestContext, usher: Usher, port: number): Promise<ReturnType<typeof connection>[]> {
  const byWorker = new Map<number, ReturnType<typeof connection>>();
  let sent = 0;
  for (let attempt = 0; attempt < 64 && byWorker.size < usher.workers.length; attempt++) {
    await usher.refresh();
    const before = usher.workers.map((w) => w.requests);
    const conn = connection(port);
    t.after(() => conn.close());
    assert.equal((await conn.get('/ping')).status, 200);
    sent++;
    await waitFor(async () => {
      await usher.refresh();
      return usher.workers.reduce((sum, w) => sum + w.requests, 0) >= sent;
    }, 'the workers counted the ping');
    const served = usher.workers.findIndex((w, i) => w.requests > before[i]!);
    if (!byWorker.has(served)) byWorker.set(served, conn);
  }
  assert.equal(byWorker.size, usher.workers.length, 'new connections reached every worker');
  return [...byWorker.keys()].sort().map((i) => byWorker.get(i)!);
}

test('with two workers, concurrent misses on one key in both make one upstream request: the second worker waits for the first one\'s fill', async (t) => {
  const { origin, usher, port } = await cached(
    t,
    (req, res) => {
      if (req.url === '/ping') {
        res.writeHead(200, { 'cache-control': 'no-store' }).end('pong');
        return;
      }
      // No Content-Length: the waiters in the filling worker wait for the end too (nothing to stream).
      setTimeout(() => res.writeHead(200, { 'cache-control': 'max-age=60' }).end('slow body'), 300);
    },
    '{}',
    'runtime: { workers: 2 }\n',
  );
  const [first, second] = await connectionPerWorker(t, usher, port);
  const one = first!.get('/cold');
  await waitFor(() => upstreamGets(origin, '/cold') === 1, 'the first worker went upstream');
  const other = await second!.get('/cold');
  assert.equal(other.body, 'slow body');
  assert.match(String(other.headers['cache-status']), /^usher; hit; ttl=\d+; collapsed$/, 'answered from the store the other worker filled');
  assert.equal((await one).body, 'slow body');
  assert.equal(upstreamGets(origin, '/cold'), 1, 'one upstream request for both workers');
});

test('with two workers, one store: a response filled through one worker is a hit on the other; a purge or soft purge is seen by both; /api/cache and /metrics count the store once', async (t) => {
  let version = 0;
  const { origin, usher, port } = await cached(
    t,
    (req, res) => {
      if (req.url === '/ping') {
        res.writeHead(200, { 'cache-control': 'no-store' }).end('pong');
        return;
      }
      if (req.headers['if-none-match'] === `"v${version}"`) {
        res.writeHead(304, { etag: `"v${version}"`, 'cache-control': 'max-age=60' }).end();
        return;
      }
      version++;
      res.writeHead(200, { 'cache-control': 'max-age=60', etag: `"v${version}"`, 'surrogate-key': 'products all' }).end(`v${version}`);
    },
    '{}',
    'runtime: { workers: 2 }\nadmin: { bind: 127.0.0.1:0 }\n',
  );
  const admin = usher.adminUrl!;
  const purge = async (body: unknown) => (await fetch(`${admin}/api/cache/purge`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })).json() as Promise<{ purged: number }>;
  const [first, second] = await connectionPerWorker(t, usher, port);
  const gets = () => upstreamGets(origin, '/p/1');

  // Filled through the first worker, a hit on the second.
  const miss = await first!.get('/p/1');
  assert.match(String(miss.headers['cache-status']), /fwd=uri-miss; fwd-status=200; stored/);
  const hit = await second!.get('/p/1');
  assert.equal(hit.body, 'v1');
  assert.match(String(hit.headers['cache-status']), /^usher; hit; ttl=\d+$/, 'the other worker answered from the store the first one filled');
  assert.equal(gets(), 1, 'the origin saw one request for both workers');
  const stats = (await (await fetch(`${admin}/api/cache`)).json()) as { entries: number; hits: number; misses: number; stores: number };
  assert.deepEqual({ entries: stats.entries, hits: stats.hits, stores: stats.stores }, { entries: 1, hits: 1, stores: 1 }, 'one stored response, counted once; hits summed over the workers');

  // A hard purge (by tag, then by prefix) reaches both: whichever asks first fills again, and the other gets that.
  assert.equal((await purge({ tag: 'products' })).purged, 1);
  assert.equal((await second!.get('/p/1')).body, 'v2');
  assert.equal((await first!.get('/p/1')).body, 'v2');
  assert.equal((await purge({ prefix: `http://127.0.0.1:${port}/p/` })).purged, 1);
  assert.equal((await first!.get('/p/1')).body, 'v3');
  assert.equal((await second!.get('/p/1')).body, 'v3');
  assert.equal(gets(), 3);

  // A soft purge marks stale for both: each worker, asked first after one, revalidates (If-None-Match) and keeps the body.
  for (const conn of [first!, second!]) {
    const before = origin.seen.length;
    assert.equal((await purge({ key: `http://127.0.0.1:${port}/p/1`, mode: 'soft' })).purged, 1);
    const revalidated = await conn.get('/p/1');
    assert.equal(revalidated.body, 'v3');
    assert.match(String(revalidated.headers['cache-status']), /fwd=stale; fwd-status=304/);
    assert.deepEqual(origin.seen.slice(before).map((r) => r.headers['if-none-match']), ['"v3"']);
  }
  assert.match(String((await first!.get('/p/1')).headers['cache-status']), /^usher; hit/);

  const bad = await fetch(`${admin}/api/cache/purge`, { method: 'POST', body: JSON.stringify({ key: 'x', tag: 'y' }) });
  assert.equal(bad.status, 400);
  const metrics = await (await fetch(`${admin}/metrics`)).text();
  assert.match(metrics, /usher_cache_requests_total\{result="hit"\} [1-9]/);
  assert.match(metrics, /usher_cache_removed_total\{reason="purged"\} 4\n/, 'the store\'s numbers once, not once per thread');
  assert.match(metrics, /usher_cache_entries 1\n/);
});

test('with two workers, the store outlives reloads that keep its limits and a worker restart; new limits start a new, empty store for every thread', async (t) => {
  let version = 0;
  const origin = await startOrigin('o', (req, res) => {
    if (req.url === '/ping') {
      res.writeHead(200, { 'cache-control': 'no-store' }).end('pong');
      return;
    }
    version++;
    res.writeHead(200, { 'cache-control': 'max-age=60' }).end(`v${version}`);
  });
  const yaml = (cache: string, header: string) => `runtime: { workers: 2 }
${cache}
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: main
        filters:
          - headers: { response: { set: { x-config: ${header} } } }
          - cache: {}
pools:
  main:
    backends:
      - address: ${origin.address}
`;
  const usher = await startUsher(yaml('cache: { maxSize: 64MiB }', 'one'));
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  const port = usher.address('web').port;
  let [first, second] = await connectionPerWorker(t, usher, port);
  assert.equal((await first!.get('/r')).body, 'v1');

  assert.deepEqual(await usher.reload(configFromYaml(yaml('cache: { maxSize: 64MiB }', 'two'))), { ok: true, warnings: [] });
  const kept = await second!.get('/r');
  assert.equal(kept.headers['x-config'], 'two');
  assert.equal(kept.body, 'v1', 'a reload with the same limits keeps the store and what it holds');

  await usher.restartWorker(0);
  [first, second] = await connectionPerWorker(t, usher, port);
  assert.equal((await first!.get('/r')).body, 'v1', 'a restarted worker uses the process\'s store');

  // A reload that fails (here, after its cache limits were read) leaves the store as it was, for every thread.
  const broken = configFromYaml(yaml('cache: { maxSize: 32MiB }', 'broken'));
  assert.equal((await usher.reload({ ...broken, pools: {} })).ok, false);
  assert.equal(usher.cacheStats()?.maxBytes, 64 * 1024 * 1024);
  assert.equal((await second!.get('/r')).body, 'v1');
  assert.equal((await usher.cache({ key: `http://127.0.0.1:${port}/r`, mode: 'hard' })).purged, 1, 'purged in the store the workers use');
  assert.equal((await first!.get('/r')).body, 'v2');
  assert.equal((await second!.get('/r')).body, 'v2');

  assert.deepEqual(await usher.reload(configFromYaml(yaml('cache: { maxSize: 32MiB }', 'three'))), { ok: true, warnings: [] });
  assert.equal((await second!.get('/r')).body, 'v3', 'new limits: a new, empty store');
  assert.equal((await first!.get('/r')).body, 'v3', 'which every worker uses');
  assert.equal(usher.cacheStats()?.maxBytes, 32 * 1024 * 1024);
  assert.equal(upstreamGets(origin, '/r'), 3);
});

test('stale-while-revalidate: at expiry nobody waits, and the origin sees one background revalidation', async (t) => {
  let generation = 1;
  const { origin, port } = await cached(t, (req, res) => {
    const delayMs = req.headers['if-none-match'] !== undefined ? 1000 : 0;
    setTimeout(() => {
      if (req.headers['if-none-match'] === '"g1"') {
        res.writeHead(304, { etag: '"g1"', 'cache-control': 'max-age=60, stale-while-revalidate=30', 'x-generation': String(++generation) }).end();
        return;
      }
      res.writeHead(200, { etag: '"g1"', 'cache-control': 'max-age=1, stale-while-revalidate=30', 'x-generation': String(generation) }).end('swr body');
    }, delayMs);
  });
  await send(port, '/swr');
  // Wait for the response to turn stale (max-age=1, and Age counts whole seconds).
  await new Promise((resolve) => setTimeout(resolve, 2100));
  const started = performance.now();
  const stale = await Promise.all(Array.from({ length: 20 }, () => send(port, '/swr')));
  const waited = performance.now() - started;
  assert.ok(stale.every((r) => r.status === 200 && r.body === 'swr body'));
  assert.ok(stale.every((r) => /fwd=stale/.test(String(r.headers['cache-status']))), 'served stale');
  assert.ok(waited < 700, `the stale answers did not wait for the 1 s revalidation (${waited.toFixed(0)} ms)`);
  const deadline = Date.now() + 5000;
  let fresh: Reply | undefined;
  while (Date.now() < deadline) {
    fresh = await send(port, '/swr');
    if (/^usher; hit/.test(String(fresh.headers['cache-status']))) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.match(String(fresh?.headers['cache-status']), /^usher; hit/, 'the background 304 made the response fresh again');
  assert.equal(fresh?.headers['x-generation'], '2', 'with the 304\'s headers');
  const revalidations = origin.seen.filter((r) => r.headers['if-none-match'] !== undefined);
  assert.equal(revalidations.length, 1, 'one background revalidation for 20 stale hits');
  assert.equal(upstreamGets(origin, '/swr'), 2);
});

test('stale-if-error: a 5xx from the backend or a pool with no backend available gets the stale response, within the window', async (t) => {
  let failing = false;
  const { usher, port } = await cached(
    t,
    (req, res) => {
      if (failing) {
        res.writeHead(503).end('down');
        return;
      }
      res.writeHead(200, { 'cache-control': 'max-age=1', etag: '"s"' }).end('kept');
    },
    '{ staleIfError: 60s }',
  );
  await send(port, '/e');
  await new Promise((resolve) => setTimeout(resolve, 2100));
  failing = true;
  const on5xx = await send(port, '/e');
  assert.equal(on5xx.status, 200);
  assert.equal(on5xx.body, 'kept');
  assert.match(String(on5xx.headers['cache-status']), /fwd=stale; fwd-status=503; ttl=-\d+; detail=stale-if-error/);
  // Every backend out: the stale response comes at once instead of a 503.
  const control = usher.snapshot.pools.get('main')!.control;
  control.setAdminState(control.backends[0]!, 'disabled');
  const noBackend = await send(port, '/e');
  assert.equal(noBackend.body, 'kept');
  assert.match(String(noBackend.headers['cache-status']), /detail=no-backend/);
  const uncached = await send(port, '/never-stored');
  assert.equal(uncached.status, 503, 'without a stored response the request still fails');
});

test('stale-if-error per error class: a response timeout and a refused connection get the stale response; a 5xx, not configured, does not', async (t) => {
  let mode: 'ok' | 'silent' | '503' = 'ok';
  const origin = await startOrigin('o', (req, res) => {
    if (mode === 'silent') return; // never answers: the response timeout fires
    if (mode === '503') {
      res.writeHead(503).end('down');
      return;
    }
    // max-age=0: stored, and stale at once, so every later request revalidates.
    const directive = req.url === '/header' ? 'max-age=0, stale-if-error=60' : 'max-age=0';
    res.writeHead(200, { 'cache-control': directive, etag: '"v1"' }).end(`kept ${req.url}`);
  });
  const usher = await startUsher(`listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - match: { pathPrefix: /header }
        pool: main
        filters: [ { cache: {} } ]
      - pool: main
        filters: [ { cache: { staleIfError: { connect: 60s, timeout: 60s } } } ]
pools:
  main:
    timeouts: { response: 300ms }
    backends:
      - address: ${origin.address}
`);
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  const port = usher.address('web').port;
  assert.equal((await send(port, '/e')).body, 'kept /e');
  assert.equal((await send(port, '/header')).body, 'kept /header');

  mode = 'silent';
  const onTimeout = await send(port, '/e');
  assert.equal(onTimeout.status, 200);
  assert.equal(onTimeout.body, 'kept /e');
  assert.match(String(onTimeout.headers['cache-status']), /fwd=stale; fwd-status=504; ttl=-\d+; detail=stale-if-error/);

  mode = '503';
  const on503 = await send(port, '/e');
  assert.equal(on503.status, 503, 'the 5xx class is not configured: the backend\'s answer goes through');

  await origin.close(); // connections are now refused
  const onRefused = await send(port, '/e');
  assert.equal(onRefused.status, 200);
  assert.equal(onRefused.body, 'kept /e');
  assert.match(String(onRefused.headers['cache-status']), /fwd=stale; fwd-status=50[23]; ttl=-\d+; detail=(stale-if-error|no-backend)/);
  const byDirective = await send(port, '/header');
  assert.equal(byDirective.status, 200, 'the response\'s own stale-if-error covers a refused connection');
  assert.equal(byDirective.body, 'kept /header');
  const uncached = await send(port, '/never-stored');
  assert.ok(uncached.status === 502 || uncached.status === 503, `without a stored response the request still fails (${uncached.status})`);
});

test('the dashboard\'s event stream carries the cache: hit ratio inputs, size and top keys; none without a cache route', async (t) => {
  const origin = await startOrigin('o', (req, res) => res.writeHead(200, { 'cache-control': 'max-age=60' }).end('dash'));
  const yaml = (filters: string) => `admin: { bind: 127.0.0.1:0 }
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: main
${filters}
pools:
  main:
    backends:
      - address: ${origin.address}
`;
  const caching = await startUsher(yaml('        filters: [ { cache: {} } ]'));
  const plain = await startUsher(yaml(''));
  t.after(async () => {
    await caching.stop({ timeoutMs: 500 });
    await plain.stop({ timeoutMs: 500 });
    await origin.close();
  });
  for (let i = 0; i < 5; i++) await send(caching.address('web').port, '/top');
  const firstSnapshot = async (adminUrl: string): Promise<{ cache?: { hits: number; misses: number; entries: number; top: { key: string; hits: number }[] } }> => {
    const controller = new AbortController();
    const res = await fetch(`${adminUrl}/api/events`, { signal: controller.signal });
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    return JSON.parse(/data: (.*)\n/.exec(text)![1]!) as never;
  };
  const snapshot = await firstSnapshot(caching.adminUrl!);
  assert.equal(snapshot.cache?.hits, 4);
  assert.equal(snapshot.cache?.misses, 1);
  assert.equal(snapshot.cache?.entries, 1);
  assert.match(snapshot.cache?.top[0]?.key ?? '', /\/top$/);
  assert.equal((await firstSnapshot(plain.adminUrl!)).cache, undefined);
  assert.equal(plain.responseCache.storeIfAny, undefined, 'no route caches: no store was made');
});

test('a fill whose backend fails mid-body releases its waiters at once; one of them fills, the rest are answered from it', async (t) => {
  let count = 0;
  const { origin, port } = await cached(t, (req, res) => {
    const n = ++count;
    // No Content-Length (chunked): the waiters wait for the end instead of reading the fill as it comes (cache-fill.test.ts).
    res.writeHead(200, { 'cache-control': 'max-age=60' });
    res.write('01234');
    // The first fill breaks after half its body; the second completes.
    setTimeout(() => (n === 1 ? res.socket?.destroy() : res.end('56789')), 300);
  });
  const first = send(port, '/broken').catch(() => undefined);
  await new Promise((resolve) => setTimeout(resolve, 50)); // the first request owns the fill
  const started = performance.now();
  const waiters = await Promise.all(Array.from({ length: 20 }, () => send(port, '/broken')));
  const waited = performance.now() - started;
  await first;
  assert.deepEqual(new Set(waiters.map((r) => `${r.status} ${r.body}`)), new Set(['200 0123456789']));
  assert.equal(upstreamGets(origin, '/broken'), 2, 'the broken fill and one new one, not one per waiter');
  assert.ok(waited < 3000, `the waiters did not sit out the 5 s lock timeout (${waited.toFixed(0)} ms)`);
});
