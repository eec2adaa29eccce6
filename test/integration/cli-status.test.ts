/**
 * `usher status` against a real usher started with the CLI: the table's rows
 * (pool, mode, backend, state, weight, in-flight, requests, failures, 5xx,
 * last check), admin discovery from `-c FILE` or `--admin`, `--json`,
 * `--watch` bounded by `--count`, and the errors an operator can meet.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { request } from 'undici';
import { runCli, spawnCli } from '../helpers/cli.ts';
import { startOrigin, type OriginHandler } from '../helpers/origin.ts';
import { freePort } from '../helpers/ports.ts';

const token = 'status-test-token-0123456789';

/** 500 on /boom, 200 on everything else (health checks included). */
const handler: OriginHandler = (req, res, origin) => {
  req.resume();
  req.on('end', () => (req.url === '/boom' ? res.writeHead(500).end('boom') : res.writeHead(200).end(origin.name)));
};

/** The table's rows as cells (split on runs of two or more spaces). */
function rows(stdout: string): string[][] {
  return stdout
    .trimEnd()
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('usher status:'))
    .map((line) => line.trim().split(/ {2,}/));
}

test('usher status prints one row per backend, from -c FILE or --admin; --json and --watch', async (t) => {
  const a = await startOrigin('a', handler);
  const b = await startOrigin('b', handler);
  const adminPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'usher-status-'));
  const file = join(dir, 'usher.yaml');
  writeFileSync(
    file,
    `listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: main
pools:
  main:
    algorithm: round-robin
    healthCheck: { path: /health, interval: 100ms }
    backends:
      - address: ${a.address}
      - address: ${b.address}
        weight: 3
  spare:
    backends:
      - address: ${a.address}
        name: spare-a
admin:
  bind: 127.0.0.1:${adminPort}
  token: \${USHER_ADMIN_TOKEN}
accessLog:
  enabled: false
`,
  );
  const env = { USHER_ADMIN_TOKEN: token };
  const usher = spawnCli(['start', '-c', file], env);
  t.after(async () => {
    usher.child.kill('SIGKILL');
    await Promise.all([a.close(), b.close()]);
    rmSync(dir, { recursive: true, force: true });
  });
  const [, url] = (await usher.waitFor(/"listener":"web","address":"(http:\/\/[^"]+)"/)) as unknown as [string, string];
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  await usher.waitFor(/admin API listening/);
  for (const path of ['/', '/', '/', '/boom']) {
    const res = await request(`${url}${path}`);
    await res.body.text();
  }
  // Round-robin over weights 1 and 3: a took one request, b three (the 500 among them).
  await new Promise((resolve) => setTimeout(resolve, 300)); // a few health checks

  await t.test('the table, found through -c FILE', async () => {
    const result = await runCli(['status', '-c', file], env);
    assert.equal(result.code, 0, result.stderr);
    const table = rows(result.stdout);
    assert.deepEqual(table[0], ['POOL', 'MODE', 'BACKEND', 'STATE', 'WEIGHT', 'IN-FLIGHT', 'REQUESTS', 'FAILURES', '5XX', 'LAST CHECK']);
    assert.equal(table.length, 4, result.stdout);
    const [, rowA, rowB, spare] = table;
    assert.deepEqual(rowA!.slice(0, 9), ['main', 'primary', a.address, 'healthy', '1', '0', '1', '0', '0']);
    assert.match(rowA![9]!, /^pass \d+\.\ds ago$/);
    assert.deepEqual(rowB!.slice(0, 9), ['main', 'primary', b.address, 'healthy', '3', '0', '3', '0', '1']);
    assert.match(rowB![9]!, /^pass \d+\.\ds ago$/);
    // A named backend shows its name beside its address.
    assert.deepEqual(spare, ['spare', 'primary', `spare-a ${a.address}`, 'healthy', '1', '0', '0', '0', '0', '-']);
  });

  await t.test('--admin URL with the token from the environment; a drained backend shows its state', async () => {
    const drained = await request(`${adminUrl}/api/pools/main/backends/${encodeURIComponent(b.address)}/drain`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(drained.statusCode, 200);
    await drained.body.text();
    const result = await runCli(['status', '--admin', adminUrl], env);
    assert.equal(result.code, 0, result.stderr);
    const rowB = rows(result.stdout).find((row) => row[0] === 'main' && row[2] === b.address);
    assert.equal(rowB?.[3], 'draining');
  });

  await t.test('--json prints the admin API\'s answer', async () => {
    const result = await runCli(['status', '--admin', adminUrl, '--json'], env);
    assert.equal(result.code, 0, result.stderr);
    const body = JSON.parse(result.stdout) as { pools: { name: string; backends: { address: string; counters: { requests: number } }[] }[] };
    assert.deepEqual(body.pools.map((pool) => pool.name), ['main', 'spare']);
    assert.deepEqual(body.pools[0]!.backends.map((backend) => [backend.address, backend.counters.requests]), [[a.address, 1], [b.address, 3]]);
  });

  await t.test('--watch refreshes until --count', async () => {
    const started = Date.now();
    const result = await runCli(['status', '--admin', adminUrl, '--watch', '0.2', '--count', '3'], env);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.match(/^usher status: http:\/\/127\.0\.0\.1:\d+, every 0\.2s, /gm)?.length, 3);
    assert.equal(result.stdout.match(/^POOL {2}/gm)?.length, 3);
    assert.ok(Date.now() - started >= 400, 'two waits between three refreshes');
    const bare = await runCli(['status', '--admin', adminUrl, '--count', '1', '--watch'], env);
    assert.equal(bare.code, 0, bare.stderr);
    assert.match(bare.stdout, /every 2s/);
  });

  await t.test('a wrong token is refused', async () => {
    const result = await runCli(['status', '--admin', adminUrl, '--token', 'wrong-token-wrong-token']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /admin token/);
  });
});

test('usher status explains what is missing', async () => {
  const none = await runCli(['status']);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /give -c FILE/);
  const count = await runCli(['status', '--admin', 'http://127.0.0.1:9', '--count', '2']);
  assert.equal(count.code, 2);
  assert.match(count.stderr, /--count goes with --watch/);
  const watch = await runCli(['status', '--admin', 'http://127.0.0.1:9', '--watch', 'often']);
  assert.equal(watch.code, 2);
  assert.match(watch.stderr, /--watch takes seconds/);
  const unreachable = await runCli(['status', '--admin', 'http://127.0.0.1:9']);
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /cannot reach the admin API at http:\/\/127\.0\.0\.1:9/);
  const help = await runCli(['status', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--watch \[SECONDS\]/);
  const main = await runCli(['--help']);
  assert.match(main.stdout, /usher status -c usher\.yaml/);
});
