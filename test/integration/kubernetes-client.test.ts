/**
 * usher's Kubernetes client (src/kubernetes/client.ts) against the fake API
 * server (test/k8s-fake/), which also checks the fake's protocol: paging over
 * a consistent snapshot, selectors, versions, watch events and their
 * selector transitions, 410 Gone, bookmarks, timeoutSeconds, the status
 * subresource with 409 on a stale version (what the route translation will
 * use), typed errors and token files read per request.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { KubeClient } from '../../src/kubernetes/client.ts';
import { loadConnection } from '../../src/kubernetes/connection.ts';
import { KubernetesApiError, KubernetesNetworkError } from '../../src/kubernetes/errors.ts';
import { ENDPOINT_SLICES, GATEWAYS, HTTP_ROUTES, INGRESSES, SERVICES } from '../../src/kubernetes/resources.ts';
import type { KubeObject, WatchEvent } from '../../src/kubernetes/types.ts';
import { waitFor } from '../helpers/wait.ts';
import { tempDir, writeKubeconfig, writeServiceAccount } from '../k8s-fake/files.ts';
import { endpointSlice, ready } from '../k8s-fake/objects.ts';
import { FakeApiServer, type FakeApiServerOptions } from '../k8s-fake/server.ts';

async function setup(t: TestContext, options: FakeApiServerOptions = {}): Promise<{ fake: FakeApiServer; client: KubeClient; dir: string }> {
  const fake = await FakeApiServer.start(options);
  const dir = tempDir();
  const client = new KubeClient(loadConnection({ kubeconfig: writeKubeconfig(fake, dir.path) }));
  t.after(async () => {
    client.close();
    await fake.close();
    dir.remove();
  });
  return { fake, client, dir: dir.path };
}

const names = (items: readonly KubeObject[] | undefined): string[] => (items ?? []).map((i) => i.metadata?.name ?? '');

test('list: label and field selectors, namespaces, paging over one snapshot, and lists at an exact version', async (t) => {
  const { fake, client } = await setup(t);
  for (let i = 0; i < 5; i++) fake.apply(endpointSlice('prod', i % 2 === 0 ? 'api' : 'web', `s${i}`, [ready(`10.0.0.${i + 1}`)]));
  fake.apply(endpointSlice('dev', 'api', 'd0', [ready('10.1.0.1')]));
  assert.deepEqual(names((await client.list(ENDPOINT_SLICES, { namespace: 'prod', labelSelector: 'kubernetes.io/service-name=api' })).items), ['s0', 's2', 's4']);
  assert.deepEqual(names((await client.list(ENDPOINT_SLICES, { labelSelector: 'kubernetes.io/service-name in (api)' })).items), ['d0', 's0', 's2', 's4'], 'every namespace, in key order');
  assert.deepEqual(names((await client.list(ENDPOINT_SLICES, { labelSelector: 'kubernetes.io/service-name!=api,endpointslice.kubernetes.io/managed-by' })).items), ['s1', 's3']);
  assert.deepEqual(names((await client.list(ENDPOINT_SLICES, { fieldSelector: 'metadata.namespace=dev' })).items), ['d0']);
  assert.deepEqual(names((await client.list(ENDPOINT_SLICES, { namespace: 'prod', fieldSelector: 'metadata.name=s3' })).items), ['s3']);
  await assert.rejects(client.list(ENDPOINT_SLICES, { fieldSelector: 'spec.nope=1' }), (e: KubernetesApiError) => e.status === 400 && /field label not supported/.test(e.message));

  const first = await client.list(ENDPOINT_SLICES, { namespace: 'prod', limit: 2 });
  assert.deepEqual(names(first.items), ['s0', 's1']);
  assert.equal(first.metadata?.remainingItemCount, 3);
  const version = first.metadata?.resourceVersion;
  fake.apply(endpointSlice('prod', 'api', 's1a', [ready('10.0.0.9')])); // after the first page: not in this list
  fake.remove('EndpointSlice', 'prod', 's3');
  const second = await client.list(ENDPOINT_SLICES, { namespace: 'prod', limit: 2, continue: first.metadata?.continue });
  assert.deepEqual(names(second.items), ['s2', 's3'], 'later pages come from the first page\'s snapshot');
  assert.equal(second.metadata?.resourceVersion, version);
  const all = await client.listAll(ENDPOINT_SLICES, { namespace: 'prod', limit: 2 });
  assert.deepEqual(names(all.items), ['s0', 's1', 's1a', 's2', 's4']);
  assert.equal(all.pages, 3);

  const exact = await client.list(ENDPOINT_SLICES, { namespace: 'prod', resourceVersion: version, resourceVersionMatch: 'Exact' });
  assert.deepEqual(names(exact.items), ['s0', 's1', 's2', 's3', 's4'], 'the state at that version');
  fake.compact();
  await assert.rejects(client.list(ENDPOINT_SLICES, { namespace: 'prod', limit: 2, continue: first.metadata?.continue }), (e: KubernetesApiError) => e.gone && e.reason === 'Expired');
  await assert.rejects(client.list(ENDPOINT_SLICES, { resourceVersion: '999999', resourceVersionMatch: 'NotOlderThan' }), (e: KubernetesApiError) => e.status === 504);
});

test('watch: events in order, selector transitions, bookmarks, 410 for a compacted version, the server ending at timeoutSeconds', async (t) => {
  const { fake, client } = await setup(t, { bookmarkIntervalMs: 60_000 });
  fake.apply(endpointSlice('prod', 'api', 'a', [ready('10.0.0.1')]));
  const listed = await client.list(ENDPOINT_SLICES, { namespace: 'prod' });
  const events: WatchEvent[] = [];
  const abort = new AbortController();
  const watching = client.watch(ENDPOINT_SLICES, { namespace: 'prod', labelSelector: 'kubernetes.io/service-name=api', resourceVersion: listed.metadata!.resourceVersion! }, (e) => events.push(e), { signal: abort.signal });
  await waitFor(() => fake.watchCount === 1, 'the watch to open');
  fake.apply(endpointSlice('prod', 'api', 'a', [ready('10.0.0.2')]));
  fake.apply(endpointSlice('prod', 'web', 'w', [ready('10.0.0.3')])); // another Service: not seen
  fake.apply(endpointSlice('prod', 'web', 'a', [ready('10.0.0.2')])); // relabelled away: DELETED
  fake.apply(endpointSlice('prod', 'api', 'a', [ready('10.0.0.2')])); // back: ADDED
  fake.remove('EndpointSlice', 'prod', 'a');
  fake.sendBookmarks();
  await waitFor(() => events.length === 5, 'five events');
  assert.deepEqual(events.map((e) => e.type), ['MODIFIED', 'DELETED', 'ADDED', 'DELETED', 'BOOKMARK']);
  const versions = events.map((e) => Number((e.object as KubeObject).metadata?.resourceVersion));
  assert.ok(versions.every((v, i) => i === 0 || v >= versions[i - 1]!), 'versions never go back');
  assert.equal((events[4]!.object as KubeObject).metadata?.resourceVersion, String(fake.revision), 'a bookmark carries the current revision');
  assert.equal((events[0]!.object as KubeObject).kind, 'EndpointSlice', 'watch objects carry their kind');
  abort.abort();
  await watching;

  fake.compact();
  const gone: WatchEvent[] = [];
  await client.watch(ENDPOINT_SLICES, { namespace: 'prod', resourceVersion: listed.metadata!.resourceVersion! }, (e) => gone.push(e));
  assert.equal(gone.length, 1);
  assert.equal(gone[0]!.type, 'ERROR');
  assert.equal((gone[0]!.object as { code?: number }).code, 410);

  const started = performance.now();
  await client.watch(ENDPOINT_SLICES, { namespace: 'prod', resourceVersion: String(fake.revision), timeoutSeconds: 1 }, () => {});
  const took = performance.now() - started;
  assert.ok(took >= 900 && took < 5000, `the server ends the watch at timeoutSeconds (took ${Math.round(took)} ms)`);

  // Watch-list streaming: the current state as ADDED events, then a bookmark marking their end.
  const streamed: WatchEvent[] = [];
  const list = new AbortController();
  const streaming = fakeWatchList(fake, (e) => streamed.push(e), list.signal);
  await waitFor(() => streamed.length >= 2, 'initial events and their end');
  assert.deepEqual(streamed.map((e) => e.type), ['ADDED', 'BOOKMARK']);
  assert.deepEqual((streamed[1]!.object as KubeObject).metadata?.annotations, { 'k8s.io/initial-events-end': 'true' });
  list.abort();
  await streaming;

  const initial: WatchEvent[] = [];
  fake.apply(endpointSlice('prod', 'api', 'b', [ready('10.0.0.5')]));
  const ctl = new AbortController();
  const w = client.watch(ENDPOINT_SLICES, { namespace: 'prod', resourceVersion: '' }, (e) => initial.push(e), { signal: ctl.signal });
  await waitFor(() => initial.length >= 2, 'synthetic ADDED events for the current state');
  assert.deepEqual(initial.map((e) => [e.type, (e.object as KubeObject).metadata?.name]), [['ADDED', 'b'], ['ADDED', 'w']]);
  ctl.abort();
  await w;
});

/** `sendInitialEvents=true` is not a client option (usher lists, then watches): ask for it by hand, as client-go's watch-list does. */
async function fakeWatchList(fake: FakeApiServer, onEvent: (e: WatchEvent) => void, signal: AbortSignal): Promise<void> {
  const query = 'watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&resourceVersion=';
  const refused = await fetchJson(fake, `/apis/discovery.k8s.io/v1/namespaces/prod/endpointslices?watch=true&sendInitialEvents=true`);
  assert.equal(refused.status, 422, 'sendInitialEvents needs NotOlderThan and bookmarks');
  const { request } = await import('node:https');
  await new Promise<void>((resolve, reject) => {
    const req = request(`${fake.url}/apis/discovery.k8s.io/v1/namespaces/prod/endpointslices?${query}`, { ca: fake.ca, headers: { authorization: `Bearer ${fake.token}` }, signal }, (res) => {
      let buffered = '';
      res.setEncoding('utf8').on('data', (chunk: string) => {
        buffered += chunk;
        for (let i = buffered.indexOf('\n'); i !== -1; i = buffered.indexOf('\n')) {
          onEvent(JSON.parse(buffered.slice(0, i)) as WatchEvent);
          buffered = buffered.slice(i + 1);
        }
      });
      res.on('close', () => resolve());
    });
    req.on('error', (e) => (signal.aborted ? resolve() : reject(e)));
    req.end();
  });
}

