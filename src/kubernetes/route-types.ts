/**
 * The parts of Ingress, IngressClass, Service, Secret and the Gateway API
 * kinds (GatewayClass, Gateway, HTTPRoute, ReferenceGrant) usher reads,
 * written by hand from the API references (networking.k8s.io/v1,
 * gateway.networking.k8s.io/v1 and v1beta1): only the fields used.
 */
import type { KubeObject } from './types.ts';

export interface Condition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration?: number;
  readonly lastTransitionTime: string;
}

// ---- core/v1 ----------------------------------------------------------------------------------

export interface ServicePort {
  readonly name?: string;
  readonly port: number;
  readonly targetPort?: number | string;
  readonly protocol?: string;
}

export interface Service extends KubeObject {
  readonly spec?: { readonly ports?: readonly ServicePort[] };
}

export interface Secret extends KubeObject {
  readonly type?: string;
  /** base64 values. */
  readonly data?: Readonly<Record<string, string>>;
}

// ---- networking.k8s.io/v1 ---------------------------------------------------------------------

export interface IngressClass extends KubeObject {
  readonly spec?: { readonly controller?: string };
}

export interface IngressServiceBackend {
  readonly name: string;
  readonly port?: { readonly number?: number; readonly name?: string };
}

export interface IngressBackend {
  readonly service?: IngressServiceBackend;
  readonly resource?: unknown;
}

export interface IngressPath {
  readonly path?: string;
  readonly pathType?: 'Exact' | 'Prefix' | 'ImplementationSpecific' | string;
  readonly backend: IngressBackend;
}

export interface IngressRule {
  readonly host?: string;
  readonly http?: { readonly paths?: readonly IngressPath[] };
}

export interface Ingress extends KubeObject {
  readonly spec?: {
    readonly ingressClassName?: string;
    readonly defaultBackend?: IngressBackend;
    readonly rules?: readonly IngressRule[];
    readonly tls?: readonly { readonly hosts?: readonly string[]; readonly secretName?: string }[];
  };
  readonly status?: { readonly loadBalancer?: { readonly ingress?: readonly { readonly ip?: string; readonly hostname?: string }[] } };
}

// ---- gateway.networking.k8s.io ----------------------------------------------------------------

export interface GatewayClass extends KubeObject {
  readonly spec?: { readonly controllerName?: string };
  readonly status?: { readonly conditions?: readonly Condition[] };
}

export interface GatewayListener {
  readonly name: string;
  readonly hostname?: string;
  readonly port: number;
  readonly protocol: string;
  readonly allowedRoutes?: {
    readonly namespaces?: { readonly from?: 'Same' | 'All' | 'Selector' | string };
    readonly kinds?: readonly { readonly group?: string; readonly kind: string }[];
  };
}

export interface Gateway extends KubeObject {
  readonly spec?: { readonly gatewayClassName?: string; readonly listeners?: readonly GatewayListener[] };
  readonly status?: {
    readonly addresses?: readonly { readonly type?: string; readonly value: string }[];
    readonly conditions?: readonly Condition[];
    readonly listeners?: readonly { readonly name: string; readonly attachedRoutes: number; readonly supportedKinds: readonly { readonly group?: string; readonly kind: string }[]; readonly conditions: readonly Condition[] }[];
  };
}

export interface ParentReference {
  readonly group?: string;
  readonly kind?: string;
  readonly namespace?: string;
  readonly name: string;
  readonly sectionName?: string;
  readonly port?: number;
}

export interface HTTPHeaderMatch {
  readonly type?: 'Exact' | 'RegularExpression';
  readonly name: string;
  readonly value: string;
}

export interface HTTPRouteMatch {
  readonly path?: { readonly type?: 'Exact' | 'PathPrefix' | 'RegularExpression'; readonly value?: string };
  readonly headers?: readonly HTTPHeaderMatch[];
  readonly queryParams?: readonly HTTPHeaderMatch[];
  readonly method?: string;
}

export interface HTTPHeaderFilter {
  readonly set?: readonly { readonly name: string; readonly value: string }[];
  readonly add?: readonly { readonly name: string; readonly value: string }[];
  readonly remove?: readonly string[];
}

export interface HTTPPathModifier {
  readonly type: 'ReplaceFullPath' | 'ReplacePrefixMatch';
  readonly replaceFullPath?: string;
  readonly replacePrefixMatch?: string;
}

export interface HTTPRouteFilter {
  readonly type: string;
  readonly requestHeaderModifier?: HTTPHeaderFilter;
  readonly responseHeaderModifier?: HTTPHeaderFilter;
  readonly requestRedirect?: { readonly scheme?: string; readonly hostname?: string; readonly path?: HTTPPathModifier; readonly port?: number; readonly statusCode?: number };
  readonly urlRewrite?: { readonly hostname?: string; readonly path?: HTTPPathModifier };
}

export interface HTTPBackendRef {
  readonly group?: string;
  readonly kind?: string;
  readonly name: string;
  readonly namespace?: string;
  readonly port?: number;
  readonly weight?: number;
  readonly filters?: readonly HTTPRouteFilter[];
}

export interface HTTPRouteRule {
  readonly matches?: readonly HTTPRouteMatch[];
  readonly filters?: readonly HTTPRouteFilter[];
  readonly backendRefs?: readonly HTTPBackendRef[];
}

export interface RouteParentStatus {
  readonly parentRef: ParentReference;
  readonly controllerName: string;
  readonly conditions: readonly Condition[];
}

export interface HTTPRoute extends KubeObject {
  readonly spec?: { readonly parentRefs?: readonly ParentReference[]; readonly hostnames?: readonly string[]; readonly rules?: readonly HTTPRouteRule[] };
  readonly status?: { readonly parents?: readonly RouteParentStatus[] };
}

export interface ReferenceGrant extends KubeObject {
  readonly spec?: {
    readonly from?: readonly { readonly group?: string; readonly kind?: string; readonly namespace?: string }[];
    readonly to?: readonly { readonly group?: string; readonly kind?: string; readonly name?: string }[];
  };
}
