/**
 * Where the API server is and how usher authenticates (src/kubernetes/connection.ts):
 * in-cluster from an injected service-account directory, the kubeconfig
 * subset, and errors that say what to fix. Plus the config keys that lead there.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { parseConfig } from '../../src/config/index.ts';
import { loadConnection } from '../../src/kubernetes/connection.ts';
import { KubernetesConfigError } from '../../src/kubernetes/errors.ts';
import { tempDir } from '../k8s-fake/files.ts';

function dir(t: TestContext): string {
  const d = tempDir();
  t.after(() => d.remove());
  return d.path;
}

const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

test('in-cluster: the service host and port from the environment, token file (read per request), CA and namespace from the directory', (t) => {
  const sa = dir(t);
  writeFileSync(join(sa, 'token'), 'tok-1\n');
  writeFileSync(join(sa, 'ca.crt'), CA);
  writeFileSync(join(sa, 'namespace'), 'edge\n');
  const c = loadConnection({ kubeconfig: 'in-cluster' }, { serviceAccountDir: sa, env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' } });
  assert.equal(c.server.href, 'https://10.96.0.1/');
  assert.equal(c.server.origin, 'https://10.96.0.1');
  assert.deepEqual(c.credentials, { kind: 'tokenFile', path: join(sa, 'token') });
  assert.equal(c.ca?.toString(), CA);
  assert.equal(c.namespace, 'edge');
  assert.equal(c.insecureSkipTlsVerify, false);
  const v6 = loadConnection(undefined, { serviceAccountDir: sa, env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' } });
  assert.equal(v6.server.host, '[fd00::1]:6443', 'an IPv6 service host is bracketed');
});

test('in-cluster errors say what is missing', (t) => {
  const sa = dir(t);
  const env = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
  assert.throws(() => loadConnection(undefined, { serviceAccountDir: sa, env: {} }), (e: Error) => e instanceof KubernetesConfigError && /not running in a Kubernetes pod.*kubernetes\.kubeconfig/.test(e.message));
  assert.throws(() => loadConnection(undefined, { serviceAccountDir: sa, env }), (e: Error) => e instanceof KubernetesConfigError && e.message.includes(`${sa}/token does not exist`) && e.message.includes('automountServiceAccountToken'));
  writeFileSync(join(sa, 'token'), 'tok');
  assert.throws(() => loadConnection(undefined, { serviceAccountDir: sa, env }), /ca\.crt does not exist/);
  writeFileSync(join(sa, 'ca.crt'), CA);
  assert.equal(loadConnection(undefined, { serviceAccountDir: sa, env }).namespace, 'default', 'no namespace file: default');
});

function kubeconfig(t: TestContext, user: string, cluster = `      server: https://k8s.example:6443\n      certificate-authority-data: ${Buffer.from(CA).toString('base64')}\n`, extra = ''): string {
  const d = dir(t);
  const path = join(d, 'config');
  writeFileSync(
    path,
    `apiVersion: v1
kind: Config
clusters:
  - name: c1
    cluster:
${cluster}users:
  - name: u1
    user:
${user}contexts:
  - name: one
    context: { cluster: c1, user: u1, namespace: team-a }
  - name: two
    context: { cluster: c1, user: u1 }
current-context: one
${extra}`,
  );
  return path;
}

test('kubeconfig: server, inline CA, token; the current context or a named one', (t) => {
  const path = kubeconfig(t, '      token: abc\n');
  const c = loadConnection({ kubeconfig: path });
  assert.equal(c.server.origin, 'https://k8s.example:6443');
  assert.equal(c.ca?.toString(), CA);
  assert.deepEqual(c.credentials, { kind: 'token', token: 'abc' });
  assert.equal(c.namespace, 'team-a');
  assert.equal(loadConnection({ kubeconfig: path, context: 'two' }).namespace, 'default');
  assert.throws(() => loadConnection({ kubeconfig: path, context: 'three' }), /no context "three" \(it has: one, two\)/);
});

test('kubeconfig: files relative to the kubeconfig, tokenFile, client certificates, insecure-skip-tls-verify, tls-server-name', (t) => {
  const path = kubeconfig(t, '      client-certificate: certs/client.crt\n      client-key: certs/client.key\n', '      server: https://10.0.0.1:6443\n      certificate-authority: certs/ca.crt\n      tls-server-name: api.internal\n');
  const base = join(path, '..');
  mkdirSync(join(base, 'certs'));
  writeFileSync(join(base, 'certs', 'ca.crt'), CA);
  writeFileSync(join(base, 'certs', 'client.crt'), 'CERT');
  writeFileSync(join(base, 'certs', 'client.key'), 'KEY');
  const c = loadConnection({ kubeconfig: path });
  assert.equal(c.ca?.toString(), CA);
  assert.equal(c.tlsServerName, 'api.internal');
  assert.equal(c.credentials.kind, 'clientCertificate');
  if (c.credentials.kind === 'clientCertificate') assert.deepEqual([c.credentials.cert.toString(), c.credentials.key.toString()], ['CERT', 'KEY']);

  const inline = kubeconfig(t, `      client-certificate-data: ${Buffer.from('C2').toString('base64')}\n      client-key-data: ${Buffer.from('K2').toString('base64')}\n`, '      server: https://10.0.0.1:6443\n      insecure-skip-tls-verify: true\n');
  const d = loadConnection({ kubeconfig: inline });
  assert.equal(d.insecureSkipTlsVerify, true);
  assert.equal(d.ca, undefined, 'no CA: the system\'s');
  if (d.credentials.kind === 'clientCertificate') assert.deepEqual([d.credentials.cert.toString(), d.credentials.key.toString()], ['C2', 'K2']);
  else assert.fail('expected a client certificate');

  const tokenFile = kubeconfig(t, '      tokenFile: token\n');
  writeFileSync(join(tokenFile, '..', 'token'), 'from-file');
  assert.deepEqual(loadConnection({ kubeconfig: tokenFile }).credentials, { kind: 'tokenFile', path: join(tokenFile, '..', 'token') });
});

test('kubeconfig errors: unsupported auth plugins, missing pieces, unreadable files, each with what to do', (t) => {
  const cases: [string, RegExp][] = [
    ['      exec: { command: aws, apiVersion: client.authentication.k8s.io/v1 }\n', /exec plugin, which usher does not run; give it a token, tokenFile or client certificate/],
    ['      auth-provider: { name: gcp }\n', /auth-provider plugin/],
    ['      username: a\n      password: b\n', /basic authentication/],
    ['      client-certificate-data: Qw==\n', /no client-key\(-data\)/],
    ['      tokenFile: /nonexistent/token\n', /tokenFile \/nonexistent\/token does not exist/],
  ];
  for (const [user, expected] of cases) assert.throws(() => loadConnection({ kubeconfig: kubeconfig(t, user) }), (e: Error) => e instanceof KubernetesConfigError && expected.test(e.message), user);
  assert.throws(() => loadConnection({ kubeconfig: kubeconfig(t, '      token: x\n', '      certificate-authority: nope.crt\n') }), /has no server/);
  assert.throws(() => loadConnection({ kubeconfig: kubeconfig(t, '      token: x\n', '      server: k8s.example:6443\n') }), /must be an https:\/\/ URL|is not a URL/);
  assert.throws(() => loadConnection({ kubeconfig: '/nonexistent/kubeconfig' }), /the kubeconfig \/nonexistent\/kubeconfig does not exist/);
  const bad = join(dir(t), 'bad');
  writeFileSync(bad, 'clusters: [');
  assert.throws(() => loadConnection({ kubeconfig: bad }), /is not valid YAML/);
});

const base = `listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: api
`;

test('config: pool discovery.kubernetes and the top-level kubernetes section', (t) => {
  const etc = dir(t);
  const result = parseConfig(`${base}pools:
  api:
    discovery:
      kubernetes: { namespace: prod, service: api, port: http }
  grpc:
    discovery:
      kubernetes: { service: grpc, port: 9000 }
kubernetes:
  kubeconfig: ./kube/config
  context: prod
`, join(etc, 'usher.yaml'));
  assert.ok(result.ok, JSON.stringify(!result.ok && result.errors));
  assert.deepEqual(result.config.pools['api']!.discovery, { kubernetes: { namespace: 'prod', service: 'api', port: 'http' } });
  assert.deepEqual(result.config.pools['grpc']!.discovery, { kubernetes: { service: 'grpc', port: 9000 } });
  assert.deepEqual(result.config.kubernetes, { kubeconfig: join(etc, 'kube', 'config'), context: 'prod' }, 'the kubeconfig path is relative to the config file');
  assert.equal(result.config.pools['api']!.backends.length, 0);
  assert.ok(!result.warnings.some((w) => w.message.includes('has no backends')), 'a discovered pool is not "empty"');
  const inCluster = parseConfig(`${base}pools:\n  api: { discovery: { kubernetes: { service: api, port: http } } }\nkubernetes: {}\n`, 'x.yaml');
  assert.ok(inCluster.ok);
  assert.deepEqual(inCluster.config.kubernetes, { kubeconfig: 'in-cluster' });
});

test('config errors for discovery.kubernetes and kubernetes', () => {
  const errors = (yaml: string): string[] => {
    const result = parseConfig(`${base}${yaml}`, 'x.yaml');
    return result.ok ? [] : result.errors.map((e) => `${e.path}: ${e.message}`);
  };
  assert.match(errors('pools:\n  api: { discovery: { kubernetes: { service: api } } }\n').join('\n'), /pools\.api\.discovery\.kubernetes\.port/);
  assert.match(errors('pools:\n  api: { discovery: { kubernetes: { service: Api_1, port: http } } }\n').join('\n'), /Service name is a DNS label/);
  assert.match(errors('pools:\n  api: { discovery: { kubernetes: { service: api, port: 70000 } } }\n').join('\n'), /port/);
  assert.match(errors('pools:\n  api: { discovery: { kubernetes: { service: api, port: HTTP } } }\n').join('\n'), /port/);
  assert.match(errors('pools:\n  api: { discovery: { consul: {} } }\n').join('\n'), /unknown key "consul"/);
  assert.match(errors('pools:\n  api: {}\nkubernetes: { context: prod }\n').join('\n'), /context applies to a kubeconfig file/);
});

test('kubeconfig: credentials over plain http only to a loopback address (kubectl proxy), never across the network', (t) => {
  const remote = kubeconfig(t, '      token: abc\n', '      server: http://10.0.0.1:8001\n');
  assert.throws(() => loadConnection({ kubeconfig: remote }), (e: Error) => e instanceof KubernetesConfigError && /plain http and user "u1" has credentials/.test(e.message));
  const proxy = kubeconfig(t, '      token: abc\n', '      server: http://127.0.0.1:8001\n');
  assert.equal(loadConnection({ kubeconfig: proxy }).server.origin, 'http://127.0.0.1:8001');
  const anonymous = kubeconfig(t, '      {}\n', '      server: http://10.0.0.1:8001\n');
  assert.equal(loadConnection({ kubeconfig: anonymous }).credentials.kind, 'none', 'no credentials: nothing to leak');
});
