/**
 * Pools from EndpointSlices, end to end: the fake API server (test/k8s-fake/),
 * usher with `discovery.kubernetes` and in-cluster credentials pointing at it,
 * and real pods on loopback (127.0.0.x, one port). K1-K10 of the research's
 * spec (shared/research/cores-and-discovery.md, B7).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Agent, request } from 'undici';
import { KUBERNETES_API_ACCESS } from '../../src/kubernetes/access.ts';
import { getOnConnection } from '../helpers/one-shot.ts';
import { waitFor } from '../helpers/wait.ts';
import { endpointSlice, ready, terminating } from '../k8s-fake/objects.ts';
import { addPod, startPods, type Pod } from '../k8s-fake/pods.ts';
import { members, startCluster } from '../k8s-fake/usher.ts';

const slice = (name: string, pods: readonly Pod[], state: (ip: string, pod: string) => ReturnType<typeof ready> = ready) =>
  endpointSlice('prod', 'api', name, pods.map((p) => state(p.ip, p.name)), [{ name: 'http', port: pods[0]?.port ?? 1 }]);
const key = (pod: Pod): string => `${pod.ip}:${pod.port}`;

async function closeAll(pods: readonly Pod[]): Promise<void> {
  for (const pod of pods) await pod.close();
}

/** GETs through usher, each on a kept-alive connection of one agent; returns the answering pods' names (or `status NNN`). */
async function get(url: string, count: number, headers: Record<string, string> = {}, path = '/'): Promise<string[]> {
  const agent = new Agent({ connections: 4 });
  try {
    const out: string[] = [];
    for (let i = 0; i < count; i++) {
      const res = await request(`${url}${path}`, { dispatcher: agent, headers });
      const body = await res.body.text();
      out.push(res.statusCode === 200 ? body : `status ${res.statusCode} ${String(res.headers['x-usher-error'] ?? '')}`);
    }
    return out;
  } finally {
    await agent.close();
  }
}

function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

test('K1: the first list fills the pool: slices merged, endpoints deduplicated, other Services and namespaces ignored', async (t) => {
  const pods = await startPods(3, 'k1-');
  t.after(() => closeAll(pods));
  const { fake, usher, pool } = await startCluster(t, {
    before: (f) => {
      f.apply(slice('api-a', [pods[0]!, pods[1]!]));
      f.apply(slice('api-b', [pods[1]!, pods[2]!])); // pods[1] in both slices
      f.apply(endpointSlice('prod', 'web', 'web-a', [ready('127.0.0.250')], [{ name: 'http', port: pods[0]!.port }]));
      f.apply(endpointSlice('staging', 'api', 'api-s', [ready('127.0.0.251')], [{ name: 'http', port: pods[0]!.port }]));
    },
  });
  await waitFor(() => pool().discovered.length === 3, 'three members');
  assert.deepEqual(members(pool()), pods.map(key).sort());
  assert.equal(pool().discovered.find((b) => b.key === key(pods[0]!))?.name, 'k1-0', 'members are named after their pods');
  assert.deepEqual(usher.readiness(), { ready: true, reasons: [] });
  const answered = await get(usher.url('web'), 30);
  assert.deepEqual(new Set(answered), new Set(pods.map((p) => p.name)));
  assert.equal(fake.count('list', 'endpointslices'), 1);
  await waitFor(() => fake.watchCount === 1, 'the watch after the list');
  const watch = fake.requests.find((r) => r.verb === 'watch')!;
  assert.equal(watch.namespace, 'prod');
  assert.equal(watch.query.get('labelSelector'), 'kubernetes.io/service-name=api');
  assert.equal(watch.query.get('allowWatchBookmarks'), 'true');
  assert.equal(watch.query.get('resourceVersion'), String(fake.revision), 'watched from the list\'s version (nothing changed since)');
  assert.equal(metric(await usher.renderMetrics(), 'usher_discovery_members', { pool: 'api', source: 'kubernetes' }), 3);
  assert.equal(metric(await usher.renderMetrics(), 'usher_kubernetes_synced'), 1);
  // Every call usher made is in the table the RBAC test checks the ClusterRole against (and the fake enforces that ClusterRole).
  const declared = new Set(KUBERNETES_API_ACCESS.flatMap((a) => a.verbs.map((v) => `${v} ${a.resource}`)));
  for (const r of fake.requests) assert.ok(r.verb !== undefined && declared.has(`${r.verb} ${r.resource}`), `${r.method} ${r.path}: not in KUBERNETES_API_ACCESS`);
  assert.ok(fake.requests.every((r) => r.status === 200));
});

