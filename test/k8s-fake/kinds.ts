/**
 * The kinds the fake API server serves, with what its discovery documents say
 * about them (what kubectl reads to turn `endpointslices` into a path). A new
 * kind is one line here: the store, list, watch, selectors, status
 * subresource and discovery all follow from it.
 *
 * Kept apart from src/kubernetes/resources.ts on purpose: this describes what
 * a real API server says, and the client is tested against it.
 */

export interface FakeKind {
  /** '' is the core group. */
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  /** The plural resource (paths, RBAC). */
  readonly plural: string;
  readonly singular: string;
  readonly namespaced: boolean;
  readonly shortNames?: readonly string[];
  /** Has a `/status` subresource: PUT and PATCH there change only `.status`, and writes to the object leave `.status` alone. */
  readonly status: boolean;
  /** Field selectors beyond metadata.name and metadata.namespace. */
  readonly fields?: Readonly<Record<string, (object: FakeObject) => string | undefined>>;
}

/** Any object the fake stores: plain JSON. */
export interface FakeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    creationTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

function k(group: string, version: string, kind: string, plural: string, namespaced: boolean, extra: Partial<Pick<FakeKind, 'shortNames' | 'status' | 'fields'>> = {}): FakeKind {
  return { group, version, kind, plural, singular: kind.toLowerCase(), namespaced, status: extra.status ?? false, ...(extra.shortNames ? { shortNames: extra.shortNames } : {}), ...(extra.fields ? { fields: extra.fields } : {}) };
}

export const FAKE_KINDS: readonly FakeKind[] = [
  k('', 'v1', 'Namespace', 'namespaces', false, { shortNames: ['ns'], status: true }),
  k('', 'v1', 'Service', 'services', true, { shortNames: ['svc'], status: true }),
  k('', 'v1', 'Secret', 'secrets', true, { fields: { type: (o) => o['type'] as string | undefined } }),
  k('discovery.k8s.io', 'v1', 'EndpointSlice', 'endpointslices', true),
  k('networking.k8s.io', 'v1', 'Ingress', 'ingresses', true, { shortNames: ['ing'], status: true }),
  k('networking.k8s.io', 'v1', 'IngressClass', 'ingressclasses', false),
  k('gateway.networking.k8s.io', 'v1', 'GatewayClass', 'gatewayclasses', false, { shortNames: ['gc'], status: true }),
  k('gateway.networking.k8s.io', 'v1', 'Gateway', 'gateways', true, { shortNames: ['gtw'], status: true }),
  k('gateway.networking.k8s.io', 'v1', 'HTTPRoute', 'httproutes', true, { status: true }),
  k('gateway.networking.k8s.io', 'v1beta1', 'ReferenceGrant', 'referencegrants', true, { shortNames: ['refgrant'] }),
];

export function apiVersionOf(kind: FakeKind): string {
  return kind.group === '' ? kind.version : `${kind.group}/${kind.version}`;
}

/** `endpointslices.discovery.k8s.io`, as the API server names resources in messages. */
export function qualified(kind: FakeKind): string {
  return kind.group === '' ? kind.plural : `${kind.plural}.${kind.group}`;
}

export function kindByApiVersion(apiVersion: string | undefined, kindName: string | undefined): FakeKind | undefined {
  return FAKE_KINDS.find((kind) => apiVersionOf(kind) === apiVersion && kind.kind === kindName);
}

export function kindByPath(group: string, version: string, plural: string): FakeKind | undefined {
  return FAKE_KINDS.find((kind) => kind.group === group && kind.version === version && kind.plural === plural);
}
