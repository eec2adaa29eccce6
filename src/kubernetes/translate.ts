/**
 * Cluster resources → usher routes, pools and certificates. Pure: the
 * controller (routes.ts) hands it what its reflectors hold and applies what
 * comes back; the tables of cases run against it through real usher.
 *
 * Every route is an ordinary usher route (first match wins), so precedence
 * is decided here, by the order routes are emitted:
 *
 *  - **Ingress** (networking.k8s.io/v1): exact hosts, then `*.` hosts (one
 *    label only, as the Ingress API says), then rules without a host; within,
 *    the longest path first, Exact before Prefix at equal length (the Ingress
 *    API's rule); ties by the Ingress's age, then namespace/name. `Prefix` is
 *    element-wise (`/foo` matches `/foo` and `/foo/bar`, not `/foobar`; a
 *    trailing `/` is ignored); `ImplementationSpecific` is treated as
 *    `Prefix`. The oldest Ingress's `defaultBackend` is the last route.
 *  - **HTTPRoute** (gateway.networking.k8s.io/v1), in the spec's order:
 *    hostname (exact, longest first; then wildcard, longest first; then none),
 *    then Exact path, longest prefix, **method before headers** (Cilium
 *    CVE-2024-42487 put headers first, so a header-only rule shadowed a
 *    method rule), most header matches, most query matches, then the oldest
 *    route, then namespace/name, then rule and match order.
 */
import { createHash } from 'node:crypto';
import type { CertificateConfig, FilterConfig, KubernetesConfig, KubernetesDiscoveryConfig, MatchConfig, RedirectConfig, RouteConfig } from '../config/types.ts';
import { loadCertificate } from '../tls/certificate-store.ts';
import type { Condition, Gateway, GatewayClass, GatewayListener, HTTPBackendRef, HTTPHeaderFilter, HTTPRoute, HTTPRouteFilter, HTTPRouteMatch, Ingress, IngressBackend, IngressClass, ParentReference, ReferenceGrant, Secret, Service } from './route-types.ts';
import type { KubeObject } from './types.ts';

export /** `kubernetes.io/ingress.class`: the class before `spec.ingressClassName` (deprecated, still common). */
const LEGACY_CLASS_ANNOTATION = 'kubernetes.io/ingress.class';
const DEFAULT_CLASS_ANNOTATION = 'ingressclass.kubernetes.io/is-default-class';
export const GATEWAY_GROUP = 'gateway.networking.k8s.io';

/** What the reflectors hold. */
export interface ClusterState {
  readonly ingressClasses: readonly IngressClass[];
  readonly ingresses: readonly Ingress[];
  readonly services: readonly Service[];
  readonly secrets: readonly Secret[];
  readonly gatewayClasses: readonly GatewayClass[];
  readonly gateways: readonly Gateway[];
  readonly httpRoutes: readonly HTTPRoute[];
  readonly referenceGrants: readonly ReferenceGrant[];
}

/** Conditions of one HTTPRoute parent (a Gateway of usher's). */
export interface ParentConditions {
  readonly parentRef: ParentReference;
  readonly accepted: { readonly ok: boolean; readonly reason: string; readonly message: string };
  readonly resolvedRefs: { readonly ok: boolean; readonly reason: string; readonly message: string };
}

/** What usher serves from the cluster, and the status it writes back. */
export interface ClusterRoutes {
  /** Routes by usher listener, in precedence order: they go after the file's routes. */
  readonly routes: ReadonlyMap<string, readonly RouteConfig[]>;
  /** Pools by name (`k8s/<namespace>/<service>/<port>`): a Service port's EndpointSlices. */
  readonly pools: ReadonlyMap<string, KubernetesDiscoveryConfig>;
  /** Certificates from Secrets, by https listener. */
  readonly certificates: ReadonlyMap<string, readonly CertificateConfig[]>;
  /** Ingresses served (`namespace/name`). */
  readonly ingresses: readonly string[];
  /** GatewayClasses of usher's controller (names). */
  readonly gatewayClasses: readonly string[];
  /** Gateways of usher's classes (`namespace/name`) → routes attached per listener name. */
  readonly gateways: ReadonlyMap<string, ReadonlyMap<string, number>>;
  /** HTTPRoutes with a parent of usher's (`namespace/name`) → per-parent conditions. */
  readonly httpRoutes: ReadonlyMap<string, readonly ParentConditions[]>;
  /** Problems worth a log line (a Secret that is not a certificate, a filter not supported). */
  readonly warnings: readonly string[];
}