async function fetchJson(fake: FakeApiServer, path: string): Promise<{ status: number }> {
  const { request } = await import('node:https');
  return new Promise((resolve, reject) => {
    request(`${fake.url}${path}`, { ca: fake.ca, headers: { authorization: `Bearer ${fake.token}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
    }).on('error', reject).end();
  });
}

test('watch: a cut stream and a stalled one fail as network errors; the client reads the token file for every request', async (t) => {
  const { fake } = await setup(t);
  const dir = tempDir();
  t.after(() => dir.remove());
  const sa = writeServiceAccount(fake, dir.path);
  const client = new KubeClient(loadConnection(undefined, { serviceAccountDir: sa.dir, env: sa.env }));
  t.after(() => client.close());
  const cut = client.watch(ENDPOINT_SLICES, { namespace: 'prod', resourceVersion: String(fake.revision) }, () => {});
  await waitFor(() => fake.watchCount === 1, 'the watch to open');
  fake.cutWatches();
  await assert.rejects(cut, (e: Error) => e instanceof KubernetesNetworkError && /watch stream was cut/.test(e.message));
  const stalled = client.watch(ENDPOINT_SLICES, { namespace: 'prod', resourceVersion: String(fake.revision) }, () => {}, { idleTimeoutMs: 300 });
  await waitFor(() => fake.watchCount === 1, 'the watch to open');
  fake.stallWatches();
  fake.apply(endpointSlice('prod', 'api', 'x', [ready('10.0.0.1')]));
  await assert.rejects(stalled, (e: Error) => e instanceof KubernetesNetworkError && /stalled/.test(e.message));

  fake.tokens.set('rotated-token', 'system:serviceaccount:usher:usher');
  sa.rotateToken('rotated-token');
  await client.list(ENDPOINT_SLICES, { namespace: 'prod' });
  assert.equal(fake.requests.at(-1)!.token, 'rotated-token', 'the next request carries the new token');
  fake.tokens.delete(fake.token);
  sa.rotateToken(fake.token);
  await assert.rejects(client.list(ENDPOINT_SLICES, { namespace: 'prod' }), (e: KubernetesApiError) => e.status === 401 && /did not accept usher's credentials/.test(e.message));
});

test('errors name the verb and resource; 403 says which RBAC rule is missing', async (t) => {
  const { fake, client } = await setup(t);
  fake.forbid('list', 'endpointslices');
  await assert.rejects(client.list(ENDPOINT_SLICES, { namespace: 'prod' }), (e: Error) => {
    assert.ok(e instanceof KubernetesApiError);
    assert.equal(e.status, 403);
    assert.match(e.message, /^list endpointslices\.discovery\.k8s\.io in namespace "prod": 403 Forbidden: endpointslices\.discovery\.k8s\.io is forbidden: User "system:serviceaccount:usher:usher" cannot list resource "endpointslices" in API group "discovery\.k8s\.io" in the namespace "prod"; .*deploy\/kubernetes\/rbac\.yaml.*kubectl auth can-i list endpointslices\.discovery\.k8s\.io -n prod/);
    return true;
  });
  fake.failNext(1, 500);
  await assert.rejects(client.list(SERVICES, { namespace: 'prod' }), (e: KubernetesApiError) => e.status === 500 && e.message.startsWith('list services in namespace "prod": 500 InternalError'));
  await assert.rejects(client.get(INGRESSES, 'prod', 'nope'), (e: KubernetesApiError) => e.status === 404 && e.reason === 'NotFound');
  const port = fake.port;
  await fake.close();
  await assert.rejects(client.list(SERVICES), (e: Error) => e instanceof KubernetesNetworkError && e.message.includes(`cannot reach the Kubernetes API server at https://127.0.0.1:${port}`));
});

test('the status subresource: PUT and merge PATCH change only .status, a stale resourceVersion is 409, watches see MODIFIED', async (t) => {
  const { fake, client } = await setup(t);
  const route = await client.create(HTTP_ROUTES, { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name: 'r1', namespace: 'prod' }, spec: { hostnames: ['a.example'] } } as KubeObject);
  assert.equal(route.metadata?.generation, 1);
  await assert.rejects(client.create(HTTP_ROUTES, route), (e: KubernetesApiError) => e.status === 409 && e.reason === 'AlreadyExists');
  const events: WatchEvent[] = [];
  const ctl = new AbortController();
  const watching = client.watch(HTTP_ROUTES, { namespace: 'prod', resourceVersion: route.metadata!.resourceVersion! }, (e) => events.push(e), { signal: ctl.signal });
  await waitFor(() => fake.watchCount === 1, 'the watch to open');

  const status = { parents: [{ parentRef: { name: 'gw' }, controllerName: 'usher.dev/gateway-controller', conditions: [{ type: 'Accepted', status: 'True', observedGeneration: 1 }] }] };
  const updated = await client.replaceStatus(HTTP_ROUTES, { ...route, spec: { hostnames: ['ignored.example'] }, status } as KubeObject);
  assert.deepEqual((updated as unknown as { status: unknown }).status, status);
  assert.deepEqual((updated as unknown as { spec: unknown }).spec, { hostnames: ['a.example'] }, 'a status write leaves the spec alone');
  assert.equal(updated.metadata?.generation, 1, 'and the generation');
  await assert.rejects(client.replaceStatus(HTTP_ROUTES, { ...route, status } as KubeObject), (e: KubernetesApiError) => e.conflict && /the object has been modified/.test(e.message), 'the version read before the first write is stale now');
  await assert.rejects(client.patchStatus(HTTP_ROUTES, 'prod', 'r1', { metadata: { resourceVersion: route.metadata!.resourceVersion }, status: {} }), (e: KubernetesApiError) => e.conflict);
  const patched = await client.patchStatus(HTTP_ROUTES, 'prod', 'r1', { status: { parents: null } });
  assert.deepEqual((patched as unknown as { status: unknown }).status, {}, 'a merge patch with null removes');
  await waitFor(() => events.length === 2, 'two MODIFIED events');
  assert.deepEqual(events.map((e) => e.type), ['MODIFIED', 'MODIFIED']);

  const replaced = await client.replace(HTTP_ROUTES, { ...patched, spec: { hostnames: ['b.example'] } } as KubeObject);
  assert.equal(replaced.metadata?.generation, 2, 'a spec change bumps the generation');
  await client.create(GATEWAYS, { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'gw', namespace: 'prod' } });
  await client.delete(GATEWAYS, 'prod', 'gw');
  assert.equal(fake.get('Gateway', 'prod', 'gw'), undefined);
  ctl.abort();
  await watching;
});

test('a token file that cannot be read fails the request with a network error naming it; the next request reads it again', async (t) => {
  const fake = await FakeApiServer.start();
  const dir = tempDir();
  t.after(async () => {
    await fake.close();
    dir.remove();
  });
  const sa = writeServiceAccount(fake, dir.path);
  const client = new KubeClient(loadConnection(undefined, { serviceAccountDir: sa.dir, env: sa.env }));
  t.after(() => client.close());
  const { rmSync } = await import('node:fs');
  rmSync(`${sa.dir}/token`);
  await assert.rejects(client.list(ENDPOINT_SLICES, { namespace: 'prod' }), (e: Error) => e instanceof KubernetesNetworkError && /^list endpointslices\.discovery\.k8s\.io in namespace "prod": cannot read the token at https:\/\/127\.0\.0\.1:\d+: ENOENT/.test(e.message));
  assert.equal(fake.requests.length, 0, 'nothing sent without a token');
  sa.rotateToken(fake.token);
  assert.deepEqual((await client.list(ENDPOINT_SLICES, { namespace: 'prod' })).items, []);
});
