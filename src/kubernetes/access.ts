/**
 * Every Kubernetes API call usher makes, as RBAC sees it: (API group,
 * resource, verb). The ClusterRole in deploy/kubernetes/rbac.yaml must grant
 * exactly these, and a test (test/unit/kubernetes-rbac.test.ts) compares the
 * two both ways: a call added here without its rule fails, and so does a rule
 * broader than what usher does.
 *
 * A source that makes a new call adds its row here.
 */
import { ENDPOINT_SLICES, GATEWAY_CLASSES, GATEWAYS, HTTP_ROUTES, INGRESS_CLASSES, INGRESSES, REFERENCE_GRANTS, SECRETS, SERVICES, type ResourceKind } from './resources.ts';

export type ApiVerb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';

export interface ApiAccess {
  readonly group: string;
  /** The plural resource, `…/status` for the status subresource. */
  readonly resource: string;
  readonly verbs: readonly ApiVerb[];
  /** Who needs it, for people reading the RBAC. */
  readonly why: string;
}

function access(kind: ResourceKind, verbs: readonly ApiVerb[], why: string, subresource?: string): ApiAccess {
  return { group: kind.group, resource: subresource === undefined ? kind.resource : `${kind.resource}/${subresource}`, verbs, why };
}

/** Every call usher's Kubernetes client makes (the Reflector lists, then watches). */
export const KUBERNETES_API_ACCESS: readonly ApiAccess[] = [
  access(ENDPOINT_SLICES, ['list', 'watch'], 'pools with discovery.kubernetes: list, then watch, a Service\'s EndpointSlices (src/kubernetes/discovery.ts)'),
  // Routes (src/kubernetes/routes.ts): every namespace is listed and watched; an object is read by name only after a 409 on its status.
  access(INGRESS_CLASSES, ['list', 'watch'], 'kubernetes.ingress: which IngressClasses are usher\'s (spec.controller, the default-class annotation)'),
  access(INGRESSES, ['get', 'list', 'watch'], 'kubernetes.ingress: the Ingresses of usher\'s classes; get: read again after a status conflict'),
  access(INGRESSES, ['update'], 'kubernetes.ingress.address: status.loadBalancer.ingress', 'status'),
  access(SERVICES, ['list', 'watch'], 'kubernetes.ingress and .gateway: a Service port number → the port name EndpointSlices carry'),
  access(SECRETS, ['list', 'watch'], 'kubernetes.ingress.tlsListener: kubernetes.io/tls Secrets named by Ingress tls entries (field selector type=kubernetes.io/tls)'),
  access(GATEWAY_CLASSES, ['get', 'list', 'watch'], 'kubernetes.gateway: which GatewayClasses are usher\'s (spec.controllerName); get: read again after a status conflict'),
  access(GATEWAY_CLASSES, ['update'], 'kubernetes.gateway: GatewayClass Accepted', 'status'),
  access(GATEWAYS, ['get', 'list', 'watch'], 'kubernetes.gateway: the Gateways of usher\'s classes and their listeners; get: read again after a status conflict'),
  access(GATEWAYS, ['update'], 'kubernetes.gateway: Gateway Accepted/Programmed, listeners, addresses', 'status'),
  access(HTTP_ROUTES, ['get', 'list', 'watch'], 'kubernetes.gateway: HTTPRoutes attached to usher\'s Gateways; get: read again after a status conflict'),
  access(HTTP_ROUTES, ['update'], 'kubernetes.gateway: HTTPRoute per-parent Accepted/ResolvedRefs', 'status'),
  access(REFERENCE_GRANTS, ['list', 'watch'], 'kubernetes.gateway: cross-namespace backendRefs are allowed only by a ReferenceGrant'),
];
