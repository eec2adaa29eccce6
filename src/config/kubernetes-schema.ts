/**
 * The schema of the top-level `kubernetes` section (how usher reaches the API
 * server) and of a pool's `discovery.kubernetes` (membership from a Service's
 * EndpointSlices), which `discovery-schema.ts` puts beside `discovery.dns`.
 */
import { z } from 'zod';
import type { KubernetesConfig, KubernetesDiscoveryConfig, KubernetesGatewayConfig, KubernetesIngressConfig } from './types.ts';
import { documented, filePath, text } from './values.ts';

/** `kubeconfig` value meaning: the service account and environment Kubernetes gives a pod. */
export const IN_CLUSTER = 'in-cluster';

/** A DNS-1123 label: namespace and Service names. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** An IANA service name, what a Service port's `name` must be (lowercase letters, digits, '-'; at most 15). */
const PORT_NAME = /^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$/;

function dnsLabel(what: string, description: string, examples: readonly string[]) {
  return text({ description, examples }, `expected a ${what} name`).regex(DNS_LABEL, { error: `a ${what} name is a DNS label: lowercase letters, digits and "-", at most 63, starting and ending with a letter or digit` });
}

const portSchema = documented(
  z.union([
    z.number().int().min(1).max(65535),
    z.string().regex(PORT_NAME, { error: 'a port name is lowercase letters, digits and "-", at most 15' }),
  ], { error: 'expected a port name (the Service port\'s name, e.g. http) or a port number' }),
  { description: 'Which port of the endpoints: the Service port\'s `name` (what EndpointSlices carry), or a number, which must be the endpoints\' port (the pods\' port, the Service\'s `targetPort`), not the Service\'s own port. Endpoints without that port are ignored.', examples: ['http', 8080] },
);

/** A pool's `discovery.kubernetes`. */
export const kubernetesDiscoverySchema = documented(
  z.strictObject({
    namespace: dnsLabel('namespace', 'The Service\'s namespace. Default: usher\'s own (the service account\'s namespace in a cluster, the kubeconfig context\'s namespace outside), else `default`.', ['prod']).optional(),
    service: dnsLabel('Service', 'The Service whose EndpointSlices (label `kubernetes.io/service-name`) give the pool its backends.', ['api']),
    port: portSchema,
  }, { error: 'expected a mapping with "service" and "port"' }).transform((k): KubernetesDiscoveryConfig => ({ ...(k.namespace === undefined ? {} : { namespace: k.namespace }), service: k.service, port: k.port })),
  {
    description: 'Backends from a Kubernetes Service\'s EndpointSlices, watched through the API server (the top-level `kubernetes` says how to reach it). Ready endpoints serve; terminating ones that still serve are drained (sticky clients only) and used only when nothing is ready, as kube-proxy does; gone or not serving ones leave. Backends listed in `backends` stay as well. See docs/kubernetes.md.',
    examples: [{ namespace: 'prod', service: 'api', port: 'http' }],
  },
);

const ingressSchema = documented(
  z.strictObject({
    controller: text({ description: 'IngressClasses whose `spec.controller` is this are usher\'s: only Ingresses of those classes (by `spec.ingressClassName`, or without one when such a class has the annotation `ingressclass.kubernetes.io/is-default-class: "true"`) are served.', examples: ['usher.dev/ingress-controller'] }).default('usher.dev/ingress-controller'),
    listener: text({ description: 'The http listener (under `listeners`) the Ingresses\' routes go on, after the file\'s own routes.', examples: ['web'] }),
    tlsListener: text({ description: 'The https listener the hosts of Ingress `tls` entries are also served on, with the certificates of their `kubernetes.io/tls` Secrets (chosen by SNI; the file\'s certificates come first and stay the default). A changed Secret is served on new connections without a reload.', examples: ['websecure'] }).optional(),
    address: text({ description: 'Written to each served Ingress\'s `status.loadBalancer.ingress`: an IP address, or a host name (the load balancer in front of usher).', examples: ['203.0.113.10', 'lb.example.com'] }).optional(),
  }, { error: 'expected an ingress mapping with "listener"' }).transform((i): KubernetesIngressConfig => ({ controller: i.controller, listener: i.listener, ...(i.tlsListener === undefined ? {} : { tlsListener: i.tlsListener }), ...(i.address === undefined ? {} : { address: i.address }) })),
  { description: 'Routes from Ingresses (networking.k8s.io/v1) of usher\'s IngressClasses: hosts (exact, one-label `*.`), paths (Exact, Prefix element-wise, ImplementationSpecific as Prefix), `defaultBackend`, TLS from Secrets. See docs/kubernetes.md.', examples: [{ listener: 'web', tlsListener: 'websecure', address: '203.0.113.10' }] },
);

