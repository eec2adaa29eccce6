/**
 * What can go wrong talking to Kubernetes, as types with messages an operator
 * can act on: a configuration usher cannot use (at start or reload), an
 * answer from the API server (with the verb and resource, so a 403 says which
 * RBAC rule is missing), and a server that cannot be reached.
 */
import { qualifiedResource, type ResourceKind } from './resources.ts';
import type { Status } from './types.ts';

/** The `kubernetes` section (or the environment it points at) cannot be used: missing token, unreadable kubeconfig, unsupported auth. */
export class KubernetesConfigError extends Error {
  override readonly name = 'KubernetesConfigError';
}

/** What a call was: `list endpointslices.discovery.k8s.io in namespace "prod"`. */
export interface ApiCall {
  readonly verb: string;
  readonly kind: ResourceKind;
  readonly namespace?: string | undefined;
  readonly name?: string | undefined;
  readonly subresource?: string | undefined;
}

export function describeCall(call: ApiCall): string {
  const resource = qualifiedResource(call.kind) + (call.subresource === undefined ? '' : `/${call.subresource}`);
  const target = call.name === undefined ? resource : `${resource} "${call.name}"`;
  const where = call.kind.namespaced ? (call.namespace === undefined ? ' in all namespaces' : ` in namespace "${call.namespace}"`) : '';
  return `${call.verb} ${target}${where}`;
}

/** The API server answered with an error status (or a watch ERROR event). */
export class KubernetesApiError extends Error {
  override readonly name = 'KubernetesApiError';
  readonly status: number;
  /** The Status `reason` (`Forbidden`, `Expired`, `Gone`, `Conflict`, …) when the server sent one. */
  readonly reason: string | undefined;
  readonly call: ApiCall;
  /** Seconds the server asked to wait (429, 503 Retry-After), if it said. */
  readonly retryAfterSeconds: number | undefined;

  constructor(call: ApiCall, status: number, body: Status | undefined, retryAfterSeconds?: number) {
    super(apiErrorMessage(call, status, body));
    this.status = status;
    this.reason = body?.reason;
    this.call = call;
    this.retryAfterSeconds = retryAfterSeconds ?? body?.details?.retryAfterSeconds;
  }

  /** 410 Gone (a compacted resourceVersion or an expired continue token): list again. */
  get gone(): boolean {
    return this.status === 410;
  }

  /** 409 Conflict: the object changed since it was read (a stale resourceVersion). */
  get conflict(): boolean {
    return this.status === 409;
  }
}

/** The API server could not be reached, or the connection broke (refused, reset, TLS failure, timeout, stalled watch). */
export class KubernetesNetworkError extends Error {
  override readonly name = 'KubernetesNetworkError';
  readonly call: ApiCall;
  readonly code: string | undefined;

  constructor(call: ApiCall, server: string, cause: unknown, what = 'cannot reach the Kubernetes API server') {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    super(`${describeCall(call)}: ${what} at ${server}: ${networkReason(cause)}`, { cause });
    this.call = call;
    this.code = code;
  }
}

function apiErrorMessage(call: ApiCall, status: number, body: Status | undefined): string {
  const said = body?.message !== undefined && body.message !== '' ? `: ${body.message}` : '';
  const head = `${describeCall(call)}: ${status}${body?.reason === undefined ? '' : ` ${body.reason}`}${said}`;
  switch (status) {
    case 401:
      return `${head}; the API server did not accept usher's credentials (an expired or revoked service-account token, or the wrong kubeconfig user)`;
    case 403: {
      const ns = call.kind.namespaced && call.namespace !== undefined ? ` -n ${call.namespace}` : '';
      return `${head}; usher's service account lacks this permission: apply the ClusterRole and binding in deploy/kubernetes/rbac.yaml (check with: kubectl auth can-i ${call.verb} ${qualifiedResource(call.kind)}${ns} --as system:serviceaccount:<namespace>:<account>)`;
    }
    case 404:
      return call.verb === 'list' || call.verb === 'watch' ? `${head}; the API server does not serve this resource (is the CRD or API version installed?)` : head;
    case 410:
      return `${head}; the resourceVersion is too old (compacted): listing again`;
    default:
      return head;
  }
}

function networkReason(cause: unknown): string {
  const error = cause as NodeJS.ErrnoException | undefined;
  switch (error?.code) {
    case 'ECONNREFUSED':
      return 'connection refused (ECONNREFUSED)';
    case 'ENOTFOUND':
      return 'the host name does not resolve (ENOTFOUND)';
    case 'ECONNRESET':
      return 'connection reset (ECONNRESET)';
    case 'ETIMEDOUT':
      return 'timed out (ETIMEDOUT)';
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
      return `the server's certificate is not signed by the configured CA (${error.code}): check certificate-authority(-data), or the in-cluster ca.crt`;
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `the server's certificate does not name this host (${error.code}): check the server address, or set tls-server-name in the kubeconfig`;
    default:
      return error?.message ?? String(cause);
  }
}
