/**
 * K16: the real kubectl against the fake API server, so the fake cannot drift
 * from what real clients expect (discovery documents, list shape, watch
 * stream). kubectl runs as a child process (the fake lives in this process:
 * nothing here may block the event loop). Skipped, saying so, only when
 * kubectl is not installed.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { waitFor } from '../helpers/wait.ts';
import { tempDir, writeKubeconfig } from '../k8s-fake/files.ts';
import { endpointSlice, ready, terminating } from '../k8s-fake/objects.ts';
import { FakeApiServer } from '../k8s-fake/server.ts';

const run = promisify(execFile);
const KUBECTL = process.env['KUBECTL'] ?? 'kubectl';
const installed = spawnSync(KUBECTL, ['version', '--client', '-o', 'json'], { encoding: 'utf8' });
const skip = installed.error !== undefined || installed.status !== 0 ? `kubectl is not installed (${installed.error?.message ?? `exit ${installed.status}`}): the fake is not checked against a real client` : false;

interface Kube {
  readonly fake: FakeApiServer;
  readonly args: readonly string[];
}

async function setup(t: TestContext): Promise<Kube> {
  const fake = await FakeApiServer.start({ bookmarkIntervalMs: 200 });
  const dir = tempDir();
  t.after(async () => {
    await fake.close();
    dir.remove();
  });
  // The discovery cache in the temp dir: nothing is read from or written to the user's ~/.kube.
  const args = ['--kubeconfig', writeKubeconfig(fake, dir.path, { caFile: true }), '--cache-dir', join(dir.path, 'cache'), '--request-timeout', '10s'];
  return { fake, args };
}

/** Splits kubectl's output (JSON documents one after another, indented or not) into values. */
function documents(text: string): unknown[] {
  const out: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{') {
      if (depth++ === 0) start = i;
    } else if (c === '}' && --depth === 0) out.push(JSON.parse(text.slice(start, i + 1)));
  }
  return out;
}

test('kubectl get endpointslices -A -o json reads the fake\'s discovery and lists (K16)', { skip, timeout: 60_000 }, async (t) => {
  const { fake, args } = await setup(t);
  fake.apply(endpointSlice('prod', 'api', 'api-x1', [ready('10.0.0.1', 'api-1'), terminating('10.0.0.2', 'api-2')]));
  fake.apply(endpointSlice('dev', 'api', 'api-y1', [ready('10.1.0.1')], [{ name: 'grpc', port: 9000 }]));
  const { stdout } = await run(KUBECTL, [...args, 'get', 'endpointslices', '-A', '-o', 'json'], { encoding: 'utf8', timeout: 30_000 });
  const list = JSON.parse(stdout) as { kind: string; items: { kind: string; apiVersion: string; metadata: { name: string; namespace: string; resourceVersion: string }; endpoints: { addresses: string[]; conditions: Record<string, boolean> }[]; ports: { name: string; port: number }[] }[] };
  assert.equal(list.kind, 'List');
  assert.deepEqual(list.items.map((i) => `${i.metadata.namespace}/${i.metadata.name}`), ['dev/api-y1', 'prod/api-x1']);
  const prod = list.items[1]!;
  assert.equal(prod.kind, 'EndpointSlice', 'kubectl filled the items\' kind from the list, as with a real server');
  assert.equal(prod.apiVersion, 'discovery.k8s.io/v1');
  assert.deepEqual(prod.endpoints.map((e) => [e.addresses[0], e.conditions]), [['10.0.0.1', { ready: true, serving: true, terminating: false }], ['10.0.0.2', { ready: false, serving: true, terminating: true }]]);
  assert.equal(prod.metadata.resourceVersion, fake.get('EndpointSlice', 'prod', 'api-x1')!.metadata.resourceVersion);
  assert.ok(fake.requests.some((r) => r.path === '/api' && r.status === 200) && fake.requests.some((r) => r.path === '/apis/discovery.k8s.io/v1' && r.status === 200), 'kubectl went through discovery');
  assert.equal(fake.count('list', 'endpointslices'), 1);

  const { stdout: one } = await run(KUBECTL, [...args, 'get', 'endpointslices', '-n', 'prod', '-l', 'kubernetes.io/service-name=api', '-o', 'json'], { encoding: 'utf8', timeout: 30_000 });
  assert.deepEqual((JSON.parse(one) as typeof list).items.map((i) => i.metadata.name), ['api-x1'], 'namespace and label selector');
  const forbidden = await run(KUBECTL, [...args, 'get', 'ingresses', '-A'], { encoding: 'utf8', timeout: 30_000 }).then(() => '', (e: { stderr: string }) => e.stderr);
  assert.equal(forbidden, '', 'an empty list is not an error');
  fake.forbid('list', 'services');
  const denied = await run(KUBECTL, [...args, 'get', 'services', '-n', 'prod'], { encoding: 'utf8', timeout: 30_000 }).then(() => '', (e: { stderr: string }) => e.stderr);
  assert.match(denied, /services is forbidden: User "system:serviceaccount:usher:usher" cannot list resource "services" in API group "" in the namespace "prod"/, 'kubectl shows the fake\'s 403 as it shows a real one');
});

test('kubectl get endpointslices --watch --output-watch-events follows the fake\'s watch stream (K16)', { skip, timeout: 60_000 }, async (t) => {
  const { fake, args } = await setup(t);
  fake.apply(endpointSlice('prod', 'api', 'api-x1', [ready('10.0.0.1')]));
  fake.apply(endpointSlice('other', 'api', 'elsewhere', [ready('10.9.0.1')]));
  const child = spawn(KUBECTL, [...args, 'get', 'endpointslices', '-n', 'prod', '--watch', '--output-watch-events', '-o', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  t.after(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  const events = (): { type: string; object: { metadata: { name: string; resourceVersion: string }; endpoints?: { addresses: string[] }[] } }[] => documents(stdout) as never;
  await waitFor(() => events().length >= 1 && fake.watchCount === 1, `kubectl to list and start watching (stderr: ${stderr})`, 20_000);
  const listedAt = String(fake.revision); // nothing changed since kubectl's list
  fake.apply(endpointSlice('prod', 'api', 'api-x1', [ready('10.0.0.1'), ready('10.0.0.3')]));
  fake.apply(endpointSlice('prod', 'api', 'api-x2', [ready('10.0.0.4')]));
  fake.apply(endpointSlice('other', 'api', 'elsewhere', [ready('10.9.0.2')])); // another namespace: not watched
  fake.remove('EndpointSlice', 'prod', 'api-x1');
  await waitFor(() => events().length >= 4, `four watch events (got: ${stdout.slice(0, 500)}; stderr: ${stderr})`, 20_000);
  child.kill('SIGTERM');
  await exited;
  const seen = events();
  assert.deepEqual(seen.map((e) => [e.type, e.object.metadata.name]), [['ADDED', 'api-x1'], ['MODIFIED', 'api-x1'], ['ADDED', 'api-x2'], ['DELETED', 'api-x1']]);
  assert.deepEqual(seen[1]!.object.endpoints?.map((e) => e.addresses[0]), ['10.0.0.1', '10.0.0.3']);
  const watch = fake.requests.find((r) => r.verb === 'watch')!;
  assert.equal(watch.query.get('resourceVersion'), listedAt, 'kubectl watched from its list\'s version');
  assert.equal(watch.namespace, 'prod');
});
