import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { request } from 'undici';
import { runCli, spawnCli } from '../helpers/cli.ts';
import { startOrigin, type Origin } from '../helpers/origin.ts';

const token = 'reload-test-token-0123456789';

function yaml(origin: Origin): string {
  return `listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: main
pools:
  main:
    backends:
      - address: ${origin.address}
admin:
  bind: 127.0.0.1:0
  token: \${USHER_ADMIN_TOKEN}
accessLog:
  enabled: false
`;
}

async function body(url: string): Promise<string> {
  const res = await request(url);
  return res.body.text();
}

test('SIGHUP and "usher reload" apply a changed file; an invalid file is rejected and the old config keeps serving', async (t) => {
  const a = await startOrigin('a');
  const b = await startOrigin('b');
  const dir = mkdtempSync(join(tmpdir(), 'usher-reload-'));
  const file = join(dir, 'usher.yaml');
  writeFileSync(file, yaml(a));
  const env = { USHER_ADMIN_TOKEN: token };
  const cli = spawnCli(['start', '-c', file], env);
  t.after(async () => {
    cli.child.kill('SIGKILL');
    await Promise.all([a.close(), b.close()]);
    rmSync(dir, { recursive: true, force: true });
  });
  const [, url] = (await cli.waitFor(/"listener":"web","address":"(http:\/\/[^"]+)"/)) as unknown as [string, string];
  const [, adminUrl] = (await cli.waitFor(/"address":"(http:\/\/[^"]+)","msg":"admin API listening"/)) as unknown as [string, string];
  assert.equal(await body(`${url}/`), 'a');

  // SIGHUP re-reads the file.
  writeFileSync(file, yaml(b));
  cli.child.kill('SIGHUP');
  await cli.waitFor(/config reloaded/);
  assert.equal(await body(`${url}/`), 'b');

  // An invalid file: rejected with check-style errors, still serving b.
  writeFileSync(file, `${yaml(b)}bogus: 1\n`);
  const rejected = await runCli(['reload', '--admin', adminUrl], env);
  assert.equal(rejected.code, 1);
  assert.match(rejected.stderr, /usher\.yaml:\d+:\d+ bogus: unknown key/);
  assert.match(rejected.stderr, /reload rejected; the running config is unchanged/);
  assert.equal(await body(`${url}/`), 'b');

  // A wrong token is refused.
  const unauthorized = await runCli(['reload', '--admin', adminUrl, '--token', 'wrong-token-wrong-token']);
  assert.equal(unauthorized.code, 1);
  assert.match(unauthorized.stderr, /admin token/);

  // "usher reload" with a valid file.
  writeFileSync(file, yaml(a));
  const reloaded = await runCli(['reload', '--admin', adminUrl], env);
  assert.equal(reloaded.code, 0, reloaded.stderr);
  assert.match(reloaded.stdout, /reloaded/);
  assert.equal(await body(`${url}/`), 'a');
  // The token never reaches the log.
  assert.doesNotMatch(cli.stderr + cli.stdout, new RegExp(token));
});

test('"usher reload" explains what is missing', async () => {
  const none = await runCli(['reload']);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /give -c FILE/);
  const unreachable = await runCli(['reload', '--admin', 'http://127.0.0.1:9']);
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /cannot reach the admin API at http:\/\/127\.0\.0\.1:9/);
});
