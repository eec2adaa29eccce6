/**
 * Every Kubernetes API call usher makes, as RBAC sees it: (API group,
 * resource, verb). The ClusterRole in deploy/kubernetes/rbac.yaml must grant
 * exactly these, and a test (test/unit/kubernetes-rbac.test.ts) compares the
 * two both ways: a call added here without its rule fails, and so does a rule
 * broader than what usher does.
 *
 * A source that makes a new call adds its row here. The route translation
 * (Ingress, Gateway API) will add get/list/watch on its kinds and
 * update/patch on their `status` subresource (resource `ingresses/status`).
 */
import { ENDPOINT_SLICES, type ResourceKind } from './resources.ts';

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
];
