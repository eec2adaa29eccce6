/** Builders for the objects tests put into the fake. */
import type { FakeObject } from './kinds.ts';

export interface EndpointSpec {
  readonly ip: string;
  readonly ready?: boolean | null;
  readonly serving?: boolean | null;
  readonly terminating?: boolean | null;
  /** The pod's name (targetRef). */
  readonly pod?: string;
}

export interface SlicePort {
  readonly name?: string;
  readonly port: number;
  readonly protocol?: string;
}

/** An EndpointSlice of `service` in `namespace` (label kubernetes.io/service-name). Conditions left `undefined` are left out, as the API allows. */
export function endpointSlice(namespace: string, service: string, name: string, endpoints: readonly EndpointSpec[], ports: readonly SlicePort[] = [{ name: 'http', port: 8080 }], addressType = 'IPv4'): FakeObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace, labels: { 'kubernetes.io/service-name': service, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' } },
    addressType,
    endpoints: endpoints.map((e) => {
      const conditions: Record<string, boolean | null> = {};
      if (e.ready !== undefined) conditions['ready'] = e.ready;
      if (e.serving !== undefined) conditions['serving'] = e.serving;
      if (e.terminating !== undefined) conditions['terminating'] = e.terminating;
      return { addresses: [e.ip], conditions, ...(e.pod === undefined ? {} : { targetRef: { kind: 'Pod', namespace, name: e.pod } }) };
    }),
    ports: ports.map((p) => ({ name: p.name ?? '', port: p.port, protocol: p.protocol ?? 'TCP' })),
  };
}

export const ready = (ip: string, pod?: string): EndpointSpec => ({ ip, ready: true, serving: true, terminating: false, ...(pod === undefined ? {} : { pod }) });
export const terminating = (ip: string, pod?: string): EndpointSpec => ({ ip, ready: false, serving: true, terminating: true, ...(pod === undefined ? {} : { pod }) });
export const notReady = (ip: string): EndpointSpec => ({ ip, ready: false, serving: false, terminating: false });
