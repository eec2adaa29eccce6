/**
 * usher as the controller of its own IngressClass and GatewayClass, end to
 * end: the fake API server (test/k8s-fake/, enforcing the shipped
 * ClusterRole), usher with `kubernetes.ingress` and `kubernetes.gateway`, and
 * real backends ("pods") on loopback. K11-K15 of the research's spec
 * (shared/research/cores-and-discovery.md, B7).
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { test, type TestContext } from 'node:test';
import { createAccessLog } from '../../src/observe/access-log.ts';
import { Usher } from '../../src/runtime/usher.ts';
import { configFromYaml } from '../helpers/usher.ts';
import { generateCertificate, type TestCertificate } from '../helpers/tls.ts';
import { waitFor } from '../helpers/wait.ts';
import { tempDir, writeServiceAccount } from '../k8s-fake/files.ts';
import type { FakeObject } from '../k8s-fake/kinds.ts';
import { endpointSlice, ready } from '../k8s-fake/objects.ts';
import { startPods, type Pod, type PodHandler } from '../k8s-fake/pods.ts';
import { FakeApiServer } from '../k8s-fake/server.ts';
import { captureLog, FAST, shippedRbacRules } from '../k8s-fake/usher.ts';

/** Answers with what it received: its name, the target, the Host and the headers. */
const echo: PodHandler = (req, res, pod) => {
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ pod: pod.name, url: req.url, host: req.headers.host, headers: req.headers })));
};

interface Answer {
  readonly status: number;
  readonly pod: string;
  readonly url: string;
  readonly host: string;
  readonly headers: Record<string, string>;
  readonly responseHeaders: Record<string, string | string[] | undefined>;
}

/** One request with this Host; `pod` is the answering backend's name, or `status NNN`. */
function send(base: string, host: string, path: string, options: { method?: string; headers?: Record<string, string>; agent?: HttpAgent | false; ca?: string } = {}): Promise<Answer> {
  const url = new URL(path, base);
  const https = url.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const req = (https ? httpsRequest : httpRequest)(
      { host: url.hostname, port: url.port, path: url.pathname + url.search, method: options.method ?? 'GET', headers: { host, ...options.headers }, agent: options.agent ?? false, ...(https ? { servername: host.split(':')[0], ca: options.ca } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: { pod?: string; url?: string; host?: string; headers?: Record<string, string> } = {};
          try {
            body = JSON.parse(text) as typeof body;
          } catch {
            /* not an echo */
          }
          resolve({ status: res.statusCode ?? 0, pod: res.statusCode === 200 && body.pod !== undefined ? body.pod : `status ${res.statusCode}`, url: body.url ?? '', host: body.host ?? '', headers: body.headers ?? {}, responseHeaders: res.headers });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const service = (namespace: string, name: string): FakeObject => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec: { ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] } });

interface World {
  readonly fake: FakeApiServer;
  readonly usher: Usher;
  readonly pods: Map<string, Pod>;
  readonly fileCert: TestCertificate;
  /** A Service `namespace/name` (port 80, named http) with one pod, `<name>-0`. */
  backend(name: string, namespace?: string): Promise<Pod>;
  readonly web: string;
  readonly gw: string;
  readonly websecure: string;
}

async function startWorld(t: TestContext, options: { workers?: number; before?: (world: Omit<World, 'usher' | 'web' | 'gw' | 'websecure'>) => Promise<void> } = {}): Promise<World> {
  const fake = await FakeApiServer.start({ bookmarkIntervalMs: 60_000 });
  fake.enforceRules(shippedRbacRules());
  const dir = tempDir();
  const inCluster = writeServiceAccount(fake, dir.path, { namespace: 'usher' });
  const pods = new Map<string, Pod>();
  t.after(async () => {
    for (const pod of pods.values()) await pod.close();
  });
  const backend = async (name: string, namespace = 'prod'): Promise<Pod> => {
    const [pod] = await startPods(1, `${name}-`, echo);
    pods.set(`${namespace}/${name}`, pod!);
    fake.apply(service(namespace, name));
    fake.apply(endpointSlice(namespace, name, `${name}-a`, [ready(pod!.ip, pod!.name)], [{ name: 'http', port: pod!.port }]));
    return pod!;
  };
  const fileCert = generateCertificate(['file.example.com']);
  writeFileSync(join(dir.path, 'file.crt'), fileCert.cert);
  writeFileSync(join(dir.path, 'file.key'), fileCert.key);
  const [filePod] = await startPods(1, 'file-', echo);
  pods.set('file', filePod!);
  await options.before?.({ fake, pods, fileCert, backend });
  const log = captureLog();
  const yaml = `runtime: { workers: ${options.workers ?? 0} }
accessLog: { enabled: false }
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - { name: file-route, match: { path: /file-route }, pool: file }
  - name: gw
    bind: 127.0.0.1:0
    routes:
      - { name: file-route, match: { path: /file-route }, pool: file }
  - name: websecure
    bind: 127.0.0.1:0
    protocol: https
    tls: { certificates: [{ cert: ${join(dir.path, 'file.crt')}, key: ${join(dir.path, 'file.key')} }] }
    routes:
      - { name: file-route, match: { path: /file-route }, pool: file }
pools:
  file:
    backends: [{ address: "${filePod!.ip}:${filePod!.port}" }]
kubernetes:
  kubeconfig: in-cluster
  ingress: { listener: web, tlsListener: websecure, address: 203.0.113.10 }
  gateway: { listener: gw, address: 203.0.113.11 }
`;
  let usher: Usher;
  try {
    usher = await Usher.start(configFromYaml(yaml), {
      logger: log.logger,
      accessLog: createAccessLog({ enabled: false }),
      kubernetes: { environment: { serviceAccountDir: inCluster.dir, env: inCluster.env }, timing: { ...FAST, debounceMs: 20 } as typeof FAST },
    });
  } catch (error) {
    await fake.close();
    dir.remove();
    throw error;
  }
  t.after(async () => {
    await usher.stop({ timeoutMs: 1000 });
    await fake.close();
    dir.remove();
  });
  const https = usher.url('websecure').replace('http:', 'https:');
  return { fake, usher, pods, fileCert, backend, web: usher.url('web'), gw: usher.url('gw'), websecure: https };
}

const ingressClass = (name: string, controller: string, isDefault = false): FakeObject => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'IngressClass',
  metadata: { name, ...(isDefault ? { annotations: { 'ingressclass.kubernetes.io/is-default-class': 'true' } } : {}) },
  spec: { controller },
});

