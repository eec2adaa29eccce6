import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { startOrigins } from '../helpers/origin.ts';
import { runCli, spawnCli } from '../helpers/cli.ts';

function tempFile(t: { after: (fn: () => void) => void }, name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'usher-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

test('usher --help and command help exit 0; no command and unknown commands exit 2', async () => {
  const help = await runCli(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /usher start -c usher\.yaml/);
  assert.match(help.stdout, /Exit codes:/);
  for (const command of ['start', 'check', 'demo', 'schema']) {
    const sub = await runCli([command, '--help']);
    assert.equal(sub.code, 0, `${command} --help`);
    assert.match(sub.stdout, new RegExp(`usher ${command}`));
  }
  assert.equal((await runCli([])).code, 2);
  const unknown = await runCli(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
  const badFlag = await runCli(['start', '--nope']);
  assert.equal(badFlag.code, 2);
});

test('usher check: ok for a valid file, every problem with file:line for an invalid one', async (t) => {
  const valid = tempFile(t, 'good.yaml', 'listeners:\n  - name: web\n    bind: 127.0.0.1:8080\n    routes:\n      - pool: web\npools:\n  web:\n    backends:\n      - address: 127.0.0.1:3001\n');
  const ok = await runCli(['check', '-c', valid]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^ok/);

  const invalid = tempFile(
    t,
    'usher.yaml',
    'listeners:\n  - name: web\n    bind: 127.0.0.1:8080\n    routes:\n      - pool: missing\npools:\n  web:\n    algoritm: p2c\n    backends:\n      - address: 127.0.0.1:3001\n      - address: localhost\n',
  );
  const bad = await runCli(['check', '-c', invalid]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /usher\.yaml:5:\d+ listeners\[0\]\.routes\[0\]\.pool: .*missing/);
  assert.match(bad.stderr, /usher\.yaml:8:\d+ pools\.web\.algoritm: .*did you mean "algorithm"/);
  assert.match(bad.stderr, /usher\.yaml:11:\d+ pools\.web\.backends\[1\]\.address: expected host:port, got "localhost"/);

  const missing = await runCli(['check', '-c', '/nonexistent/usher.yaml']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nonexistent\/usher\.yaml/);
});

test('usher schema prints a JSON Schema', async () => {
  const { code, stdout } = await runCli(['schema']);
  assert.equal(code, 0);
  const schema = JSON.parse(stdout) as { properties?: Record<string, unknown> };
  assert.ok(schema.properties?.['listeners']);
  assert.ok(schema.properties?.['pools']);
});

test('usher start in quick mode balances over --backend flags and stops on SIGTERM with exit 0', async (t) => {
  const origins = await startOrigins(2);
  t.after(() => Promise.all(origins.map((o) => o.close())));
  const usher = spawnCli(['start', '--bind', '127.0.0.1:0', '--algorithm', 'round-robin', ...origins.flatMap((o) => ['--backend', o.address])]);
  t.after(() => usher.child.kill('SIGKILL'));
  const [, url] = await usher.waitFor(/"address":"(http:\/\/[^"]+)"/);
  const seen = new Set<string>();
  for (let i = 0; i < 4; i++) {
    const res = await request(`${url}/`);
    seen.add(await res.body.text());
  }
  assert.deepEqual([...seen].sort(), ['origin0', 'origin1']);
  // Access log: one JSON line per request on stdout.
  await usher.waitFor(/"status":200[^\n]*\n[^\n]*"status":200[^\n]*\n[^\n]*"status":200[^\n]*\n[^\n]*"status":200/);
  const line = JSON.parse(usher.stdout.split('\n')[0]!) as Record<string, unknown>;
  for (const key of ['time', 'client', 'method', 'path', 'status', 'route', 'pool', 'backend', 'upstreamMs', 'totalMs', 'bytesIn', 'bytesOut']) {
    assert.ok(key in line, `access log has ${key}: ${JSON.stringify(line)}`);
  }
  assert.equal(line['method'], 'GET');
  // The origin answers "origin0" chunked: 7 payload bytes, 17 on the wire ("7\r\norigin0\r\n0\r\n\r\n").
  assert.equal(line['bytesOut'], 17);
  usher.child.kill('SIGTERM');
  assert.equal(await usher.exited, 0);
});

test('usher start reports a port already in use and exits 1', async (t) => {
  const origins = await startOrigins(1);
  t.after(() => origins[0]!.close());
  const { code, stderr } = await runCli(['start', '--bind', origins[0]!.address, '--backend', origins[0]!.address]);
  assert.equal(code, 1);
  assert.match(stderr, /cannot bind/);
});

test('usher demo serves three demo backends in rotation and survives a killed backend', async (t) => {
  const demo = spawnCli(['demo', '--bind', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
  t.after(() => demo.child.kill('SIGKILL'));
  const [, url] = await demo.waitFor(/usher demo is running on (http:\/\/\S+)/, 20_000);
  const [, adminUrl] = await demo.waitFor(/admin API: (http:\/\/\S+)/);
  const names: string[] = [];
  for (let i = 0; i < 6; i++) {
    const res = await request(`${url}/`);
    names.push((await res.body.text()).split(' ')[0]!);
  }
  assert.deepEqual(new Set(names), new Set(['alpha', 'bravo', 'charlie']));
  assert.equal(names[0], names[3]);

  // Kill one backend as the banner suggests: retries hide it, the health check takes it out.
  const [, pid] = await demo.waitFor(/kill (\d+) +# stop alpha/);
  process.kill(Number(pid), 'SIGKILL');
  const deadline = performance.now() + 10_000;
  let alphaState = '';
  let served = 0;
  while (alphaState !== 'unhealthy' && performance.now() < deadline) {
    const res = await request(`${url}/`);
    assert.equal(res.statusCode, 200, 'a request failed after a backend was killed');
    assert.notEqual((await res.body.text()).split(' ')[0], 'alpha');
    served++;
    const pool = (await (await fetch(`${adminUrl}/api/pools/demo`)).json()) as { backends: { state: string }[] };
    alphaState = pool.backends[0]!.state;
  }
  assert.equal(alphaState, 'unhealthy');
  assert.ok(served > 0);
  demo.child.kill('SIGTERM');
  assert.equal(await demo.exited, 0);
});