test('K2: a scale-up reaches every worker (runtime.workers: 2) within the deadline', async (t) => {
  const pods = await startPods(1, 'k2-');
  const extra: Pod[] = [];
  t.after(() => closeAll([...pods, ...extra]));
  const { fake, usher, pool } = await startCluster(t, { workers: 2, before: (f) => f.apply(slice('api-a', [])) });
  await waitFor(() => usher.readiness().ready, 'the first list');
  const port = usher.address('web').port;
  assert.equal((await getOnConnection(port)).status, 503, 'no endpoint yet: 503');
  // From nothing to one pod: a worker that missed the change would answer 503 on its share of new connections.
  const changedAt = performance.now();
  fake.apply(slice('api-a', pods));
  const tookMs = await waitFor(async () => {
    const batch = await Promise.all(Array.from({ length: 10 }, () => getOnConnection(port)));
    return batch.every((r) => r.status === 200);
  }, 'ten requests on new connections all answered by the new pod', 5000, 10);
  const batch = await Promise.all(Array.from({ length: 40 }, () => getOnConnection(port)));
  assert.deepEqual(batch.filter((r) => r.status !== 200).map((r) => r.head.split('\r\n')[0]), [], 'every worker routes to the new pod');
  await usher.refresh(); // the workers' usage, fresh
  assert.ok(usher.workers.length === 2 && usher.workers.every((w) => w.requests > 0), `both workers served some of those connections (${usher.workers.map((w) => w.requests).join(', ')})`);
  t.diagnostic(`0 → 1 pod: every worker serving it ${Math.round(tookMs)} ms after the change (${Math.round(performance.now() - changedAt)} ms with the checks)`);

  extra.push(await addPod('k2-1', pods[0]!), await addPod('k2-2', pods[0]!));
  fake.apply(slice('api-a', [...pods, ...extra]));
  await waitFor(() => pool().discovered.length === 3, 'three members', 2000);
  await usher.settled(); // every worker applied the control plane's changes so far
  const spread = await Promise.all(Array.from({ length: 60 }, () => getOnConnection(port)));
  assert.ok(spread.every((r) => r.status === 200));
  assert.deepEqual(new Set(spread.map((r) => r.body)), new Set(['k2-0', 'k2-1', 'k2-2']));
});

test('K3: a terminating endpoint drains (no new picks; sticky and in-flight requests continue); all terminating: they still serve', async (t) => {
  const releases: (() => void)[] = [];
  const pods = await startPods(2, 'k3-', (req, res, pod) => {
    req.resume();
    const answer = (): void => void res.writeHead(200, { 'x-origin': pod.name }).end(pod.name);
    if (req.url === '/slow') releases.push(answer);
    else answer();
  });
  t.after(() => closeAll(pods));
  const { fake, usher, pool } = await startCluster(t, { pool: '    sticky: { cookie: srv }\n', before: (f) => f.apply(slice('api-a', pods)) });
  await waitFor(() => pool().discovered.length === 2, 'two members');
  const url = usher.url('web');
  // A sticky cookie pinned to pod 0.
  let cookie = '';
  await waitFor(async () => {
    const res = await request(`${url}/`);
    const body = await res.body.text();
    if (body === 'k3-0') cookie = String(res.headers['set-cookie']).split(';')[0]!;
    return cookie !== '';
  }, 'a response from pod 0 with its cookie');
  // An in-flight request on pod 0.
  const slow = request(`${url}/slow`, { headers: { cookie } }).then(async (res) => ({ status: res.statusCode, body: await res.body.text() }));
  await waitFor(() => pods[0]!.inFlight === 1, 'the slow request on pod 0');

  fake.apply(endpointSlice('prod', 'api', 'api-a', [terminating(pods[0]!.ip, 'k3-0'), ready(pods[1]!.ip, 'k3-1')], [{ name: 'http', port: pods[0]!.port }]));
  await waitFor(() => pool().find(key(pods[0]!))?.terminating === true, 'pod 0 terminating');
  assert.equal(pool().find(key(pods[0]!))!.state, 'draining');
  assert.deepEqual(new Set(await get(url, 20)), new Set(['k3-1']), 'no new request goes to the terminating pod');
  assert.deepEqual(new Set(await get(url, 5, { cookie })), new Set(['k3-0']), 'a sticky client keeps its terminating pod');
  releases.shift()!();
  assert.deepEqual(await slow, { status: 200, body: 'k3-0' }, 'the request in flight finished');

  fake.apply(endpointSlice('prod', 'api', 'api-a', [terminating(pods[0]!.ip, 'k3-0'), terminating(pods[1]!.ip, 'k3-1')], [{ name: 'http', port: pods[0]!.port }]));
  await waitFor(() => pool().mode === 'fallback', 'fallback mode');
  assert.deepEqual(new Set(await get(url, 20)), new Set(['k3-0', 'k3-1']), 'nothing ready: the terminating pods still serve (kube-proxy), not 503');
  assert.equal(metric(await usher.renderMetrics(), 'usher_backend_state', { pool: 'api', state: 'draining' }), 2);

  fake.apply(slice('api-a', pods));
  await waitFor(() => pool().mode === 'primary' && pool().discovered.every((b) => !b.terminating), 'both ready again');
  assert.equal(pool().find(key(pods[0]!))!.state, 'healthy', 'discovery lifted the drain it made');
});

