/**
 * The Kubernetes resources usher may read or write, and where the API serves
 * them. One entry per kind; the client, the watch machinery, the RBAC table
 * (`access.ts`) and error messages all take a {@link ResourceKind}, so a new
 * kind (the route translation's Ingress, HTTPRoute, Gateway, …) is one entry
 * here and nothing else.
 */

export interface ResourceKind {
  /** API group; '' is the core group (`/api/v1`). */
  readonly group: string;
  readonly version: string;
  /** The plural resource name used in paths and RBAC rules. */
  readonly resource: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

function kind(group: string, version: string, resource: string, kindName: string, namespaced = true): ResourceKind {
  return { group, version, resource, kind: kindName, namespaced };
}

export const ENDPOINT_SLICES = kind('discovery.k8s.io', 'v1', 'endpointslices', 'EndpointSlice');
export const SERVICES = kind('', 'v1', 'services', 'Service');
export const SECRETS = kind('', 'v1', 'secrets', 'Secret');
export const INGRESSES = kind('networking.k8s.io', 'v1', 'ingresses', 'Ingress');
export const INGRESS_CLASSES = kind('networking.k8s.io', 'v1', 'ingressclasses', 'IngressClass', false);
export const GATEWAY_CLASSES = kind('gateway.networking.k8s.io', 'v1', 'gatewayclasses', 'GatewayClass', false);
export const GATEWAYS = kind('gateway.networking.k8s.io', 'v1', 'gateways', 'Gateway');
export const HTTP_ROUTES = kind('gateway.networking.k8s.io', 'v1', 'httproutes', 'HTTPRoute');
export const REFERENCE_GRANTS = kind('gateway.networking.k8s.io', 'v1beta1', 'referencegrants', 'ReferenceGrant');

/** `group/version`, or `version` for the core group: an object's `apiVersion`. */
export function apiVersionOf(kindOf: ResourceKind): string {
  return kindOf.group === '' ? kindOf.version : `${kindOf.group}/${kindOf.version}`;
}

/** `endpointslices.discovery.k8s.io`, `services`: how RBAC messages and people name a resource. */
export function qualifiedResource(kindOf: ResourceKind): string {
  return kindOf.group === '' ? kindOf.resource : `${kindOf.resource}.${kindOf.group}`;
}

/**
 * The path of a collection (no `name`), an object, or an object's
 * subresource. A namespaced kind without a namespace is the collection over
 * every namespace (list and watch only).
 */
export function resourcePath(kindOf: ResourceKind, namespace?: string, name?: string, subresource?: string): string {
  const base = kindOf.group === '' ? `/api/${kindOf.version}` : `/apis/${kindOf.group}/${kindOf.version}`;
  if (name !== undefined && kindOf.namespaced && namespace === undefined) throw new Error(`${kindOf.kind} ${name}: a namespaced object needs a namespace`);
  const ns = kindOf.namespaced && namespace !== undefined ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  const object = name === undefined ? '' : `/${encodeURIComponent(name)}${subresource === undefined ? '' : `/${subresource}`}`;
  return `${base}${ns}/${kindOf.resource}${object}`;
}
