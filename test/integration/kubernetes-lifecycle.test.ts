/**
 * Kubernetes discovery across usher's life: a kubeconfig file instead of
 * in-cluster, a start that cannot work (clear error), reloads that move a
 * pool to another Service, drop its discovery or break the `kubernetes`
 * section (rejected, nothing changes), and the probes on the admin listener.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsherConfigError } from '../../src/errors.ts';
import { createAccessLog } from '../../src/observe/access-log.ts';
import { Usher } from '../../src/runtime/usher.ts';
import { configFromYaml } from '../helpers/usher.ts';
import { waitFor } from '../helpers/wait.ts';
import { tempDir, writeKubeconfig } from '../k8s-fake/files.ts';
import { endpointSlice, ready } from '../k8s-fake/objects.ts';
import { startPods } from '../k8s-fake/pods.ts';
import { FakeApiServer } from '../k8s-fake/server.ts';
import { FAST, captureLog, members, shippedRbacRules } from '../k8s-fake/usher.ts';

const yaml = (kubeconfig: string, pool: string, extra = ''): string => `accessLog: { enabled: false }
admin: { bind: 127.0.0.1:0, token: "0123456789abcdef0123" }
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: api
pools:
  api:
${pool}
kubernetes: { kubeconfig: ${JSON.stringify(kubeconfig)} }
${extra}`;

test('a kubeconfig file, reloads that change what a pool watches, a broken kubernetes section rejected, and /readyz', async (t) => {
  const pods = await startPods(3, 'life-');
  const fake = await FakeApiServer.start();
  fake.enforceRules(shippedRbacRules());
  const dir = tempDir();
  t.after(async () => {
    for (const pod of pods) await pod.close();
    await fake.close();
    dir.remove();
  });
  const port = pods[0]!.port;
  fake.apply(endpointSlice('prod', 'api', 'api-a', [ready(pods[0]!.ip, 'a')], [{ name: 'http', port }]));
  fake.apply(endpointSlice('prod', 'api2', 'api2-a', [ready(pods[1]!.ip, 'b'), ready(pods[2]!.ip, 'c')], [{ name: 'http', port }]));
  const kubeconfig = writeKubeconfig(fake, dir.path, { namespace: 'prod' });
  const log = captureLog();
  // No namespace in the pool: the kubeconfig context's.
  const usher = await Usher.start(configFromYaml(yaml(kubeconfig, '    discovery: { kubernetes: { service: api, port: http } }')), { logger: log.logger, accessLog: createAccessLog({ enabled: false }), kubernetes: { timing: FAST } });
  t.after(() => usher.stop({ timeoutMs: 1000 }));
  const pool = () => usher.snapshot.pools.get('api')!.control;
  await waitFor(() => pool().discovered.length === 1, 'the pool from prod/api');
  assert.deepEqual(members(pool()), [`${pods[0]!.ip}:${port}`]);

  // Probes need no token; everything else on the admin listener does.
  const admin = usher.adminUrl!;
  const readyz = await fetch(`${admin}/readyz`);
  assert.equal(readyz.status, 200);
  assert.deepEqual(await readyz.json(), { ready: true, reasons: [] });
  assert.equal((await fetch(`${admin}/livez`)).status, 200);
  assert.equal((await fetch(`${admin}/api/pools`)).status, 401);
  // The source in the admin view, as for DNS sources.
  const view = (await (await fetch(`${admin}/api/pools/api`, { headers: { authorization: 'Bearer 0123456789abcdef0123' } })).json()) as { discovery: { sources: Record<string, unknown>[] } };
  const source = view.discovery.sources[0]!;
  assert.deepEqual([source['source'], source['query'], source['state'], source['members'], source['lastError'], source['resourceVersion']], ['kubernetes', 'EndpointSlices prod/api port http', 'ok', 1, null, usher.kubernetes.reflector('prod', 'api')!.resourceVersion]);
  assert.equal(typeof source['lastSuccessAgeMs'], 'number');
  const text = await (await fetch(`${admin}/metrics`, { headers: { authorization: 'Bearer 0123456789abcdef0123' } })).text();
  assert.match(text, /usher_discovery_members\{pool="api",source="kubernetes"\} 1/);
  assert.doesNotMatch(text, /usher_discovery_resolutions_total\{[^}]*source="kubernetes"/, 'lookups are DNS\'s');

  // Reload: the pool watches another Service. The old watch stops, the members follow.
  const watchesBefore = fake.count('watch', 'endpointslices');
  const moved = await usher.reload(configFromYaml(yaml(kubeconfig, '    discovery: { kubernetes: { service: api2, port: http } }')));
  assert.deepEqual(moved, { ok: true, warnings: [] });
  await waitFor(() => pool().discovered.length === 2, 'the pool from prod/api2');
  assert.deepEqual(members(pool()), [`${pods[1]!.ip}:${port}`, `${pods[2]!.ip}:${port}`].sort());
  await waitFor(() => fake.watchCount === 1, 'one watch left (api2)');
  assert.ok(fake.count('watch', 'endpointslices') > watchesBefore);
  assert.ok(usher.kubernetes.reflector('prod', 'api') === undefined && usher.kubernetes.reflector('prod', 'api2') !== undefined);

  // A port the slices do not have: said once, with the ports they have.
  assert.ok((await usher.reload(configFromYaml(yaml(kubeconfig, '    discovery: { kubernetes: { service: api2, port: htp } }')))).ok);
  await waitFor(() => pool().discovered.length === 0, 'no member without the port');
  assert.ok(log.lines.some((l) => l['msg'] === 'Service prod/api2 has no endpoint port "htp" (its slices have: http (' + port + ')): pool api has no discovered backends'), 'the missing port is logged');
  assert.ok((await usher.reload(configFromYaml(yaml(kubeconfig, '    discovery: { kubernetes: { service: api2, port: http } }')))).ok);
  await waitFor(() => pool().discovered.length === 2, 'back with the right port');

  // A reload that keeps the section and the Service keeps the watch: no new list.
  const lists = fake.count('list', 'endpointslices');
  assert.ok((await usher.reload(configFromYaml(yaml(kubeconfig, '    discovery: { kubernetes: { service: api2, port: http } }\n    retry: { attempts: 1 }')))).ok);
  assert.equal(fake.count('list', 'endpointslices'), lists);
  assert.equal(pool().discovered.length, 2);

  // A broken kubernetes section: the reload is rejected, discovery goes on as before.
  const broken = await usher.reload(configFromYaml(yaml(`${dir.path}/missing-kubeconfig`, '    discovery: { kubernetes: { service: api2, port: http } }')));
  assert.equal(broken.ok, false);
  assert.match(broken.ok ? '' : broken.errors.join('\n'), /kubeconfig .*missing-kubeconfig does not exist/);
  assert.equal(pool().discovered.length, 2);
  fake.apply(endpointSlice('prod', 'api2', 'api2-a', [ready(pods[1]!.ip, 'b')], [{ name: 'http', port }]));
  await waitFor(() => pool().discovered.length === 1, 'changes still arrive after the rejected reload');

  // Discovery dropped from the pool: its discovered members leave, the file's stay, watches stop.
  const dropped = await usher.reload(configFromYaml(yaml(kubeconfig, `    backends: [ { address: "${pods[0]!.ip}:${port}" } ]`)));
  assert.ok(dropped.ok);
  assert.deepEqual(pool().discovered, []);
  assert.deepEqual(pool().backends.map((b) => b.key), [`${pods[0]!.ip}:${port}`]);
  await waitFor(() => fake.watchCount === 0, 'no watch left');
  assert.equal(usher.kubernetes.client, undefined, 'no client when no pool uses Kubernetes');
});

test('starting with discovery.kubernetes outside a cluster fails at once, saying what to set', async () => {
  const config = configFromYaml(yaml('in-cluster', '    discovery: { kubernetes: { service: api, port: http } }'));
  await assert.rejects(
    Usher.start(config, { kubernetes: { environment: { env: {}, serviceAccountDir: '/nonexistent' } } }),
    (e: Error) => e instanceof UsherConfigError && e.details.length === 1 && /KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set.*set kubernetes\.kubeconfig/.test(e.details[0]!),
  );
});