test('K4: an endpoint that goes, a pod no longer serving and a deleted slice are removed', async (t) => {
  const pods = await startPods(3, 'k4-');
  t.after(() => closeAll(pods));
  const { fake, usher, pool, log } = await startCluster(t, { before: (f) => { f.apply(slice('api-a', [pods[0]!, pods[1]!])); f.apply(slice('api-b', [pods[2]!])); } });
  await waitFor(() => pool().discovered.length === 3, 'three members');
  const gone = pool().find(key(pods[1]!))!;
  fake.apply(slice('api-a', [pods[0]!]));
  await waitFor(() => pool().find(key(pods[1]!)) === undefined, 'pod 1 removed');
  assert.equal(gone.removed, true);
  fake.apply(endpointSlice('prod', 'api', 'api-b', [{ ip: pods[2]!.ip, ready: false, serving: false, terminating: true }], [{ name: 'http', port: pods[2]!.port }]));
  await waitFor(() => pool().find(key(pods[2]!)) === undefined, 'pod 2 (terminating, not serving) removed');
  assert.deepEqual(new Set(await get(usher.url('web'), 10)), new Set(['k4-0']));
  fake.remove('EndpointSlice', 'prod', 'api-a');
  fake.remove('EndpointSlice', 'prod', 'api-b');
  await waitFor(() => pool().discovered.length === 0, 'pool empty');
  assert.equal(pool().mode, 'none');
  assert.match((await get(usher.url('web'), 1))[0]!, /^status 503 no_backend/);
  await waitFor(() => log.lines.some((l) => String(l['msg']).startsWith('Service prod/api has no EndpointSlices')), 'the empty Service is logged');
});

test('K5: a cut watch resumes from the last resourceVersion without listing again', async (t) => {
  const pods = await startPods(3, 'k5-');
  t.after(() => closeAll(pods));
  const { fake, usher, pool } = await startCluster(t, { before: (f) => f.apply(slice('api-a', [pods[0]!])) });
  await waitFor(() => pool().discovered.length === 1, 'one member');
  await waitFor(() => fake.watchCount === 1, 'watching');
  const changed = fake.apply(slice('api-a', [pods[0]!, pods[1]!]));
  await waitFor(() => pool().discovered.length === 2, 'two members');
  const watchesBefore = fake.count('watch', 'endpointslices');
  fake.failNext(2, 500, 'watch'); // and the first two resumes fail: still no relist
  assert.equal(fake.cutWatches(), 1);
  await waitFor(() => fake.count('watch', 'endpointslices') === watchesBefore + 3 && fake.watchCount === 1, 'a new watch after two refused ones');
  const resumed = fake.requests.filter((r) => r.verb === 'watch').at(-1)!;
  assert.equal(resumed.query.get('resourceVersion'), changed.metadata.resourceVersion, 'resumed from the last event\'s version');
  fake.apply(slice('api-a', pods));
  await waitFor(() => pool().discovered.length === 3, 'the change after the cut arrives');
  assert.equal(fake.count('list', 'endpointslices'), 1, 'exactly one list: no relist after a cut');
  assert.equal(usher.kubernetes.reflector('prod', 'api')!.stats.relists, 0);
  const text = await usher.renderMetrics();
  assert.ok(metric(text, 'usher_kubernetes_watch_restarts_total', { kind: 'EndpointSlice' }) >= 3);
  assert.equal(metric(text, 'usher_kubernetes_request_errors_total', { kind: 'EndpointSlice', code: '500' }), 2);
  assert.ok(metric(text, 'usher_kubernetes_watch_events_total', { kind: 'EndpointSlice', type: 'MODIFIED' }) >= 2);
  assert.equal(metric(text, 'usher_kubernetes_relists_total', { kind: 'EndpointSlice' }), 0);
});

