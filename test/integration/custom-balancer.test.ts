/**
 * A custom balancer named in YAML (`algorithm: { module, options }`), through
 * the real CLI: `usher check` accepts it, points at a bad option's line and
 * names a missing module; `usher start` serves real backends with the
 * distribution the balancer promises; a balancer that throws costs one
 * request a 500, not the process; an edited module is picked up by a reload.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { runCli, spawnCli } from '../helpers/cli.ts';
import { startOrigin, type OriginHandler } from '../helpers/origin.ts';

const example = fileURLToPath(new URL('../../examples/balancers/least-latency.ts', import.meta.url));

/** Answers with the origin's name, after `delayMs`. */
function slow(delayMs: number): OriginHandler {
  return (req, res, origin) => {
    req.resume();
    req.on('end', () => setTimeout(() => res.writeHead(200).end(origin.name), delayMs));
  };
}

/** A temp directory removed after the test; the example is referred to relative to it, as a user would. */
function workDir(t: { after(fn: () => void): void }): { dir: string; exampleRef: string } {
  const dir = mkdtempSync(join(tmpdir(), 'usher-custom-balancer-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, exampleRef: relative(dir, example) };
}

function apiYaml(algorithm: string, backends: readonly string[]): string {
  return `listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: api
pools:
  api:
    algorithm:
${algorithm}
    backends:
${backends.map((address) => `      - address: ${address}\n`).join('')}accessLog:
  enabled: false
`;
}

test('usher check loads the module: ok, a bad option at its line, a missing module by name', async (t) => {
  const { dir, exampleRef } = workDir(t);
  const file = join(dir, 'usher.yaml');

  writeFileSync(file, apiYaml(`      module: ${exampleRef}\n      options: { explore: 0.05 }`, ['127.0.0.1:3001']));
  const ok = await runCli(['check', '-c', file]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^ok: .*usher\.yaml is valid/);

  writeFileSync(file, apiYaml(`      module: ${exampleRef}\n      options:\n        explore: 2`, ['127.0.0.1:3001']));
  const bad = await runCli(['check', '-c', file]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /usher\.yaml:11:18 pools\.api\.algorithm\.options\.explore: .*1/);
  assert.match(bad.stderr, /1 problem in the config/);

  writeFileSync(file, apiYaml('      module: ./balancers/nope.ts', ['127.0.0.1:3001']));
  const missing = await runCli(['check', '-c', file]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /usher\.yaml:9:15 pools\.api\.algorithm\.module: cannot load .*\/balancers\/nope\.ts: no such file \(ENOENT\)/);

  // start refuses the same config with the same message, before binding anything.
  const start = await runCli(['start', '-c', file]);
  assert.equal(start.code, 1);
  assert.match(start.stderr, /pools\.api\.algorithm\.module: cannot load .*nope\.ts: no such file/);
});

test('a real usher serves real backends with the example balancer: the fast backend takes everything after one measurement of each', async (t) => {
  const fast = await startOrigin('fast');
  const slowOne = await startOrigin('slow', slow(40));
  const { dir, exampleRef } = workDir(t);
  const file = join(dir, 'usher.yaml');
  // explore 0: no random detours, so the promise is exact. The slow backend is listed first, so it is tried first.
  writeFileSync(file, apiYaml(`      module: ${exampleRef}\n      options: { explore: 0 }`, [slowOne.address, fast.address]));
  const usher = spawnCli(['start', '-c', file]);
  t.after(async () => {
    usher.child.kill('SIGKILL');
    await Promise.all([fast.close(), slowOne.close()]);
  });
  const [, url] = (await usher.waitFor(/"listener":"web","address":"(http:\/\/[^"]+)"/)) as unknown as [string, string];
  const served: string[] = [];
  for (let i = 0; i < 30; i++) {
    const res = await request(url);
    assert.equal(res.statusCode, 200);
    served.push(await res.body.text());
  }
  // Both unmeasured (cost 0): the first in the list, then the other; from then on the lower average wins.
  assert.deepEqual(served.slice(0, 2), ['slow', 'fast']);
  assert.equal(served.filter((name) => name === 'slow').length, 1, served.join(','));
  assert.equal(usher.child.exitCode, null);
});

test('a module balancer that throws: that request gets 500 balancer_error, the process keeps serving; an edited module is reloaded', async (t) => {
  const a = await startOrigin('a');
  const b = await startOrigin('b');
  const { dir } = workDir(t);
  const file = join(dir, 'usher.yaml');
  writeFileSync(join(dir, 'throws.ts'), `export default {
  name: 'throws',
  create() {
    return { pick(): never { throw new Error('bug in the balancer'); } };
  },
};
`);
  const order = (pickLast: boolean): string => `export default {
  name: 'ordered',
  create(endpoints: readonly { index: number }[]) {
    const list = ${pickLast ? '[...endpoints].reverse()' : 'endpoints'};
    return { pick: (ctx: unknown, accept: (e: unknown, c: unknown) => boolean) => list.find((e) => accept(e, ctx)) };
  },
};
`;
  writeFileSync(join(dir, 'order.ts'), order(false));
  writeFileSync(
    file,
    `listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - match: { pathPrefix: /broken }
        pool: broken
      - pool: ordered
pools:
  broken:
    algorithm: { module: ./throws.ts }
    backends:
      - address: ${a.address}
  ordered:
    algorithm: { module: ./order.ts }
    backends:
      - address: ${a.address}
      - address: ${b.address}
accessLog:
  enabled: false
`,
  );
  const usher = spawnCli(['start', '-c', file]);
  t.after(async () => {
    usher.child.kill('SIGKILL');
    await Promise.all([a.close(), b.close()]);
  });
  const [, url] = (await usher.waitFor(/"listener":"web","address":"(http:\/\/[^"]+)"/)) as unknown as [string, string];
  for (let i = 0; i < 3; i++) {
    const broken = await request(`${url}/broken`);
    assert.equal(broken.statusCode, 500);
    assert.equal(broken.headers['x-usher-error'], 'balancer_error');
    await broken.body.text();
    const fine = await request(`${url}/`);
    assert.equal(fine.statusCode, 200);
    assert.equal(await fine.body.text(), 'a');
  }
  await usher.waitFor(/the balancer threw while picking a backend/);
  assert.match(usher.stderr, /"pool":"broken","algorithm":"throws"/);
  assert.match(usher.stderr, /bug in the balancer/);
  assert.equal(usher.child.exitCode, null, 'the process is alive');
  assert.equal(a.seen.filter((seen) => seen.url === '/broken').length, 0);

  // The file changed: a reload imports it afresh.
  writeFileSync(join(dir, 'order.ts'), order(true));
  usher.child.kill('SIGHUP');
  await usher.waitFor(/config reloaded/);
  const after = await request(`${url}/`);
  assert.equal(await after.body.text(), 'b');
});