const svcBackend = (name: string, port: { number: number } | { name: string } = { number: 80 }) => ({ service: { name, port } });

function ingress(name: string, spec: Record<string, unknown>, namespace = 'prod'): FakeObject {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name, namespace }, spec };
}

function httpRoute(name: string, spec: Record<string, unknown>, namespace = 'prod'): FakeObject {
  return { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name, namespace }, spec };
}

const toGw = { parentRefs: [{ name: 'gw' }] };
const ref = (name: string, extra: Record<string, unknown> = {}) => ({ name, port: 80, ...extra });

function tlsSecret(name: string, certificate: TestCertificate, namespace = 'prod'): FakeObject {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type: 'kubernetes.io/tls', data: { 'tls.crt': Buffer.from(certificate.cert).toString('base64'), 'tls.key': Buffer.from(certificate.key).toString('base64') } };
}

/** The certificate a new TLS connection with this SNI gets, as its SHA-256 fingerprint. */
function servedFingerprint(base: string, servername: string): Promise<string> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: url.hostname, port: Number(url.port), servername, rejectUnauthorized: false }, () => {
      const cert = socket.getPeerX509Certificate();
      socket.destroy();
      if (cert === undefined) reject(new Error('no certificate'));
      else resolve(cert.fingerprint256);
    });
    socket.on('error', reject);
  });
}

const fingerprint = (c: TestCertificate): string => new X509Certificate(c.cert).fingerprint256;