test('K6: 410 Gone lists again, and the diff keeps unchanged backends (their health and counters)', async (t) => {
  const pods = await startPods(3, 'k6-');
  t.after(() => closeAll(pods));
  const { fake, usher, pool } = await startCluster(t, { before: (f) => { f.apply(slice('api-a', [pods[0]!])); f.apply(slice('api-b', [pods[1]!])); } });
  await waitFor(() => pool().discovered.length === 2, 'two members');
  await waitFor(() => fake.watchCount === 1, 'watching');
  await get(usher.url('web'), 10);
  const before = pool().discovered.map((b) => [b, b.counters.requests, b.slot] as const);
  assert.ok(before.every(([, requests]) => requests > 0));
  before[0]![0].ejections = 3; // stands for any health state the control plane keeps
  // While the watch sees nothing, pod 2 appears and the history is compacted past the client's version.
  fake.stallWatches();
  fake.apply(slice('api-b', [pods[1]!, pods[2]!]));
  fake.compact();
  fake.cutWatches();
  await waitFor(() => pool().discovered.length === 3, 'pod 2 after the relist');
  assert.equal(fake.count('list', 'endpointslices'), 2, 'one relist');
  assert.equal(fake.requests.filter((r) => r.watchError === 410).length, 1, 'the resume was refused with 410 once');
  await waitFor(() => fake.requests.filter((r) => r.verb === 'watch').at(-1)!.query.get('resourceVersion') === String(fake.revision), 'then a watch from the new list\'s version');
  for (const [backend, requests, slot] of before) {
    assert.equal(pool().find(backend.key), backend, `${backend.key}: the same backend object`);
    assert.equal(backend.slot, slot);
    assert.ok(backend.counters.requests >= requests, `${backend.key}: counters kept`);
  }
  assert.equal(before[0]![0].ejections, 3);
  assert.equal(usher.kubernetes.reflector('prod', 'api')!.stats.relists, 1);
  assert.equal(metric(await usher.renderMetrics(), 'usher_kubernetes_relists_total', { kind: 'EndpointSlice' }), 1);
  assert.equal(metric(await usher.renderMetrics(), 'usher_kubernetes_request_errors_total', { kind: 'EndpointSlice', code: '410' }), 1);
});

test('K7: bookmarks move the version on; a resume after one starts from the bookmark\'s version', async (t) => {
  const pods = await startPods(1, 'k7-');
  t.after(() => closeAll(pods));
  const { fake, usher, pool } = await startCluster(t, { before: (f) => f.apply(slice('api-a', pods)) });
  await waitFor(() => pool().discovered.length === 1, 'one member');
  await waitFor(() => fake.watchCount === 1, 'watching');
  const listed = usher.kubernetes.reflector('prod', 'api')!.resourceVersion;
  // Other Services change: the revision moves, this watch sees no event.
  for (let i = 0; i < 5; i++) fake.apply(endpointSlice('prod', 'web', 'web-a', [ready(`127.0.0.${200 + i}`)], [{ name: 'http', port: 80 }]));
  const bookmarkAt = String(fake.revision);
  assert.notEqual(bookmarkAt, listed);
  fake.sendBookmarks();
  await waitFor(() => usher.kubernetes.reflector('prod', 'api')!.resourceVersion === bookmarkAt, 'the bookmark\'s version taken');
  fake.compact(); // a resume from the list's version would now be 410
  fake.cutWatches();
  await waitFor(() => fake.count('watch', 'endpointslices') === 2 && fake.watchCount === 1, 'resumed');
  assert.equal(fake.requests.filter((r) => r.verb === 'watch').at(-1)!.query.get('resourceVersion'), bookmarkAt);
  assert.equal(fake.count('list', 'endpointslices'), 1, 'no relist: the bookmark kept the version fresh');
  assert.ok(metric(await usher.renderMetrics(), 'usher_kubernetes_watch_events_total', { type: 'BOOKMARK' }) >= 1);
});