const gatewaySchema = documented(
  z.strictObject({
    controllerName: text({ description: 'GatewayClasses whose `spec.controllerName` is this are usher\'s: only HTTPRoutes attached to Gateways of those classes are served.', examples: ['usher.dev/gateway-controller'] }).default('usher.dev/gateway-controller'),
    listener: text({ description: 'The http listener (under `listeners`) the HTTPRoutes attached to a Gateway\'s HTTP listeners go on, after the file\'s own routes and the Ingresses\'.', examples: ['web'] }),
    address: text({ description: 'Written to each Gateway\'s `status.addresses`: an IP address or a host name.', examples: ['203.0.113.10'] }).optional(),
  }, { error: 'expected a gateway mapping with "listener"' }).transform((g): KubernetesGatewayConfig => ({ controllerName: g.controllerName, listener: g.listener, ...(g.address === undefined ? {} : { address: g.address }) })),
  { description: 'Routes from the Gateway API (gateway.networking.k8s.io/v1): HTTPRoutes attached to Gateways of usher\'s GatewayClasses, with the spec\'s match precedence, weighted backendRefs, header, redirect and rewrite filters, and ReferenceGrants. See docs/kubernetes.md.', examples: [{ listener: 'web' }] },
);

/** Top-level `kubernetes`. */
export const kubernetesSchema = documented(
  z.strictObject({
    kubeconfig: documented(
      z.union([z.literal(IN_CLUSTER), filePath({ description: 'A kubeconfig file.' })], { error: 'expected in-cluster or a kubeconfig file path' }),
      { description: '`in-cluster`: the pod\'s service account (`KUBERNETES_SERVICE_HOST`/`_PORT`, the token, CA and namespace under /var/run/secrets/kubernetes.io/serviceaccount; a rotated token is picked up). Or a kubeconfig file (relative to the config file\'s directory): its `server`, `certificate-authority(-data)`, `insecure-skip-tls-verify`, and `token`, `tokenFile` or `client-certificate(-data)` with `client-key(-data)`; exec and auth-provider plugins are not supported.', examples: ['in-cluster', '/etc/usher/kubeconfig'] },
    ).default(IN_CLUSTER),
    context: text({ description: 'The kubeconfig context to use. Default: its `current-context`. Only with a kubeconfig file.', examples: ['prod'] }).min(1, { error: 'expected a context name' }).optional(),
    ingress: ingressSchema.optional(),
    gateway: gatewaySchema.optional(),
  }, { error: 'expected a kubernetes mapping' }).transform((k, ctx): KubernetesConfig => {
    if (k.context !== undefined && k.kubeconfig === IN_CLUSTER) ctx.issues.push({ code: 'custom', message: 'context applies to a kubeconfig file, not to in-cluster', input: k.context, path: ['context'] });
    return { kubeconfig: k.kubeconfig, ...(k.context === undefined ? {} : { context: k.context }), ...(k.ingress === undefined ? {} : { ingress: k.ingress }), ...(k.gateway === undefined ? {} : { gateway: k.gateway }) };
  }),
  { description: 'How usher reaches the Kubernetes API server, for pools with `discovery.kubernetes` and for routes from Ingresses and the Gateway API (`ingress`, `gateway`). Without this section such pools use `in-cluster`. A reload that changes it (or the files it names) restarts the watches; pools keep their members meanwhile. See docs/kubernetes.md.', examples: [{ kubeconfig: 'in-cluster' }, { kubeconfig: '/etc/usher/kubeconfig', context: 'prod' }] },
);
