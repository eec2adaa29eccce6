/**
 * deploy/kubernetes/ against the code: the ClusterRole grants exactly the API
 * calls usher makes (src/kubernetes/access.ts, both ways: nothing missing,
 * nothing broader), the ConfigMap holds a valid usher config, and the
 * Deployment's probes, ports, grace period, Service, PodDisruptionBudget and
 * classes agree with it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { parseConfig } from '../../src/config/index.ts';
import { KUBERNETES_API_ACCESS } from '../../src/kubernetes/access.ts';

type Doc = Record<string, any>;

const dir = fileURLToPath(new URL('../../deploy/kubernetes/', import.meta.url));
function docs(file: string): Doc[] {
  return parseAllDocuments(readFileSync(`${dir}${file}`, 'utf8')).map((d) => {
    assert.deepEqual(d.errors, [], `${file}: ${d.errors.join('; ')}`);
    return d.toJS() as Doc;
  }).filter((d) => d !== null);
}
function one(file: string, kind: string): Doc {
  const found = docs(file).filter((d) => d['kind'] === kind);
  assert.equal(found.length, 1, `${file}: one ${kind}`);
  return found[0]!;
}

test('the ClusterRole grants exactly the (group, resource, verb) calls usher makes: none missing, none broader', () => {
  const role = one('rbac.yaml', 'ClusterRole');
  const granted = new Set<string>();
  for (const rule of role['rules'] as Doc[]) {
    for (const field of ['apiGroups', 'resources', 'verbs']) {
      assert.ok(Array.isArray(rule[field]) && rule[field].length > 0, `every rule lists ${field}`);
      assert.ok(!rule[field].includes('*'), `no wildcard in ${field}: ${JSON.stringify(rule)}`);
    }
    assert.equal(rule['nonResourceURLs'], undefined);
    for (const group of rule['apiGroups'] as string[]) for (const resource of rule['resources'] as string[]) for (const verb of rule['verbs'] as string[]) granted.add(`${group}|${resource}|${verb}`);
  }
  const needed = new Set<string>();
  for (const access of KUBERNETES_API_ACCESS) for (const verb of access.verbs) needed.add(`${access.group}|${access.resource}|${verb}`);
  assert.ok(needed.size > 0);
  assert.deepEqual([...needed].filter((n) => !granted.has(n)), [], 'calls usher makes that the ClusterRole does not grant');
  assert.deepEqual([...granted].filter((g) => !needed.has(g)), [], 'grants broader than what usher does (add the call to KUBERNETES_API_ACCESS, or drop the rule)');
});

test('the binding gives that ClusterRole to the service account the Deployment runs as', () => {
  const account = one('rbac.yaml', 'ServiceAccount');
  const binding = one('rbac.yaml', 'ClusterRoleBinding');
  const deployment = one('deployment.yaml', 'Deployment');
  assert.deepEqual(binding['roleRef'], { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: one('rbac.yaml', 'ClusterRole')['metadata']['name'] });
  assert.deepEqual(binding['subjects'], [{ kind: 'ServiceAccount', name: account['metadata']['name'], namespace: account['metadata']['namespace'] }]);
  assert.equal(deployment['spec']['template']['spec']['serviceAccountName'], account['metadata']['name']);
  assert.equal(deployment['metadata']['namespace'], account['metadata']['namespace']);
  assert.notEqual(deployment['spec']['template']['spec']['automountServiceAccountToken'], false, 'in-cluster needs the token mounted');
});

test('the ConfigMap is a valid usher config; the Deployment\'s ports, probes and grace period agree with it', () => {
  const map = one('configmap.yaml', 'ConfigMap');
  const parsed = parseConfig(map['data']['usher.yaml'] as string, 'usher.yaml', { USHER_ADMIN_TOKEN: 'x'.repeat(32) });
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.errors.map((e) => `${e.path}: ${e.message}`).join('\n'));
  const config = parsed.config;
  assert.equal(config.kubernetes?.kubeconfig, 'in-cluster');
  assert.ok(Object.values(config.pools).some((p) => p.discovery?.kubernetes !== undefined));

  const deployment = one('deployment.yaml', 'Deployment');
  const pod = deployment['spec']['template']['spec'] as Doc;
  const container = (pod['containers'] as Doc[])[0]!;
  const ports = new Map((container['ports'] as Doc[]).map((p) => [p['name'] as string, p['containerPort'] as number]));
  assert.equal(ports.get('admin'), config.admin!.bind.port, 'the admin port is the admin listener\'s');
  assert.equal(ports.get('http'), config.listeners[0]!.bind.port);
  assert.notEqual(config.admin!.bind.host, '127.0.0.1', 'the kubelet probes the pod IP: the admin listener must not be loopback-only');
  assert.deepEqual(container['readinessProbe']['httpGet'], { path: '/readyz', port: 'admin' });
  assert.deepEqual(container['livenessProbe']['httpGet'], { path: '/livez', port: 'admin' });
  assert.ok(container['args'].includes('/etc/usher/usher.yaml'));
  assert.deepEqual((container['volumeMounts'] as Doc[])[0], { name: 'config', mountPath: '/etc/usher', readOnly: true });

  const preStop = container['lifecycle']['preStop'] as Doc;
  const sleepSeconds = preStop['sleep']?.['seconds'] ?? Number((preStop['exec']['command'] as string[]).at(-1));
  assert.ok(sleepSeconds >= 5, 'a preStop delay of some seconds');
  const grace = pod['terminationGracePeriodSeconds'] as number;
  assert.ok(grace >= sleepSeconds + config.shutdownTimeoutMs / 1000, `terminationGracePeriodSeconds ${grace} covers the preStop delay (${sleepSeconds} s) and shutdownTimeout (${config.shutdownTimeoutMs / 1000} s)`);
  assert.ok(grace <= sleepSeconds + config.shutdownTimeoutMs / 1000 + 15, 'and not much more');
  const env = new Map((container['env'] as Doc[]).map((e) => [e['name'] as string, e]));
  assert.ok(env.get('USHER_ADMIN_TOKEN')?.['valueFrom']?.['secretKeyRef'] !== undefined, 'the admin token from a Secret');
});

test('the Service, PodDisruptionBudget and classes select and name what the Deployment runs', () => {
  const deployment = one('deployment.yaml', 'Deployment');
  const labels = deployment['spec']['template']['metadata']['labels'] as Record<string, string>;
  const matches = (selector: Record<string, string>): boolean => Object.entries(selector).every(([k, v]) => labels[k] === v);
  assert.deepEqual(deployment['spec']['selector']['matchLabels'], labels);
  const service = one('service.yaml', 'Service');
  assert.ok(matches(service['spec']['selector']));
  assert.deepEqual((service['spec']['ports'] as Doc[]).map((p) => p['targetPort']), ['http']);
  const pdb = one('pdb.yaml', 'PodDisruptionBudget');
  assert.ok(matches(pdb['spec']['selector']['matchLabels']));
  assert.ok(pdb['spec']['maxUnavailable'] < deployment['spec']['replicas'] || pdb['spec']['minAvailable'] < deployment['spec']['replicas'], 'a drain can still proceed');
  assert.equal(one('ingressclass.yaml', 'IngressClass')['spec']['controller'], 'usher.dev/ingress-controller');
  assert.equal(one('gatewayclass.yaml', 'GatewayClass')['spec']['controllerName'], 'usher.dev/gateway-controller');
  const kustomization = one('kustomization.yaml', 'Kustomization');
  const listed = new Set(kustomization['resources'] as string[]);
  for (const file of ['namespace.yaml', 'rbac.yaml', 'configmap.yaml', 'deployment.yaml', 'service.yaml', 'pdb.yaml', 'ingressclass.yaml', 'gatewayclass.yaml']) assert.ok(listed.has(file), `kustomization lists ${file}`);
  for (const file of listed) for (const d of docs(file)) if (d['kind'] !== 'Namespace' && d['kind'] !== 'ClusterRole' && d['kind'] !== 'ClusterRoleBinding' && d['kind'] !== 'IngressClass' && d['kind'] !== 'GatewayClass') assert.equal(d['metadata']['namespace'], 'usher', `${file} ${d['kind']} in namespace usher`);
});
