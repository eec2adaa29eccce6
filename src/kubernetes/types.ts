/**
 * The parts of Kubernetes API objects usher reads, written by hand from the
 * API reference (https://kubernetes.io/docs/reference/kubernetes-api/): only
 * the fields used, every one optional where the API allows it to be absent.
 * Other kinds (Ingress, HTTPRoute, Gateway, Secret, Service) add their own
 * interfaces over {@link KubeObject}.
 */

export interface ObjectMeta {
  readonly name?: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
  readonly generation?: number;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly creationTimestamp?: string;
  readonly deletionTimestamp?: string;
}

/** Any object the API serves: kind, apiVersion and metadata; the rest depends on the kind. */
export interface KubeObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: ObjectMeta;
}

export interface ListMeta {
  readonly resourceVersion?: string;
  readonly continue?: string;
  readonly remainingItemCount?: number;
}

/** A `…List` response. Real API servers leave `kind` and `apiVersion` out of the items. */
export interface KubeList<T extends KubeObject = KubeObject> {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: ListMeta;
  readonly items?: readonly T[];
}

/** `metav1.Status`: what the API server answers on errors (and inside watch ERROR events). */
export interface Status {
  readonly kind?: 'Status';
  readonly apiVersion?: string;
  readonly status?: 'Success' | 'Failure';
  readonly message?: string;
  /** Machine-readable: `NotFound`, `Forbidden`, `Unauthorized`, `Conflict`, `Expired`, `Gone`, `TooManyRequests`, … */
  readonly reason?: string;
  readonly code?: number;
  readonly details?: { readonly name?: string; readonly kind?: string; readonly group?: string; readonly retryAfterSeconds?: number };
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

/** One line of a watch stream. `object` is a {@link Status} for ERROR events. */
export interface WatchEvent<T extends KubeObject = KubeObject> {
  readonly type: WatchEventType;
  readonly object: T | Status;
}

// ---- discovery.k8s.io/v1 EndpointSlice ------------------------------------------------------

export interface EndpointConditions {
  /** nil means true (unknown state is treated as ready). */
  readonly ready?: boolean | null;
  /** nil means the same as `ready`. */
  readonly serving?: boolean | null;
  /** nil means false. */
  readonly terminating?: boolean | null;
}

export interface ObjectReference {
  readonly kind?: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly uid?: string;
}

export interface Endpoint {
  /** 1 to 100 addresses, assumed fungible: consumers may use only the first. */
  readonly addresses: readonly string[];
  readonly conditions?: EndpointConditions;
  readonly hostname?: string;
  readonly nodeName?: string;
  readonly zone?: string;
  readonly targetRef?: ObjectReference;
}

export interface EndpointPort {
  /** The Service port's name; empty or absent for a Service's single unnamed port. */
  readonly name?: string | null;
  /** TCP when absent. */
  readonly protocol?: string | null;
  /** The endpoints' port (the pods' port); absent means all ports. */
  readonly port?: number | null;
  readonly appProtocol?: string | null;
}

export interface EndpointSlice extends KubeObject {
  readonly addressType: 'IPv4' | 'IPv6' | 'FQDN' | string;
  readonly endpoints?: readonly Endpoint[] | null;
  readonly ports?: readonly EndpointPort[] | null;
}