test('K11 Ingress: pathType and host table through usher, defaultBackend, only usher\'s IngressClasses; K13 Ingress status; K15 TLS from a Secret rotated without a reload', async (t) => {
  const exactCert = generateCertificate(['exact.example.com']);
  const world = await startWorld(t, {
    before: async ({ fake, backend }) => {
      for (const name of ['svc-exact', 'svc-prefix', 'svc-longer', 'svc-wild', 'svc-default', 'svc-other', 'svc-noclass', 'svc-named']) await backend(name);
      fake.apply(ingressClass('usher', 'usher.dev/ingress-controller', true));
      fake.apply(ingressClass('other', 'example.com/other-controller'));
      fake.apply(tlsSecret('exact-tls', exactCert));
      fake.apply(ingress('main', {
        ingressClassName: 'usher',
        defaultBackend: svcBackend('svc-default'),
        tls: [{ hosts: ['exact.example.com'], secretName: 'exact-tls' }],
        rules: [
          // Listed least specific first: usher must order them.
          { host: 'exact.example.com', http: { paths: [
            { path: '/foo', pathType: 'Prefix', backend: svcBackend('svc-prefix') },
            { path: '/foo', pathType: 'Exact', backend: svcBackend('svc-exact') },
            { path: '/foo/bar/', pathType: 'ImplementationSpecific', backend: svcBackend('svc-longer') },
            { path: '/named', pathType: 'Prefix', backend: svcBackend('svc-named', { name: 'http' }) },
          ] } },
          { host: '*.wild.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: svcBackend('svc-wild') }] } },
        ],
      }));
      fake.apply(ingress('of-other-class', { ingressClassName: 'other', rules: [{ host: 'other.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: svcBackend('svc-other') }] } }] }));
      // No class: usher's, because its IngressClass is the default one.
      fake.apply(ingress('no-class', { rules: [{ host: 'noclass.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: svcBackend('svc-noclass') }] } }] }));
      // No ingressClassName, but the deprecated annotation names another controller's class: not ours, default or not.
      fake.apply({ ...ingress('legacy-other', { rules: [{ host: 'legacy.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: svcBackend('svc-noclass') }] } }] }), metadata: { name: 'legacy-other', namespace: 'prod', annotations: { 'kubernetes.io/ingress.class': 'nginx' } } });
    },
  });
  const cases: [host: string, path: string, pod: string][] = [
    ['exact.example.com', '/foo', 'svc-exact-0'],
    ['exact.example.com', '/foo/', 'svc-prefix-0'],
    ['exact.example.com', '/foo/x', 'svc-prefix-0'],
    ['exact.example.com', '/foobar', 'svc-default-0'], // Prefix is element-wise
    ['exact.example.com', '/foo/bar', 'svc-longer-0'], // trailing slash of the path ignored; longest wins
    ['exact.example.com', '/foo/bar/baz', 'svc-longer-0'],
    ['exact.example.com', '/foo/barbaz', 'svc-prefix-0'],
    ['EXACT.example.com:80', '/foo', 'svc-exact-0'],
    ['exact.example.com', '/named/x', 'svc-named-0'], // port by name
    ['a.wild.example.com', '/anything', 'svc-wild-0'],
    ['a.b.wild.example.com', '/', 'svc-default-0'], // one label only
    ['wild.example.com', '/', 'svc-default-0'],
    ['other.example.com', '/', 'svc-default-0'], // another controller's class: ignored
    ['legacy.example.com', '/', 'svc-default-0'], // annotated for another controller: ignored
    ['noclass.example.com', '/x', 'svc-noclass-0'],
    ['unknown.example.com', '/x', 'svc-default-0'],
  ];
  const got = [];
  for (const [host, path] of cases) got.push([host, path, (await send(world.web, host, path)).pod]);
  assert.deepEqual(got, cases);
  // File routes come first and still work.
  assert.equal((await send(world.web, 'exact.example.com', '/file-route')).pod, 'file-0');

  // K13: Ingress status from the configured address, only on usher's Ingresses.
  await waitFor(() => JSON.stringify(world.fake.get('Ingress', 'prod', 'main')?.['status']) === JSON.stringify({ loadBalancer: { ingress: [{ ip: '203.0.113.10' }] } }), 'Ingress status written');
  await waitFor(() => world.fake.get('Ingress', 'prod', 'no-class')?.['status'] !== undefined, 'the default-class Ingress gets a status');
  assert.equal(world.fake.get('Ingress', 'prod', 'of-other-class')?.['status'], undefined);
  assert.equal(world.fake.get('Ingress', 'prod', 'legacy-other')?.['status'], undefined, 'an Ingress annotated for another controller gets no status from usher');

  // Without a defaultBackend, no matching host is 404.
  const main = world.fake.get('Ingress', 'prod', 'main')!;
  const { defaultBackend: _dropped, ...rest } = main['spec'] as Record<string, unknown>;
  world.fake.apply({ ...main, spec: rest });
  await waitFor(async () => (await send(world.web, 'unknown.example.com', '/x')).status === 404, 'no default backend: 404');
  assert.equal((await send(world.web, 'exact.example.com', '/foo')).pod, 'svc-exact-0');

  // K15: the Secret's certificate by SNI on the https listener; the file's stays the default.
  assert.equal(await servedFingerprint(world.websecure, 'exact.example.com'), fingerprint(exactCert));
  assert.equal(await servedFingerprint(world.websecure, 'file.example.com'), fingerprint(world.fileCert));
  const viaTls = await send(world.websecure, 'exact.example.com', '/foo', { ca: exactCert.cert });
  assert.equal(viaTls.pod, 'svc-exact-0');
  const port = world.usher.address('websecure').port;
  const rotated = generateCertificate(['exact.example.com']);
  world.fake.apply(tlsSecret('exact-tls', rotated));
  await waitFor(async () => (await servedFingerprint(world.websecure, 'exact.example.com')) === fingerprint(rotated), 'the rotated certificate is served on new connections', 5000, 20);
  assert.equal(world.usher.address('websecure').port, port, 'same listener, not rebound');
});

test('K12 HTTPRoute: the spec\'s precedence (exact, longest prefix, method before headers, header count, query count, age), only usher\'s GatewayClass; weighted backendRefs; header, redirect and rewrite filters; K13 status with observedGeneration and a 409 retried', async (t) => {
  const world = await startWorld(t, {
    before: async ({ fake, backend }) => {
      for (const name of ['a', 'root', 'p', 'longer', 'header', 'method', 'h1', 'h2', 'q0', 'q1', 'exactprefix', 'w1', 'w2', 'echo', 'ignored', 'tie-a', 'tie-b']) await backend(name);
      fake.apply({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'usher' }, spec: { controllerName: 'usher.dev/gateway-controller' } });
      fake.apply({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'other' }, spec: { controllerName: 'example.com/other' } });
      fake.apply({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'gw', namespace: 'prod' }, spec: { gatewayClassName: 'usher', listeners: [{ name: 'http', port: 80, protocol: 'HTTP', allowedRoutes: { namespaces: { from: 'All' } } }] } });
      fake.apply({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'gw-other', namespace: 'prod' }, spec: { gatewayClassName: 'other', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] } });
      // Rules deliberately least specific first.
      fake.apply(httpRoute('prec', { ...toGw, hostnames: ['prec.example.com'], rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [ref('root')] },
        { matches: [{ path: { type: 'PathPrefix', value: '/exact' } }], backendRefs: [ref('exactprefix')] },
        { matches: [{ path: { type: 'Exact', value: '/exact' } }], backendRefs: [ref('a')] },
        { matches: [{ path: { type: 'PathPrefix', value: '/p' } }], backendRefs: [ref('p')] },
        { matches: [{ path: { type: 'PathPrefix', value: '/p/longer' } }], backendRefs: [ref('longer')] },
        { matches: [{ path: { type: 'PathPrefix', value: '/m' }, headers: [{ name: 'X-H', value: '1' }] }], backendRefs: [ref('header')] },
        { matches: [{ path: { type: 'PathPrefix', value: '/m' }, method: 'POST' }], backendRefs: [ref('method')] },
        { matches: [{ path: { type: 'PathPrefix', value: '/h' }, headers: [{ name: 'a', value: '1' }] }], backendRefs: [ref('h1')] },
        { matches: [{ path: { type: 'PathPrefix', value: '/h' }, headers: [{ name: 'a', value: '1' }, { name: 'b', value: '1' }] }], backendRefs: [ref('h2')] },
        { matches: [{ path: { type: 'PathPrefix', value: '/q' } }], backendRefs: [ref('q0')] },
        { matches: [{ path: { type: 'PathPrefix', value: '/q' }, queryParams: [{ name: 'x', value: '1' }] }], backendRefs: [ref('q1')] },
      ] }));
      fake.apply(httpRoute('ignored', { parentRefs: [{ name: 'gw-other' }], hostnames: ['ignored.example.com'], rules: [{ backendRefs: [ref('ignored')] }] }));
      fake.apply(httpRoute('split', { ...toGw, hostnames: ['split.example.com'], rules: [{ backendRefs: [ref('w1', { weight: 3 }), ref('w2', { weight: 1 })] }] }));
      fake.apply(httpRoute('filters', { ...toGw, hostnames: ['filters.example.com'], rules: [
        { matches: [{ path: { type: 'PathPrefix', value: '/hdr' } }], filters: [
          { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-set', value: 'yes' }], add: [{ name: 'x-add', value: 'a' }], remove: ['x-remove'] } },
          { type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'x-resp', value: 'r' }] } },
        ], backendRefs: [ref('echo')] },
        { matches: [{ path: { type: 'PathPrefix', value: '/redir' } }], filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https', hostname: 'redirected.example.com', statusCode: 301 } }] },
        { matches: [{ path: { type: 'PathPrefix', value: '/old' } }], filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/new' } } }], backendRefs: [ref('echo')] },
        { matches: [{ path: { type: 'Exact', value: '/full' } }], filters: [{ type: 'URLRewrite', urlRewrite: { hostname: 'rewritten.example.com', path: { type: 'ReplaceFullPath', replaceFullPath: '/replaced' } } }], backendRefs: [ref('echo')] },
      ] }));
      fake.apply(httpRoute('tie-b', { ...toGw, hostnames: ['tie.example.com'], rules: [{ backendRefs: [ref('tie-b')] }] }));
      fake.apply(httpRoute('tie-a', { ...toGw, hostnames: ['tie.example.com'], rules: [{ backendRefs: [ref('tie-a')] }] }));
    },
  });
  const P = 'prec.example.com';
  const cases: [method: string, path: string, headers: Record<string, string>, pod: string][] = [
    ['GET', '/exact', {}, 'a-0'], // Exact beats a prefix of the same length
    ['GET', '/exact/x', {}, 'exactprefix-0'],
    ['GET', '/p/x', {}, 'p-0'],
    ['GET', '/p/longer/x', {}, 'longer-0'], // longest prefix
    ['GET', '/px', {}, 'root-0'], // element-wise
    ['POST', '/m', { 'x-h': '1' }, 'method-0'], // method before headers (CVE-2024-42487)
    ['GET', '/m', { 'x-h': '1' }, 'header-0'],
    ['POST', '/m', {}, 'method-0'],
    ['GET', '/m', {}, 'root-0'],
    ['GET', '/h', { a: '1' }, 'h1-0'],
    ['GET', '/h', { a: '1', b: '1' }, 'h2-0'], // more header matches
    ['GET', '/q?x=1', {}, 'q1-0'], // more query matches
    ['GET', '/q?x=2', {}, 'q0-0'],
  ];
  const got = [];
  for (const [method, path, headers] of cases) got.push([method, path, headers, (await send(world.gw, P, path, { method, headers })).pod]);
  assert.deepEqual(got, cases);
  // Routes of another controller's Gateway: not served.
  assert.equal((await send(world.gw, 'ignored.example.com', '/')).status, 404);
  // A tie across routes: the older, then namespace/name.
  const ta = world.fake.get('HTTPRoute', 'prod', 'tie-a')!.metadata.creationTimestamp!;
  const tb = world.fake.get('HTTPRoute', 'prod', 'tie-b')!.metadata.creationTimestamp!;
  assert.equal((await send(world.gw, 'tie.example.com', '/')).pod, tb < ta ? 'tie-b-0' : 'tie-a-0');

  // Weighted backendRefs, 3:1 over 200 requests (expected 150; bounds are > 6 standard deviations).
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 4 });
  t.after(() => agent.destroy());
  let w1 = 0;
  let w2 = 0;
  for (let i = 0; i < 200; i++) {
    const pod = (await send(world.gw, 'split.example.com', '/', { agent })).pod;
    if (pod === 'w1-0') w1++;
    else if (pod === 'w2-0') w2++;
  }
  assert.equal(w1 + w2, 200);
  assert.ok(w1 >= 110 && w1 <= 190, `w1 got ${w1} of 200 (weight 3:1)`);

  // Filters.
  const hdr = await send(world.gw, 'filters.example.com', '/hdr', { headers: { 'x-remove': 'gone', 'x-add': 'first' } });
  assert.equal(hdr.pod, 'echo-0');
  assert.equal(hdr.headers['x-set'], 'yes');
  assert.equal(hdr.headers['x-add'], 'first, a');
  assert.equal(hdr.headers['x-remove'], undefined);
  assert.equal(hdr.responseHeaders['x-resp'], 'r');
  const redirect = await send(world.gw, 'filters.example.com', '/redir/x?q=1');
  assert.equal(redirect.status, 301);
  assert.equal(redirect.responseHeaders.location, 'https://redirected.example.com/redir/x?q=1');
  const rewritten = await send(world.gw, 'filters.example.com', '/old/x?q=1');
  assert.equal(rewritten.url, '/new/x?q=1');
  const full = await send(world.gw, 'filters.example.com', '/full');
  assert.equal(full.url, '/replaced');
  assert.equal(full.host, 'rewritten.example.com');

  // K13: status with observedGeneration.
  const conditionOf = (o: FakeObject | undefined, type: string) => ((o?.['status'] as { conditions?: { type: string; status: string; observedGeneration?: number }[] } | undefined)?.conditions ?? []).find((c) => c.type === type);
  await waitFor(() => conditionOf(world.fake.get('GatewayClass', undefined, 'usher'), 'Accepted')?.status === 'True', 'GatewayClass Accepted');
  assert.equal(conditionOf(world.fake.get('GatewayClass', undefined, 'usher'), 'Accepted')?.observedGeneration, world.fake.get('GatewayClass', undefined, 'usher')!.metadata.generation);
  assert.equal(world.fake.get('GatewayClass', undefined, 'other')?.['status'], undefined);
  await waitFor(() => conditionOf(world.fake.get('Gateway', 'prod', 'gw'), 'Programmed')?.status === 'True', 'Gateway Programmed');
  const gw = world.fake.get('Gateway', 'prod', 'gw')!;
  assert.equal(conditionOf(gw, 'Accepted')?.observedGeneration, gw.metadata.generation);
  const gwStatus = gw['status'] as { addresses: unknown[]; listeners: { name: string; attachedRoutes: number }[] };
  assert.deepEqual(gwStatus.addresses, [{ type: 'IPAddress', value: '203.0.113.11' }]);
  assert.equal(gwStatus.listeners[0]!.attachedRoutes, 5);
  type Parents = { parents: { controllerName: string; conditions: { type: string; status: string; reason: string; observedGeneration: number }[] }[] };
  const parentsOf = (name: string): Parents['parents'] => ((world.fake.get('HTTPRoute', 'prod', name)?.['status'] as Parents | undefined)?.parents ?? []);
  await waitFor(() => parentsOf('prec')[0]?.conditions.find((c) => c.type === 'Accepted')?.status === 'True', 'HTTPRoute Accepted');
  assert.equal(parentsOf('ignored').length, 0, 'no status on a route of another controller');

  // A 409: the route changes (new generation) and its next status write meets a concurrent change.
  const conflictsBefore = world.usher.kubernetesRoutes!.status.conflicts;
  world.fake.conflictNextStatusWrites('httproutes', 1);
  const prec = world.fake.get('HTTPRoute', 'prod', 'prec')!;
  world.fake.apply({ ...prec, spec: { ...(prec['spec'] as object), hostnames: ['prec.example.com', 'prec2.example.com'] } });
  const generation = world.fake.get('HTTPRoute', 'prod', 'prec')!.metadata.generation!;
  assert.ok(generation >= 2);
  await waitFor(() => parentsOf('prec')[0]?.conditions.every((c) => c.observedGeneration === generation) === true, 'status for the new generation, after the 409');
  assert.ok(world.usher.kubernetesRoutes!.status.conflicts > conflictsBefore, 'a conflict was met and retried');
  assert.ok(world.fake.requests.some((r) => r.resource === 'httproutes' && r.subresource === 'status' && r.status === 409), 'the fake answered 409');
  assert.equal((await send(world.gw, 'prec2.example.com', '/exact')).pod, 'a-0');
});

test('an HTTPRoute usher cannot honour fully is never served without its filter (500) and a regex match from a tenant blocks no other route', async (t) => {
  const world = await startWorld(t, {
    before: async ({ fake, backend }) => {
      for (const name of ['guarded', 'regex', 'plain']) await backend(name);
      fake.apply({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'usher' }, spec: { controllerName: 'usher.dev/gateway-controller' } });
      fake.apply({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'gw', namespace: 'prod' }, spec: { gatewayClassName: 'usher', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] } });
      // An auth filter usher does not implement: skipping it would serve the backend unauthenticated.
      fake.apply(httpRoute('guarded', { ...toGw, hostnames: ['guarded.example.com'], rules: [{ filters: [{ type: 'ExtensionRef', extensionRef: { group: 'auth.example.com', kind: 'Policy', name: 'sso' } }], backendRefs: [ref('guarded')] }] }));
      // RE2 syntax that is not a JavaScript regex, from another tenant.
      fake.apply(httpRoute('regex', { ...toGw, hostnames: ['regex.example.com'], rules: [{ matches: [{ path: { type: 'RegularExpression', value: '(?i)/api' } }], backendRefs: [ref('regex')] }] }));
      fake.apply(httpRoute('plain', { ...toGw, hostnames: ['plain.example.com'], rules: [{ backendRefs: [ref('plain')] }] }));
    },
  });
  await waitFor(async () => (await send(world.gw, 'plain.example.com', '/')).pod === 'plain-0', 'the other routes are applied');
  const guarded = await send(world.gw, 'guarded.example.com', '/');
  assert.equal(guarded.status, 500, 'never the backend without its filter');
  assert.notEqual((await send(world.gw, 'regex.example.com', '/api')).pod, 'regex-0', 'the regex match is not served');
  type Parents = { parents?: { conditions: { type: string; status: string; reason: string }[] }[] };
  const accepted = (name: string) => ((world.fake.get('HTTPRoute', 'prod', name)?.['status'] as Parents | undefined)?.parents?.[0]?.conditions ?? []).find((c) => c.type === 'Accepted');
  await waitFor(() => accepted('guarded')?.reason === 'UnsupportedValue' && accepted('regex')?.reason === 'UnsupportedValue', 'both say UnsupportedValue');
  assert.equal(accepted('plain')?.status, 'True');
  // Still applying changes after the regex route arrived: a new route is served.
  world.fake.apply(httpRoute('later', { ...toGw, hostnames: ['later.example.com'], rules: [{ backendRefs: [ref('plain')] }] }));
  await waitFor(async () => (await send(world.gw, 'later.example.com', '/')).pod === 'plain-0', 'a later route is applied');
});

test('K14 ReferenceGrant: a cross-namespace backendRef is refused (500, ResolvedRefs False RefNotPermitted) until a ReferenceGrant allows it', async (t) => {
  const world = await startWorld(t, {
    before: async ({ fake, backend }) => {
      await backend('svc-x', 'other');
      fake.apply({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'usher' }, spec: { controllerName: 'usher.dev/gateway-controller' } });
      fake.apply({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'gw', namespace: 'prod' }, spec: { gatewayClassName: 'usher', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] } });
      fake.apply(httpRoute('xns', { ...toGw, hostnames: ['xns.example.com'], rules: [{ backendRefs: [ref('svc-x', { namespace: 'other' })] }] }));
    },
  });
  const resolved = () => ((world.fake.get('HTTPRoute', 'prod', 'xns')?.['status'] as { parents?: { conditions: { type: string; status: string; reason: string }[] }[] } | undefined)?.parents?.[0]?.conditions ?? []).find((c) => c.type === 'ResolvedRefs');
  await waitFor(() => resolved()?.reason === 'RefNotPermitted', 'ResolvedRefs False RefNotPermitted');
  assert.equal(resolved()?.status, 'False');
  const refused = await send(world.gw, 'xns.example.com', '/');
  assert.equal(refused.status, 500);
  assert.equal(world.pods.get('other/svc-x')!.requests, 0);
  // A grant for another kind or namespace does not count.
  world.fake.apply({ apiVersion: 'gateway.networking.k8s.io/v1beta1', kind: 'ReferenceGrant', metadata: { name: 'wrong', namespace: 'other' }, spec: { from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'staging' }], to: [{ group: '', kind: 'Service' }] } });
  world.fake.apply({ apiVersion: 'gateway.networking.k8s.io/v1beta1', kind: 'ReferenceGrant', metadata: { name: 'allow', namespace: 'other' }, spec: { from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'prod' }], to: [{ group: '', kind: 'Service', name: 'svc-x' }] } });
  await waitFor(async () => (await send(world.gw, 'xns.example.com', '/')).pod === 'svc-x-0', 'allowed by the ReferenceGrant');
  await waitFor(() => resolved()?.status === 'True', 'ResolvedRefs True');
  world.fake.remove('ReferenceGrant', 'other', 'allow');
  await waitFor(async () => (await send(world.gw, 'xns.example.com', '/')).status === 500, 'refused again once the grant is gone');
});