test('K8: while the API server is down usher keeps serving the last endpoints; back without history, it lists again', async (t) => {
  const pods = await startPods(3, 'k8-');
  t.after(() => closeAll(pods));
  const { fake, usher, pool } = await startCluster(t, { before: (f) => f.apply(slice('api-a', [pods[0]!, pods[1]!])) });
  await waitFor(() => pool().discovered.length === 2, 'two members');
  const kept = pool().discovered.slice();
  await fake.down();
  const reflector = usher.kubernetes.reflector('prod', 'api')!;
  await waitFor(() => reflector.lastError !== undefined, 'the client noticed');
  // Down for 2 s (a real outage may last minutes; the client only keeps backing off): every request still served.
  const until = performance.now() + 2000;
  let served = 0;
  while (performance.now() < until) {
    const answered = await get(usher.url('web'), 5);
    assert.ok(answered.every((a) => a === 'k8-0' || a === 'k8-1'), answered.join(', '));
    served += answered.length;
  }
  assert.deepEqual(pool().discovered, kept, 'the same members, untouched');
  assert.ok(usher.readiness().ready, 'still ready: it serves the last known endpoints');
  const attempts = fake.requests.length;
  // Changes made meanwhile, and a restart that lost the history.
  fake.apply(slice('api-a', pods));
  fake.restart();
  await fake.up();
  await waitFor(() => pool().discovered.length === 3, 'the change made during the outage', 5000);
  assert.equal(fake.count('list', 'endpointslices'), 2, 'one relist after 410');
  for (const backend of kept) assert.equal(pool().find(backend.key), backend);
  assert.equal(reflector.lastError, undefined);
  t.diagnostic(`${served} requests served during the 2 s outage; ${fake.requests.length - attempts} requests reached the fake after it came back`);
});

test('K9: a rotated service-account token is used by the next request', async (t) => {
  const pods = await startPods(2, 'k9-');
  t.after(() => closeAll(pods));
  const { fake, inCluster, pool } = await startCluster(t, { before: (f) => f.apply(slice('api-a', [pods[0]!])) });
  await waitFor(() => pool().discovered.length === 1, 'one member');
  await waitFor(() => fake.watchCount === 1, 'watching (its request made with the first token)');
  const first = fake.token;
  const before = fake.requests.length;
  fake.tokens.set('rotated-token', 'system:serviceaccount:prod:usher');
  inCluster.rotateToken('rotated-token');
  fake.tokens.delete(first); // the old token expired
  fake.cutWatches();
  await waitFor(() => fake.requests.some((r) => r.verb === 'watch' && r.token === 'rotated-token' && r.status === 200), 'a watch with the new token');
  assert.deepEqual(fake.requests.slice(before).filter((r) => r.token !== 'rotated-token').map((r) => `${r.verb} ${r.status}`), [], 'the old token was never sent after the rotation');
  fake.apply(slice('api-a', pods));
  await waitFor(() => pool().discovered.length === 2, 'changes arrive over the new token');
});

test('K10: 403 is logged with the verb, resource and the fix, retried with backoff, and recovers when the permission comes back', async (t) => {
  const pods = await startPods(1, 'k10-');
  t.after(() => closeAll(pods));
  const { fake, usher, pool, log } = await startCluster(t, {
    before: (f) => {
      f.apply(slice('api-a', pods));
      f.forbid('list', 'endpointslices');
    },
  });
  // Backoff: after three failures the next three attempts wait at least 100 + 200 + 200 ms (50 ms doubling, half jitter);
  // a client without backoff would make them within a few ms.
  await waitFor(() => fake.count('list', 'endpointslices') >= 6, 'six attempts', 5000);
  const lists = fake.requests.filter((r) => r.verb === 'list');
  assert.ok(lists.every((r) => r.status === 403));
  const spacing = lists[5]!.at - lists[2]!.at;
  assert.ok(spacing >= 450, `attempts 3 to 6 within ${Math.round(spacing)} ms: no backoff`);
  assert.deepEqual(usher.readiness(), { ready: false, reasons: ['waiting for the first list of the EndpointSlices that pools are discovered from'] });
  assert.equal(pool().discovered.length, 0);
  const errors = log.lines.filter((l) => l['level'] === 50 && String(l['msg']).includes('403'));
  assert.ok(errors.length >= 1, 'logged as an error');
  assert.ok(errors.length <= 2, `logged once per failure streak, not per retry (${errors.length})`);
  const line = errors[0]!;
  assert.match(String(line['msg']), /^list endpointslices\.discovery\.k8s\.io in namespace "prod": 403 Forbidden: .*cannot list resource "endpointslices".*deploy\/kubernetes\/rbac\.yaml/);
  assert.equal(line['verb'], 'list');
  assert.equal(line['status'], '403');
  fake.allow('list', 'endpointslices');
  await waitFor(() => pool().discovered.length === 1, 'the pool fills once allowed', 3000);
  assert.ok(usher.readiness().ready);
  assert.ok(log.lines.some((l) => String(l['msg']).includes('answers again')), 'the recovery is logged');
  assert.ok(metric(await usher.renderMetrics(), 'usher_kubernetes_request_errors_total', { code: '403' }) >= 4);
});