const nsOf = (o: KubeObject): string => o.metadata?.namespace ?? '';
const nameOf = (o: KubeObject): string => o.metadata?.name ?? '';
const keyOf = (o: KubeObject): string => `${nsOf(o)}/${nameOf(o)}`;

/** Oldest first, then namespace/name: the Gateway API's tie-break, used for Ingresses too. */
function byAge(a: KubeObject, b: KubeObject): number {
  const ta = a.metadata?.creationTimestamp ?? '';
  const tb = b.metadata?.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  const ka = keyOf(a);
  const kb = keyOf(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** `k8s/<namespace>/<service>/<port>`: never a file pool's name (those cannot contain `/`). */
export function poolName(namespace: string, service: string, port: string | number): string {
  return `k8s/${namespace}/${service}/${port === '' ? '-' : port}`;
}

/**
 * The EndpointSlice port of a Service port: its name (what slices carry; ''
 * for a Service's single unnamed port). A port given by name is used as is;
 * by number, the Service says which name it has. Undefined: no such Service
 * or port.
 */
export function endpointPort(services: ReadonlyMap<string, Service>, namespace: string, service: string, port: { number?: number | undefined; name?: string | undefined }): string | undefined {
  const found = services.get(`${namespace}/${service}`);
  if (found === undefined) return undefined;
  const ports = found.spec?.ports ?? [];
  if (port.name !== undefined && port.name !== '') return ports.some((p) => p.name === port.name) ? port.name : undefined;
  const byNumber = ports.find((p) => p.port === port.number);
  return byNumber === undefined ? undefined : (byNumber.name ?? '');
}

/** `/foo/` and `/foo` are the same element-wise prefix; `/` stays. */
function normalisePrefix(path: string | undefined): string {
  let p = path === undefined || path === '' ? '/' : path;
  while (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  return p;
}

function hostRank(host: string | undefined): [number, number] {
  if (host === undefined || host === '') return [2, 0];
  return host.startsWith('*.') ? [1, -host.length] : [0, -host.length];
}

function compareTuples(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** A literal match value in usher's syntax (`~` starts a regex, so a literal `~…` becomes an escaped regex). */
function literal(value: string): string {
  return value.startsWith('~') ? `~${value.replace(/[.*+?^${}()|[\]\\~]/g, '\\$&')}` : value;
}

export function translate(state: ClusterState, config: KubernetesConfig | undefined): ClusterRoutes {
  const routes = new Map<string, RouteConfig[]>();
  const pools = new Map<string, KubernetesDiscoveryConfig>();
  const certificates = new Map<string, CertificateConfig[]>();
  const warnings: string[] = [];
  const services = new Map(state.services.map((s) => [keyOf(s), s]));
  const push = (listener: string, list: RouteConfig[]): void => {
    if (list.length === 0) return;
    routes.set(listener, [...(routes.get(listener) ?? []), ...list]);
  };
  const usePool = (namespace: string, service: string, port: string): string => {
    const name = poolName(namespace, service, port);
    pools.set(name, { namespace, service, port });
    return name;
  };

  // ---- Ingress ---------------------------------------------------------------------------------
  const ingressConfig = config?.ingress;
  const served: string[] = [];
  if (ingressConfig !== undefined) {
    const ours = state.ingressClasses.filter((c) => c.spec?.controller === ingressConfig.controller);
    const names = new Set(ours.map(nameOf));
    const hasDefault = ours.some((c) => c.metadata?.annotations?.[DEFAULT_CLASS_ANNOTATION] === 'true');
    const ingresses = state.ingresses
      .filter((i) => {
        const cls = i.spec?.ingressClassName;
        if (cls !== undefined && cls !== '') return names.has(cls);
        // The deprecated annotation still names a class in older manifests: another controller's is not ours.
        const annotated = i.metadata?.annotations?.[LEGACY_CLASS_ANNOTATION];
        return annotated !== undefined && annotated !== '' ? names.has(annotated) : hasDefault;
      })
      .sort(byAge);
    interface Entry { readonly key: readonly number[]; readonly route: RouteConfig }
    const entries: Entry[] = [];
    let defaultRoute: RouteConfig | undefined;
    const backendOf = (ingress: Ingress, backend: IngressBackend | undefined): Pick<RouteConfig, 'pool' | 'split'> => {
      const service = backend?.service;
      if (service === undefined) return { split: [{ pool: undefined, weight: 1 }] };
      const port = endpointPort(services, nsOf(ingress), service.name, { number: service.port?.number, name: service.port?.name });
      if (port === undefined) {
        warnings.push(`Ingress ${keyOf(ingress)}: Service ${nsOf(ingress)}/${service.name} or its port ${service.port?.name ?? service.port?.number ?? '(none)'} does not exist: its requests are answered 500`);
        return { split: [{ pool: undefined, weight: 1 }] };
      }
      return { pool: usePool(nsOf(ingress), service.name, port) };
    };
    ingresses.forEach((ingress, order) => {
      served.push(keyOf(ingress));
      (ingress.spec?.rules ?? []).forEach((rule, r) => {
        const host = rule.host === '' ? undefined : rule.host;
        (rule.http?.paths ?? []).forEach((path, p) => {
          const exact = path.pathType === 'Exact';
          const value = exact ? (path.path ?? '/') : normalisePrefix(path.path);
          const match: MatchConfig = {
            ...(host === undefined ? {} : { host, ...(host.startsWith('*.') ? { hostOneLabel: true } : {}) }),
            ...(exact ? { path: value } : { pathPrefix: value }),
          };
          const [rank, length] = hostRank(host);
          entries.push({ key: [rank, length, -value.length, exact ? 0 : 1, order, r, p], route: { name: `ingress/${keyOf(ingress)}/${r}/${p}`, match, ...backendOf(ingress, path.backend) } });
        });
      });
      if (defaultRoute === undefined && ingress.spec?.defaultBackend !== undefined) {
        defaultRoute = { name: `ingress/${keyOf(ingress)}/default`, ...backendOf(ingress, ingress.spec.defaultBackend) };
      }
      // TLS: the Secrets' certificates on the https listener (SNI picks them by their names).
      if (ingressConfig.tlsListener !== undefined) {
        for (const tls of ingress.spec?.tls ?? []) {
          if (tls.secretName === undefined) continue;
          const secret = state.secrets.find((s) => nsOf(s) === nsOf(ingress) && nameOf(s) === tls.secretName);
          const certificate = secret === undefined ? undefined : secretCertificate(secret, warnings);
          if (certificate === undefined) {
            if (secret === undefined) warnings.push(`Ingress ${keyOf(ingress)}: TLS Secret ${nsOf(ingress)}/${tls.secretName} does not exist`);
            continue;
          }
          const list = certificates.get(ingressConfig.tlsListener) ?? [];
          if (!list.some((c) => c.certFile === certificate.certFile)) list.push(certificate);
          certificates.set(ingressConfig.tlsListener, list);
        }
      }
    });
    const ordered = entries.sort((a, b) => compareTuples(a.key, b.key)).map((e) => e.route);
    if (defaultRoute !== undefined) ordered.push(defaultRoute);
    push(ingressConfig.listener, ordered);
    if (ingressConfig.tlsListener !== undefined && ingressConfig.tlsListener !== ingressConfig.listener) push(ingressConfig.tlsListener, ordered);
  }

  // ---- Gateway API -----------------------------------------------------------------------------
  const gatewayConfig = config?.gateway;
  const gatewayClasses: string[] = [];
  const gateways = new Map<string, Map<string, number>>();
  const httpRoutes = new Map<string, ParentConditions[]>();
  if (gatewayConfig !== undefined) {
    for (const c of state.gatewayClasses) if (c.spec?.controllerName === gatewayConfig.controllerName) gatewayClasses.push(nameOf(c));
    const classes = new Set(gatewayClasses);
    const ourGateways = new Map<string, Gateway>();
    for (const g of state.gateways) {
      if (!classes.has(g.spec?.gatewayClassName ?? '')) continue;
      ourGateways.set(keyOf(g), g);
      gateways.set(keyOf(g), new Map((g.spec?.listeners ?? []).map((l) => [l.name, 0])));
    }
    interface Entry { readonly key: readonly number[]; readonly route: RouteConfig }
    const entries: Entry[] = [];
    const sorted = [...state.httpRoutes].sort(byAge);
    sorted.forEach((route, order) => {
      const parents: ParentConditions[] = [];
      const hostnames = new Set<string>();
      let anyHost = false;
      for (const parentRef of route.spec?.parentRefs ?? []) {
        if ((parentRef.group ?? GATEWAY_GROUP) !== GATEWAY_GROUP || (parentRef.kind ?? 'Gateway') !== 'Gateway') continue;
        const gateway = ourGateways.get(`${parentRef.namespace ?? nsOf(route)}/${parentRef.name}`);
        if (gateway === undefined) continue; // not usher's: another controller writes that parent's status
        const attached = attach(route, parentRef, gateway);
        if (attached.listeners.length === 0) {
          parents.push({ parentRef, accepted: { ok: false, reason: attached.reason, message: attached.message }, resolvedRefs: { ok: true, reason: 'ResolvedRefs', message: '' } });
          continue;
        }
        const counts = gateways.get(keyOf(gateway))!;
        for (const l of attached.listeners) counts.set(l.name, (counts.get(l.name) ?? 0) + 1);
        if (attached.hostnames === undefined) anyHost = true;
        else for (const h of attached.hostnames) hostnames.add(h);
        parents.push({ parentRef, accepted: { ok: true, reason: 'Accepted', message: '' }, resolvedRefs: { ok: true, reason: 'ResolvedRefs', message: '' } });
      }
      if (parents.length === 0) return;
      const accepted = parents.some((p) => p.accepted.ok);
      // Rules → usher routes (only when some parent accepted the route).
      let refProblem: { reason: string; message: string } | undefined;
      let unsupported: string | undefined;
      const hosts: (string | undefined)[] = anyHost ? [undefined] : [...hostnames].sort();
      (route.spec?.rules ?? []).forEach((rule, r) => {
        const translated = ruleFilters(rule.filters ?? []);
        // A filter usher cannot apply (an auth ExtensionRef, a redirect with a path...) is never skipped: the
        // rule answers 500 instead of serving without it (the Gateway API's rule for unsupported filters).
        let ruleUnsupported = translated.unsupported;
        const split: { pool: string | undefined; weight: number }[] = [];
        for (const ref of rule.backendRefs ?? []) {
          const resolved = resolveBackend(route, ref, services, state.referenceGrants);
          if ('problem' in resolved) {
            refProblem ??= resolved.problem;
            split.push({ pool: undefined, weight: ref.weight ?? 1 });
          } else split.push({ pool: usePool(resolved.namespace, ref.name, resolved.port), weight: ref.weight ?? 1 });
          if ((ref.filters ?? []).length > 0) ruleUnsupported = 'filters on a backendRef';
        }
        if (ruleUnsupported !== undefined) unsupported = ruleUnsupported;
        const live = split.filter((s) => s.weight > 0);
        const target: Pick<RouteConfig, 'pool' | 'split' | 'redirect'> = ruleUnsupported !== undefined
          ? { split: [{ pool: undefined, weight: 1 }] }
          : translated.redirect !== undefined
          ? { redirect: translated.redirect }
          : live.length === 1 && live[0]!.pool !== undefined
            ? { pool: live[0]!.pool }
            : live.length === 0
              ? { split: [{ pool: undefined, weight: 1 }] } // no backend (or all weights 0): 500
              : { pool: live.find((s) => s.pool !== undefined)?.pool, split: live };
        const matches: readonly HTTPRouteMatch[] = rule.matches === undefined || rule.matches.length === 0 ? [{ path: { type: 'PathPrefix', value: '/' } }] : rule.matches;
        matches.forEach((m, i) => {
          const pathType = m.path?.type ?? 'PathPrefix';
          const pathValue = m.path?.value ?? '/';
          // Regular expressions come from any tenant and would run in V8's backtracking engine on every request
          // (and RE2 syntax is not JavaScript's): not accepted from the cluster; the match is left out.
          if (pathType === 'RegularExpression' || (m.headers ?? []).some((h) => h.type === 'RegularExpression') || (m.queryParams ?? []).some((q) => q.type === 'RegularExpression')) {
            unsupported = 'RegularExpression matches';
            return;
          }
          const match: { -readonly [K in keyof MatchConfig]: MatchConfig[K] } = {};
          if (pathType === 'Exact') match.path = pathValue;
          else if (normalisePrefix(pathValue) !== '/') match.pathPrefix = normalisePrefix(pathValue);
          if (m.method !== undefined) match.methods = [m.method];
          if ((m.headers ?? []).length > 0) match.headers = Object.fromEntries(m.headers!.map((h) => [h.name.toLowerCase(), literal(h.value)]));
          if ((m.queryParams ?? []).length > 0) match.query = Object.fromEntries(m.queryParams!.map((q) => [q.name, literal(q.value)]));
          const filters = translated.filters.map((f) => (f.kind === 'rewrite' && f.prefix !== undefined ? { ...f, prefix: { from: pathType === 'PathPrefix' ? normalisePrefix(pathValue) : '/', to: f.prefix.to } } : f));
          const pathKey = pathType === 'Exact' ? [0, -pathValue.length] : pathType === 'PathPrefix' ? [1, -normalisePrefix(pathValue).length] : [2, 0];
          hosts.forEach((host, h) => {
            const full: MatchConfig = { ...(host === undefined ? {} : { host }), ...match };
            const [rank, length] = hostRank(host);
            const key = [rank, length, ...pathKey, m.method === undefined ? 1 : 0, -(m.headers?.length ?? 0), -(m.queryParams?.length ?? 0), order, r, i, h];
            if (!accepted) return;
            entries.push({ key, route: { name: `httproute/${keyOf(route)}/${r}/${i}/${h}`, match: full, ...target, ...(filters.length === 0 ? {} : { filters }) } });
          });
        });
      });
      const conditions = parents.map((p): ParentConditions => {
        if (!p.accepted.ok) return p;
        return {
          ...p,
          ...(unsupported === undefined ? {} : { accepted: { ok: false, reason: 'UnsupportedValue', message: `usher does not support ${unsupported}` } }),
          ...(refProblem === undefined ? {} : { resolvedRefs: { ok: false, ...refProblem } }),
        };
      });
      httpRoutes.set(keyOf(route), conditions);
    });
    push(gatewayConfig.listener, entries.sort((a, b) => compareTuples(a.key, b.key)).map((e) => e.route));
  }

  return { routes, pools, certificates, ingresses: served, gatewayClasses, gateways, httpRoutes, warnings };
}

/** A `kubernetes.io/tls` Secret as a certificate (checked: a broken one is left out with a warning, never fails the whole update). */
export function secretCertificate(secret: Secret, warnings: string[]): CertificateConfig | undefined {
  const where = `Secret ${keyOf(secret)}`;
  if (secret.type !== 'kubernetes.io/tls') {
    warnings.push(`${where} is not of type kubernetes.io/tls`);
    return undefined;
  }
  const cert = Buffer.from(secret.data?.['tls.crt'] ?? '', 'base64').toString('utf8');
  const key = Buffer.from(secret.data?.['tls.key'] ?? '', 'base64').toString('utf8');
  // The version in the label makes a rotated Secret a different certificate entry.
  const label = `secret:${keyOf(secret)}@${createHash('sha256').update(cert).update(key).digest('hex').slice(0, 12)}`;
  try {
    loadCertificate(label, label, 'TLSv1.2', { cert, key });
  } catch (err) {
    warnings.push(`${where}: ${(err as Error).message}`);
    return undefined;
  }
  return { certFile: label, keyFile: label, pem: { cert, key } };
}

interface Attachment {
  readonly listeners: readonly GatewayListener[];
  /** Hostnames the route serves on those listeners; undefined: any. */
  readonly hostnames: readonly string[] | undefined;
  readonly reason: string;
  readonly message: string;
}

/** Which HTTP listeners of `gateway` take `route` (sectionName, port, allowedRoutes, hostnames), and with which hostnames. */
function attach(route: HTTPRoute, ref: ParentReference, gateway: Gateway): Attachment {
  const candidates = (gateway.spec?.listeners ?? []).filter((l) => (ref.sectionName === undefined || l.name === ref.sectionName) && (ref.port === undefined || l.port === ref.port));
  if (candidates.length === 0) return { listeners: [], hostnames: [], reason: 'NoMatchingParent', message: 'no listener of the Gateway has that sectionName or port' };
  const allowed = candidates.filter((l) => {
    if (l.protocol !== 'HTTP') return false;
    const from = l.allowedRoutes?.namespaces?.from ?? 'Same';
    if (from === 'Same' && nsOf(route) !== nsOf(gateway)) return false;
    if (from !== 'Same' && from !== 'All') return false; // Selector: not supported
    const kinds = l.allowedRoutes?.kinds;
    return kinds === undefined || kinds.length === 0 || kinds.some((k) => k.kind === 'HTTPRoute' && (k.group ?? GATEWAY_GROUP) === GATEWAY_GROUP);
  });
  if (allowed.length === 0) return { listeners: [], hostnames: [], reason: 'NotAllowedByListeners', message: 'no HTTP listener of the Gateway allows routes of this kind from this namespace' };
  const routeHosts = route.spec?.hostnames ?? [];
  const taking: GatewayListener[] = [];
  const hosts = new Set<string>();
  let any = false;
  for (const listener of allowed) {
    const lh = listener.hostname;
    if (lh === undefined || lh === '') {
      taking.push(listener);
      if (routeHosts.length === 0) any = true;
      else for (const h of routeHosts) hosts.add(h);
      continue;
    }
    if (routeHosts.length === 0) {
      taking.push(listener);
      hosts.add(lh);
      continue;
    }
    const common = routeHosts.map((h) => intersect(h, lh)).filter((h): h is string => h !== undefined);
    if (common.length === 0) continue;
    taking.push(listener);
    for (const h of common) hosts.add(h);
  }
  if (taking.length === 0) return { listeners: [], hostnames: [], reason: 'NoMatchingListenerHostname', message: 'no hostname of the route matches a listener\'s hostname' };
  return { listeners: taking, hostnames: any ? undefined : [...hosts], reason: 'Accepted', message: '' };
}

/** The more specific of two hostnames when one covers the other (Gateway API wildcards cover one or more labels). */
function intersect(a: string, b: string): string | undefined {
  if (a === b) return a;
  const covers = (wild: string, name: string): boolean => wild.startsWith('*.') && name.endsWith(wild.slice(1)) && name.length > wild.length - 1;
  if (covers(b, a)) return a;
  if (covers(a, b)) return b;
  return undefined;
}

/** A backendRef as a namespace and endpoint port, or why it cannot be resolved (ResolvedRefs False). */
function resolveBackend(route: HTTPRoute, ref: HTTPBackendRef, services: ReadonlyMap<string, Service>, grants: readonly ReferenceGrant[]): { namespace: string; port: string } | { problem: { reason: string; message: string } } {
  if ((ref.group ?? '') !== '' || (ref.kind ?? 'Service') !== 'Service') return { problem: { reason: 'InvalidKind', message: `backendRef ${ref.name}: only core Services are supported` } };
  const namespace = ref.namespace ?? nsOf(route);
  if (namespace !== nsOf(route) && !referenceGranted(grants, nsOf(route), namespace, ref.name)) {
    return { problem: { reason: 'RefNotPermitted', message: `backendRef ${namespace}/${ref.name}: no ReferenceGrant in namespace ${namespace} allows HTTPRoutes from ${nsOf(route)}` } };
  }
  if (ref.port === undefined) return { problem: { reason: 'UnsupportedValue', message: `backendRef ${namespace}/${ref.name}: a Service backendRef needs a port` } };
  const port = endpointPort(services, namespace, ref.name, { number: ref.port });
  if (port === undefined) return { problem: { reason: 'BackendNotFound', message: `backendRef ${namespace}/${ref.name} port ${ref.port}: no such Service or port` } };
  return { namespace, port };
}

/** A ReferenceGrant in `to` lets HTTPRoutes of namespace `from` reference Service `name`. */
export function referenceGranted(grants: readonly ReferenceGrant[], from: string, to: string, name: string): boolean {
  return grants.some(
    (g) =>
      nsOf(g) === to &&
      (g.spec?.from ?? []).some((f) => (f.group ?? '') === GATEWAY_GROUP && f.kind === 'HTTPRoute' && f.namespace === from) &&
      (g.spec?.to ?? []).some((t) => (t.group ?? '') === '' && t.kind === 'Service' && (t.name === undefined || t.name === '' || t.name === name)),
  );
}

function headerEdits(filter: HTTPHeaderFilter | undefined): { set?: Record<string, string>; add?: Record<string, string>; remove?: string[] } {
  if (filter === undefined) return {};
  return {
    ...((filter.set ?? []).length > 0 ? { set: Object.fromEntries(filter.set!.map((h) => [h.name, h.value])) } : {}),
    ...((filter.add ?? []).length > 0 ? { add: Object.fromEntries(filter.add!.map((h) => [h.name, h.value])) } : {}),
    ...((filter.remove ?? []).length > 0 ? { remove: [...filter.remove!] } : {}),
  };
}

/** A rule's filters as usher's (`headers`, `rewrite`, the route's `redirect`), or the first one usher cannot do. */
function ruleFilters(filters: readonly HTTPRouteFilter[]): { filters: FilterConfig[]; redirect?: RedirectConfig; unsupported?: string } {
  const out: FilterConfig[] = [];
  let redirect: RedirectConfig | undefined;
  let unsupported: string | undefined;
  for (const f of filters) {
    switch (f.type) {
      case 'RequestHeaderModifier':
        out.push({ kind: 'headers', request: headerEdits(f.requestHeaderModifier) });
        break;
      case 'ResponseHeaderModifier':
        out.push({ kind: 'headers', response: headerEdits(f.responseHeaderModifier) });
        break;
      case 'RequestRedirect': {
        const r = f.requestRedirect ?? {};
        if (r.path !== undefined) unsupported = 'RequestRedirect with a path';
        const code = r.statusCode === 301 ? 301 : 302;
        redirect = { code, ...(r.scheme === 'http' || r.scheme === 'https' ? { scheme: r.scheme } : {}), ...(r.hostname === undefined ? {} : { host: r.hostname }), ...(r.port === undefined ? {} : { port: r.port }) };
        break;
      }
      case 'URLRewrite': {
        const u = f.urlRewrite ?? {};
        const path = u.path;
        out.push({
          kind: 'rewrite',
          ...(u.hostname === undefined ? {} : { host: u.hostname }),
          ...(path?.type === 'ReplaceFullPath' ? { path: path.replaceFullPath ?? '/' } : {}),
          // `from` is the rule match's prefix, filled in per match.
          ...(path?.type === 'ReplacePrefixMatch' ? { prefix: { from: '/', to: path.replacePrefixMatch ?? '/' } } : {}),
        });
        break;
      }
      default:
        unsupported = `the ${f.type} filter`;
    }
  }
  return { filters: out, ...(redirect === undefined ? {} : { redirect }), ...(unsupported === undefined ? {} : { unsupported }) };
}

/** A condition, keeping the previous transition time when its status did not change. */
export function condition(previous: readonly Condition[] | undefined, type: string, ok: boolean, reason: string, message: string, generation: number | undefined, now: string): Condition {
  const status = ok ? 'True' : 'False';
  const old = previous?.find((c) => c.type === type);
  return { type, status, reason, message, ...(generation === undefined ? {} : { observedGeneration: generation }), lastTransitionTime: old !== undefined && old.status === status ? old.lastTransitionTime : now };
}