test('a route change under load with two worker threads drops no request; pools keep their identity across route changes', async (t) => {
  const world = await startWorld(t, {
    workers: 2,
    before: async ({ fake, backend }) => {
      await backend('l1');
      await backend('l2');
      fake.apply({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'usher' }, spec: { controllerName: 'usher.dev/gateway-controller' } });
      fake.apply({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'gw', namespace: 'prod' }, spec: { gatewayClassName: 'usher', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] } });
      fake.apply(httpRoute('load', { ...toGw, hostnames: ['load.example.com'], rules: [{ backendRefs: [ref('l1')] }] }));
    },
  });
  const poolBefore = world.usher.snapshot.pools.get('k8s/prod/l1/http');
  assert.ok(poolBefore !== undefined);
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 4 });
  t.after(() => agent.destroy());
  const failures: string[] = [];
  const seen = new Map<string, number>();
  let switched = false;
  let after = 0;
  let total = 0;
  const loop = async (): Promise<void> => {
    // Bounded: at most 4000 requests per loop; stops 100 requests after l2 answers.
    for (let i = 0; i < 4000 && after < 100; i++) {
      total++;
      try {
        const answer = await send(world.gw, 'load.example.com', '/', { agent });
        seen.set(answer.pod, (seen.get(answer.pod) ?? 0) + 1);
        if (answer.status !== 200) failures.push(answer.pod);
        if (answer.pod === 'l2-0') switched = true;
        if (switched) after++;
      } catch (error) {
        failures.push((error as Error).message);
      }
    }
  };
  const loops = Promise.all([loop(), loop(), loop(), loop()]);
  await waitFor(() => total > 100, 'load running', 5000, 5);
  // Add a rule (a new pool) and move the existing one to l2.
  world.fake.apply(httpRoute('load', { ...toGw, hostnames: ['load.example.com'], rules: [{ backendRefs: [ref('l2')] }, { matches: [{ path: { type: 'Exact', value: '/l1' } }], backendRefs: [ref('l1')] }] }));
  await loops;
  assert.deepEqual(failures, [], `failed requests: ${failures.slice(0, 5).join(', ')}`);
  assert.ok(switched, `the new route served (${JSON.stringify([...seen])})`);
  assert.equal((await send(world.gw, 'load.example.com', '/l1')).pod, 'l1-0');
  // The l1 pool stayed the same object (its backends keep health and connections).
  assert.equal(world.usher.snapshot.pools.get('k8s/prod/l1/http'), poolBefore);
  // Removing the route removes its pools.
  world.fake.remove('HTTPRoute', 'prod', 'load');
  await waitFor(() => world.usher.snapshot.pools.get('k8s/prod/l1/http') === undefined, 'pool removed with its route');
  assert.equal((await send(world.gw, 'load.example.com', '/')).status, 404);
});
