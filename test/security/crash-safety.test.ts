import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { request } from 'undici';
import { registerBalancer } from '../../src/balancer/registry.ts';
import type { AlgorithmName, UsherConfig } from '../../src/config/types.ts';
import { createAccessLog } from '../../src/observe/access-log.ts';
import { Usher } from '../../src/runtime/usher.ts';
import { startOrigin } from '../helpers/origin.ts';
import { configFromYaml } from '../helpers/usher.ts';

// A plug-in balancer with a bug: it throws on every pick.
registerBalancer('explodes-on-pick', () => ({
  pick() {
    throw new Error('bug in a custom balancer');
  },
}));

test('an exception while serving one request answers 500 and closes that connection; the process keeps serving', async (t) => {
  const origin = await startOrigin('ok');
  const base = configFromYaml(`listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - match: { pathPrefix: /broken }
        pool: broken
      - pool: fine
pools:
  broken:
    backends:
      - address: ${origin.address}
  fine:
    backends:
      - address: ${origin.address}
`);
  // An embedder's config object may name any registered algorithm.
  const broken = { ...base.pools['broken']!, algorithm: 'explodes-on-pick' as AlgorithmName };
  const config: UsherConfig = { ...base, pools: { ...base.pools, broken } };
  const logged: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logged.push(JSON.parse(chunk.toString()) as { level: number; msg: string });
      done();
    },
  });
  const usher = await Usher.start(config, { accessLog: createAccessLog({ enabled: false }), logger: pino(sink) });
  t.after(async () => {
    await usher.stop({ timeoutMs: 500 });
    await origin.close();
  });
  for (let i = 0; i < 3; i++) {
    const res = await request(`${usher.url('web')}/broken/${i}`);
    assert.equal(res.statusCode, 500);
    assert.equal(res.headers['x-usher-error'], 'internal_error');
    assert.equal(res.headers['connection'], 'close');
    await res.body.text();
    const fine = await request(`${usher.url('web')}/fine`);
    assert.equal(fine.statusCode, 200);
    assert.equal(await fine.body.text(), 'ok');
  }
  const errors = logged.filter((line) => line.level >= 50);
  assert.equal(errors.length, 3, 'each internal error is logged once');
  assert.match(errors[0]!.msg, /internal error on a client connection/);
  assert.equal(origin.seen.length, 3, 'only the healthy route reached the backend');
  const pool = usher.snapshot.pools.get('broken')!;
  assert.equal(pool.control.backends[0]!.inFlight, 0);
});
