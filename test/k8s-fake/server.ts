/**
 * A fake Kubernetes API server for tests: the real wire protocol, in process,
 * on loopback. No cluster, apiserver or Docker can run here, so usher's
 * client is tested against this, and this is checked with the real kubectl
 * (test/integration/kubernetes-fake-kubectl.test.ts), so it cannot drift from
 * what real clients expect.
 *
 * What it does, as https://kubernetes.io/docs/reference/using-api/api-concepts/
 * describes:
 *  - HTTPS (a self-signed certificate) and bearer tokens (401 without a known
 *    one, 403 for what {@link FakeApiServer.forbid} denies, with the real
 *    messages);
 *  - discovery: `/api`, `/apis`, `/api/v1`, `/apis/{group}/{version}`,
 *    `/version` (the legacy documents: kubectl falls back to them when the
 *    answer is not aggregated discovery);
 *  - the kinds of kinds.ts: list (`labelSelector`, `fieldSelector`, `limit` and
 *    `continue` over a consistent snapshot, `resourceVersion` with
 *    `resourceVersionMatch` Exact and NotOlderThan), get, create, update,
 *    delete, merge and JSON patch, and the `/status` subresource, with 409 on
 *    a stale `metadata.resourceVersion`;
 *  - one global revision counter as resourceVersion, a bounded history of
 *    changes, and watch: chunked JSON lines ADDED / MODIFIED / DELETED /
 *    BOOKMARK / ERROR, from a version (410 Gone as an ERROR event when it was
 *    compacted), synthetic ADDED events from "" and "0", `sendInitialEvents`
 *    with the `k8s.io/initial-events-end` bookmark, objects entering and
 *    leaving a selector as ADDED and DELETED, ending at `timeoutSeconds`;
 *  - faults on demand: cut or stall every watch, compact the history, restart
 *    (connections dropped, history lost), go down and come back, fail the
 *    next requests with a status; and counts of every request by verb.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { generateCertificate, type TestCertificate } from '../helpers/tls.ts';
import { apiVersionOf, FAKE_KINDS, kindByApiVersion, kindByPath, qualified, type FakeKind, type FakeObject } from './kinds.ts';
import { parseFieldSelector, parseLabelSelector, SelectorError, type Matcher } from './selectors.ts';

export type FakeVerb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';

/** One rule of a (Cluster)Role, as in rbac.authorization.k8s.io/v1 (no wildcards). */
export interface RbacRule {
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly verbs: readonly string[];
}

/** One request as the fake saw it. */
export interface FakeRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  /** Undefined for discovery and unknown paths. */
  readonly verb: FakeVerb | undefined;
  readonly resource: string | undefined;
  readonly subresource: string | undefined;
  readonly namespace: string | undefined;
  readonly token: string | undefined;
  /** What was answered (200 for a watch that started). */
  status: number;
  /** The code of the ERROR event a watch got (410 for a compacted version), if any. */
  watchError?: number;
  /** performance.now() when it arrived. */
  readonly at: number;
}

interface HistoryEntry {
  readonly rv: number;
  readonly kind: FakeKind;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: FakeObject;
  /** The object before this change (MODIFIED, DELETED). */
  readonly previous: FakeObject | undefined;
}

interface Watcher {
  readonly kind: FakeKind;
  readonly namespace: string | undefined;
  readonly labels: Matcher;
  readonly fields: Matcher;
  readonly bookmarks: boolean;
  readonly res: ServerResponse;
  readonly timer: NodeJS.Timeout;
  stalled: boolean;
}

export interface FakeApiServerOptions {
  /** Token → user name. Default `{ [token]: 'system:serviceaccount:usher:usher' }` with a random token. */
  readonly tokens?: Readonly<Record<string, string>>;
  /** Changes kept for watches to resume from; older versions get 410. Default 1000. */
  readonly historyLimit?: number;
  /** BOOKMARK events to watches that asked, every this long. Default 1000 ms (a real server: about a minute). */
  readonly bookmarkIntervalMs?: number;
  /** Watches without `timeoutSeconds` end after this long. Default 1800 s (kube-apiserver's min-request-timeout). */
  readonly defaultWatchTimeoutSeconds?: number;
  /** Largest page a list returns whatever `limit` asks. Default unlimited. */
  readonly maxPageSize?: number;
}

export class FakeApiServer {
  readonly certificate: TestCertificate;
  readonly requests: FakeRequest[] = [];
  readonly tokens: Map<string, string>;
  /** The first token: what tests usually give the client. */
  readonly token: string;
  /** Global revision: every change takes the next one. */
  revision = 1;
  /** Watches may resume from this version or later; older ones get 410 Gone. */
  compactedRevision = 1;
  historyLimit: number;
  bookmarkIntervalMs: number;
  readonly #options: FakeApiServerOptions;
  readonly #objects = new Map<FakeKind, Map<string, FakeObject>>();
  #history: HistoryEntry[] = [];
  readonly #watchers = new Set<Watcher>();
  readonly #sockets = new Set<Socket>();
  readonly #denied = new Set<string>();
  /** RBAC rules that allow requests (everything else is 403); undefined: everything is allowed but what {@link forbid} denies. */
  #rules: readonly RbacRule[] | undefined;
  #failures: { count: number; status: number; verb: FakeVerb | undefined }[] = [];
  readonly #touchBeforeStatusWrite = new Map<string, number>();
  #server: Server;
  #port = 0;
  #bookmarkTimer: NodeJS.Timeout | undefined;

  /** Use {@link FakeApiServer.start}. */
  constructor(options: FakeApiServerOptions, certificate: TestCertificate) {
    this.#options = options;
    this.certificate = certificate;
    const tokens = options.tokens ?? { [`fake-${randomUUID()}`]: 'system:serviceaccount:usher:usher' };
    this.tokens = new Map(Object.entries(tokens));
    this.token = [...this.tokens.keys()][0]!;
    this.historyLimit = options.historyLimit ?? 1000;
    this.bookmarkIntervalMs = options.bookmarkIntervalMs ?? 1000;
    for (const kind of FAKE_KINDS) this.#objects.set(kind, new Map());
    this.#server = this.#makeServer();
  }

  /** Starts on 127.0.0.1 with a free port and a fresh self-signed certificate for `127.0.0.1` and `localhost`. */
  static async start(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    const fake = new FakeApiServer(options, generateCertificate(['localhost', '127.0.0.1']));
    await fake.#listen(0);
    fake.#scheduleBookmarks();
    return fake;
  }

  get url(): string {
    return `https://127.0.0.1:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  /** The CA bundle that verifies the server (its own self-signed certificate). */
  get ca(): string {
    return this.certificate.cert;
  }

  /** Watches open now. */
  get watchCount(): number {
    return this.#watchers.size;
  }

  async close(): Promise<void> {
    clearTimeout(this.#bookmarkTimer);
    this.#bookmarkTimer = undefined;
    await this.#stop();
  }

  // ---- the store, as tests change it ---------------------------------------------------------------

  /** Creates the object, or replaces it when it exists (a MODIFIED event only when something changed). Returns the stored copy. */
  apply(object: FakeObject): FakeObject {
    const kind = this.#kindOf(object);
    const key = keyOf(kind, object.metadata);
    const old = this.#objects.get(kind)!.get(key);
    if (old === undefined) return this.#create(kind, object);
    const next: FakeObject = { ...clone(object), metadata: { ...clone(object.metadata), resourceVersion: old.metadata.resourceVersion } };
    if (kind.status && object['status'] === undefined && old['status'] !== undefined) next['status'] = clone(old['status']);
    if (same(withoutVersion(old), withoutVersion(this.#withMeta(kind, next, old)))) return clone(old);
    return this.#store(kind, next, old, 'MODIFIED');
  }

  /** Deletes the object; false when there was none. */
  remove(kindName: string, namespace: string | undefined, name: string): boolean {
    const kind = FAKE_KINDS.find((k) => k.kind === kindName);
    if (kind === undefined) throw new Error(`the fake serves no kind ${kindName}`);
    const key = keyOf(kind, { name, namespace });
    const old = this.#objects.get(kind)!.get(key);
    if (old === undefined) return false;
    this.#delete(kind, key, old);
    return true;
  }

  get(kindName: string, namespace: string | undefined, name: string): FakeObject | undefined {
    const kind = FAKE_KINDS.find((k) => k.kind === kindName);
    if (kind === undefined) return undefined;
    const found = this.#objects.get(kind)!.get(keyOf(kind, { name, namespace }));
    return found === undefined ? undefined : clone(found);
  }

  list(kindName: string): FakeObject[] {
    const kind = FAKE_KINDS.find((k) => k.kind === kindName);
    return kind === undefined ? [] : [...this.#objects.get(kind)!.values()].map(clone);
  }

  // ---- counting ----------------------------------------------------------------------------------------

  /** Requests with this verb (and resource, when given) so far. */
  count(verb: FakeVerb, resource?: string): number {
    return this.requests.filter((r) => r.verb === verb && (resource === undefined || r.resource === resource)).length;
  }

  // ---- authorization and faults ---------------------------------------------------------------------

  /** From now on `verb` on `resource` (e.g. `list`, `endpointslices`) is answered 403, as RBAC without the rule would. */
  forbid(verb: FakeVerb, resource: string): void {
    this.#denied.add(`${verb} ${resource}`);
  }

  allow(verb: FakeVerb, resource: string): void {
    this.#denied.delete(`${verb} ${resource}`);
  }

  /** From now on only what these rules (a ClusterRole's) grant is allowed, as RBAC would; undefined lifts them. */
  enforceRules(rules: readonly RbacRule[] | undefined): void {
    this.#rules = rules;
  }

  /** The next `count` resource requests (of `verb`, when given) are answered `status` (default 500). */
  failNext(count: number, status = 500, verb?: FakeVerb): void {
    this.#failures.push({ count, status, verb });
  }

  /** Drops every open watch mid-stream (the socket is destroyed: no clean end). */
  cutWatches(): number {
    const n = this.#watchers.size;
    for (const watcher of [...this.#watchers]) {
      clearTimeout(watcher.timer);
      this.#watchers.delete(watcher);
      watcher.res.socket?.destroy(); // no terminating chunk: the client sees the stream break
    }
    return n;
  }

  /** Open watches receive nothing more (no events, no bookmarks) and stay open: a dead connection nobody noticed. New watches are normal. */
  stallWatches(): number {
    for (const watcher of this.#watchers) watcher.stalled = true;
    return this.#watchers.size;
  }

  /** Forgets the history: watches from any version before now get 410 Gone. Open watches go on. */
  compact(): void {
    this.#history = [];
    this.compactedRevision = this.revision;
  }

  /** A restart: every connection dropped, the history lost (the objects stay, as etcd keeps them). */
  restart(): void {
    this.compact();
    this.cutWatches();
    for (const socket of this.#sockets) socket.destroy();
  }

  /** Stops listening and drops every connection: the API server is unreachable until {@link up}. */
  async down(): Promise<void> {
    await this.#stop();
  }

  /** Listens again on the same port. */
  async up(): Promise<void> {
    this.#server = this.#makeServer();
    await this.#listen(this.#port);
  }

  /** Sends a BOOKMARK at the current revision to every watch that asked for them (and is not stalled). */
  sendBookmarks(): void {
    for (const watcher of this.#watchers) if (watcher.bookmarks && !watcher.stalled) this.#write(watcher, { type: 'BOOKMARK', object: this.#bookmark(watcher.kind) });
  }

  /**
   * The next `count` status writes (PUT or PATCH on `…/status`) of `plural`
   * find the object changed by someone else just before (an annotation, a new
   * resourceVersion): a write carrying the version it read gets 409.
   */
  conflictNextStatusWrites(plural: string, count = 1): void {
    this.#touchBeforeStatusWrite.set(plural, (this.#touchBeforeStatusWrite.get(plural) ?? 0) + count);
  }

  /** Advances the revision without changing anything a selector sees (as other objects' changes do on a real server). */
  bumpRevision(by = 1): number {
    this.revision += by;
    return this.revision;
  }

  // ---- internals: store ------------------------------------------------------------------------------

  #kindOf(object: FakeObject): FakeKind {
    const kind = kindByApiVersion(object.apiVersion, object.kind);
    if (kind === undefined) throw new Error(`the fake serves no ${object.apiVersion} ${object.kind}`);
    if (kind.namespaced && (object.metadata.namespace === undefined || object.metadata.namespace === '')) throw new Error(`${kind.kind} ${object.metadata.name}: a namespace is required`);
    return kind;
  }

  #withMeta(kind: FakeKind, object: FakeObject, old: FakeObject | undefined): FakeObject {
    const meta = object.metadata;
    const specChanged = old !== undefined && !same(specOf(old), specOf(object));
    return {
      ...object,
      apiVersion: apiVersionOf(kind),
      kind: kind.kind,
      metadata: {
        ...meta,
        ...(kind.namespaced ? {} : { namespace: undefined }),
        uid: old?.metadata.uid ?? meta.uid ?? randomUUID(),
        creationTimestamp: old?.metadata.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        generation: old === undefined ? 1 : (old.metadata.generation ?? 1) + (specChanged ? 1 : 0),
      },
    };
  }

  #create(kind: FakeKind, object: FakeObject): FakeObject {
    return this.#store(kind, clone(object), undefined, 'ADDED');
  }

  #store(kind: FakeKind, object: FakeObject, old: FakeObject | undefined, type: 'ADDED' | 'MODIFIED'): FakeObject {
    const stored = this.#withMeta(kind, object, old);
    if (!kind.namespaced) delete stored.metadata.namespace;
    stored.metadata.resourceVersion = String(++this.revision);
    this.#objects.get(kind)!.set(keyOf(kind, stored.metadata), stored);
    this.#record({ rv: this.revision, kind, type, object: stored, previous: old });
    return clone(stored);
  }

  #delete(kind: FakeKind, key: string, old: FakeObject): FakeObject {
    this.#objects.get(kind)!.delete(key);
    // A deleted object is reported with the deletion's revision, as etcd does.
    const gone = { ...clone(old), metadata: { ...clone(old.metadata), resourceVersion: String(++this.revision) } };
    this.#record({ rv: this.revision, kind, type: 'DELETED', object: gone, previous: old });
    return gone;
  }

  #record(entry: HistoryEntry): void {
    this.#history.push(entry);
    while (this.#history.length > this.historyLimit) {
      const dropped = this.#history.shift()!;
      this.compactedRevision = dropped.rv;
    }
    for (const watcher of this.#watchers) this.#deliver(watcher, entry);
  }

  /** The objects of `kind` as they were at `rv` (undoing later history); undefined when that is compacted. */
  #stateAt(kind: FakeKind, rv: number): Map<string, FakeObject> | undefined {
    if (rv < this.compactedRevision) return undefined;
    const state = new Map(this.#objects.get(kind)!);
    for (let i = this.#history.length - 1; i >= 0; i--) {
      const entry = this.#history[i]!;
      if (entry.rv <= rv) break;
      if (entry.kind !== kind) continue;
      const key = keyOf(kind, entry.object.metadata);
      if (entry.previous === undefined) state.delete(key);
      else state.set(key, entry.previous);
    }
    return state;
  }

  // ---- internals: HTTP ------------------------------------------------------------------------------------

  #makeServer(): Server {
    const server = createServer({ cert: this.certificate.cert, key: this.certificate.key }, (req, res) => this.#handle(req, res));
    server.on('secureConnection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    server.on('tlsClientError', () => {
      // A client that hangs up mid-handshake (kubectl killed, a test's abort): nothing to do.
    });
    return server;
  }

  async #listen(port: number): Promise<void> {
    this.#server.listen(port, '127.0.0.1');
    await once(this.#server, 'listening');
    this.#port = (this.#server.address() as AddressInfo).port;
  }

  async #stop(): Promise<void> {
    this.cutWatches();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    this.#server.closeAllConnections();
    await closed;
  }

  #scheduleBookmarks(): void {
    this.#bookmarkTimer = setTimeout(() => {
      this.sendBookmarks();
      this.#scheduleBookmarks();
    }, this.bookmarkIntervalMs);
    this.#bookmarkTimer.unref();
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'https://fake');
    const header = req.headers.authorization ?? '';
    const token = header.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    const route = parseRoute(url.pathname);
    const verb = route?.kind === undefined ? undefined : verbOf(req.method ?? 'GET', route, url.searchParams);
    const record: FakeRequest = { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, verb, resource: route?.kind?.plural, subresource: route?.subresource, namespace: route?.namespace, token, status: 0, at: performance.now() };
    this.requests.push(record);
    const answer = (status: number, body: unknown): void => {
      record.status = status;
      send(res, status, body);
    };
    const user = token === undefined ? undefined : this.tokens.get(token);
    if (user === undefined) {
      answer(401, status(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    if (route === undefined) {
      const document = this.#discovery(url.pathname);
      if (document === undefined) answer(404, status(404, 'NotFound', 'the server could not find the requested resource'));
      else answer(200, document);
      return;
    }
    if (route.kind === undefined) {
      answer(404, status(404, 'NotFound', 'the server could not find the requested resource'));
      return;
    }
    const kind = route.kind;
    const resourceName = route.subresource === undefined ? kind.plural : `${kind.plural}/${route.subresource}`;
    const granted = this.#rules === undefined || this.#rules.some((rule) => rule.apiGroups.includes(kind.group) && rule.resources.includes(resourceName) && rule.verbs.includes(verb!));
    const denied = !granted || this.#denied.has(`${verb} ${kind.plural}`) || (route.subresource !== undefined && this.#denied.has(`${verb} ${resourceName}`));
    if (denied) {
      const resource = route.subresource === undefined ? kind.plural : `${kind.plural}/${route.subresource}`;
      const where = kind.namespaced ? (route.namespace === undefined ? ' at the cluster scope' : ` in the namespace "${route.namespace}"`) : ' at the cluster scope';
      const body = status(403, 'Forbidden', `${qualified(kind)}${route.name === undefined ? '' : ` "${route.name}"`} is forbidden: User "${user}" cannot ${verb} resource "${resource}" in API group "${kind.group}"${where}`);
      answer(403, { ...body, details: { ...(route.name === undefined ? {} : { name: route.name }), group: kind.group, kind: kind.plural } });
      return;
    }
    const failure = this.#failures.find((f) => f.count > 0 && (f.verb === undefined || f.verb === verb));
    if (failure !== undefined) {
      failure.count--;
      this.#failures = this.#failures.filter((f) => f.count > 0);
      answer(failure.status, status(failure.status, failure.status === 500 ? 'InternalError' : 'ServiceUnavailable', `an error on the server ("injected fault") has prevented the request from succeeding`));
      return;
    }
    if (verb === 'watch') {
      this.#watch(req, res, kind, route.namespace, url.searchParams, record);
      return;
    }
    void this.#readBody(req).then(
      (body) => {
        try {
          const [code, result] = this.#resource(verb!, kind, route, url.searchParams, body, req.headers['content-type'] ?? '');
          answer(code, result);
        } catch (error) {
          if (error instanceof HttpError) answer(error.status, error.body);
          else answer(500, status(500, 'InternalError', (error as Error).message));
        }
      },
      () => res.destroy(),
    );
  }

  async #readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  #discovery(path: string): unknown {
    const groups = new Map<string, FakeKind[]>();
    for (const kind of FAKE_KINDS) {
      const gv = apiVersionOf(kind);
      groups.set(gv, [...(groups.get(gv) ?? []), kind]);
    }
    if (path === '/version') return { major: '1', minor: '32', gitVersion: 'v1.32.4-usher-fake', platform: 'linux/amd64' };
    if (path === '/api') return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${this.#port}` }] };
    if (path === '/apis') {
      const byGroup = new Map<string, string[]>();
      for (const kind of FAKE_KINDS) if (kind.group !== '') byGroup.set(kind.group, [...new Set([...(byGroup.get(kind.group) ?? []), kind.version])]);
      return {
        kind: 'APIGroupList',
        apiVersion: 'v1',
        groups: [...byGroup].map(([name, versions]) => ({
          name,
          versions: versions.map((version) => ({ groupVersion: `${name}/${version}`, version })),
          preferredVersion: { groupVersion: `${name}/${versions[0]}`, version: versions[0] },
        })),
      };
    }
    const gv = path === '/api/v1' ? 'v1' : path.startsWith('/apis/') ? path.slice('/apis/'.length) : undefined;
    if (gv === undefined) return undefined;
    const kinds = groups.get(gv);
    if (kinds === undefined) {
      if (!gv.includes('/') && [...groups.keys()].some((g) => g.startsWith(`${gv}/`))) {
        const versions = [...groups.keys()].filter((g) => g.startsWith(`${gv}/`)).map((g) => g.slice(gv.length + 1));
        return { kind: 'APIGroup', apiVersion: 'v1', name: gv, versions: versions.map((version) => ({ groupVersion: `${gv}/${version}`, version })), preferredVersion: { groupVersion: `${gv}/${versions[0]}`, version: versions[0] } };
      }
      return undefined;
    }
    const resources: unknown[] = [];
    for (const kind of kinds) {
      resources.push({
        name: kind.plural,
        singularName: kind.singular,
        namespaced: kind.namespaced,
        kind: kind.kind,
        verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
        ...(kind.shortNames === undefined ? {} : { shortNames: kind.shortNames }),
      });
      if (kind.status) resources.push({ name: `${kind.plural}/status`, singularName: '', namespaced: kind.namespaced, kind: kind.kind, verbs: ['get', 'patch', 'update'] });
    }
    return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: gv, resources };
  }

  #resource(verb: FakeVerb, kind: FakeKind, route: Route, query: URLSearchParams, body: string, contentType: string): [number, unknown] {
    const objects = this.#objects.get(kind)!;
    const notFound = (): HttpError => new HttpError(404, { ...status(404, 'NotFound', `${qualified(kind)} "${route.name}" not found`), details: { name: route.name, group: kind.group, kind: kind.plural } });
    const conflict = (): HttpError =>
      new HttpError(409, { ...status(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(kind)} "${route.name}": the object has been modified; please apply your changes to the latest version and try again`), details: { name: route.name, group: kind.group, kind: kind.plural } });
    switch (verb) {
      case 'list':
        return [200, this.#list(kind, route.namespace, query)];
      case 'get': {
        const found = objects.get(keyOf(kind, { name: route.name!, namespace: route.namespace }));
        if (found === undefined) throw notFound();
        return [200, found];
      }
      case 'create': {
        const object = parseJson(body) as FakeObject;
        if (object?.metadata?.name === undefined) throw new HttpError(422, status(422, 'Invalid', `${kind.kind} is invalid: metadata.name: Required value: name or generateName is required`));
        const ns = kind.namespaced ? (route.namespace ?? object.metadata.namespace) : undefined;
        if (objects.has(keyOf(kind, { name: object.metadata.name, namespace: ns }))) {
          throw new HttpError(409, { ...status(409, 'AlreadyExists', `${qualified(kind)} "${object.metadata.name}" already exists`), details: { name: object.metadata.name, group: kind.group, kind: kind.plural } });
        }
        const { resourceVersion: _rv, ...metadata } = object.metadata;
        const created: FakeObject = { ...object, metadata: { ...metadata, name: object.metadata.name, ...(ns === undefined ? {} : { namespace: ns }) } };
        if (kind.status) delete created['status'];
        return [201, this.#create(kind, created)];
      }
      case 'update':
      case 'patch': {
        const key = keyOf(kind, { name: route.name!, namespace: route.namespace });
        let old = objects.get(key);
        if (old === undefined) throw notFound();
        const touches = this.#touchBeforeStatusWrite.get(kind.plural) ?? 0;
        if (route.subresource === 'status' && touches > 0) {
          // Someone else changed the object between the client's read and this write: its version moves on, the write gets 409.
          this.#touchBeforeStatusWrite.set(kind.plural, touches - 1);
          old = this.#store(kind, { ...clone(old), metadata: { ...clone(old.metadata), annotations: { ...old.metadata.annotations, 'fake.test/touched': String(this.revision + 1) } } }, old, 'MODIFIED');
        }
        let next: FakeObject;
        if (verb === 'update') {
          next = parseJson(body) as FakeObject;
          if (next?.metadata === undefined) throw new HttpError(400, status(400, 'BadRequest', 'the body is not an object with metadata'));
        } else {
          next = applyPatch(old, parseJson(body), contentType);
        }
        const wanted = next.metadata.resourceVersion;
        if (wanted !== undefined && wanted !== '' && wanted !== old.metadata.resourceVersion) throw conflict();
        let result: FakeObject;
        if (route.subresource === 'status') {
          // The status subresource changes .status and nothing else.
          result = { ...clone(old), status: clone(next['status']) };
        } else {
          result = { ...clone(next), metadata: { ...clone(next.metadata), name: old.metadata.name, ...(kind.namespaced ? { namespace: old.metadata.namespace } : {}) } };
          if (kind.status) result['status'] = clone(old['status']);
        }
        if (same(withoutVersion(this.#withMeta(kind, result, old)), withoutVersion(old))) return [200, old];
        return [200, this.#store(kind, result, old, 'MODIFIED')];
      }
      case 'delete': {
        const key = keyOf(kind, { name: route.name!, namespace: route.namespace });
        const old = objects.get(key);
        if (old === undefined) throw notFound();
        return [200, this.#delete(kind, key, old)];
      }
      default:
        throw new HttpError(405, status(405, 'MethodNotAllowed', `${verb} is not supported`));
    }
  }

  #list(kind: FakeKind, namespace: string | undefined, query: URLSearchParams): unknown {
    const labels = this.#selector(() => parseLabelSelector(query.get('labelSelector')));
    const fields = this.#selector(() => parseFieldSelector(query.get('fieldSelector'), kind));
    const limit = Number(query.get('limit') ?? 0) || Infinity;
    const pageSize = Math.min(limit, this.#options.maxPageSize ?? Infinity);
    let at = this.revision;
    let after = '';
    const token = query.get('continue');
    if (token !== null && token !== '') {
      let decoded: { rv: number; after: string };
      try {
        decoded = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { rv: number; after: string };
      } catch {
        throw new HttpError(400, status(400, 'BadRequest', 'continue key is not valid'));
      }
      if (decoded.rv < this.compactedRevision) {
        throw new HttpError(410, status(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results.'));
      }
      at = decoded.rv;
      after = decoded.after;
    } else {
      const rv = query.get('resourceVersion');
      if (rv !== null && rv !== '' && rv !== '0') {
        const wanted = Number(rv);
        if (!Number.isInteger(wanted)) throw new HttpError(400, status(400, 'BadRequest', `invalid resource version "${rv}"`));
        if (query.get('resourceVersionMatch') === 'Exact') {
          if (wanted < this.compactedRevision) throw new HttpError(410, status(410, 'Expired', `too old resource version: ${wanted} (${this.compactedRevision})`));
          at = wanted;
        } else if (wanted > this.revision) {
          throw new HttpError(504, { ...status(504, 'Timeout', `Too large resource version: ${wanted}, current: ${this.revision}`), details: { causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }], retryAfterSeconds: 1 } });
        }
      }
    }
    const state = at === this.revision ? this.#objects.get(kind)! : this.#stateAt(kind, at);
    if (state === undefined) throw new HttpError(410, status(410, 'Expired', `too old resource version: ${at} (${this.compactedRevision})`));
    const matching = [...state.entries()]
      .filter(([, o]) => (namespace === undefined || o.metadata.namespace === namespace) && labels(o) && fields(o))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .filter(([key]) => key > after);
    const page = matching.slice(0, pageSize);
    const more = matching.length > page.length;
    // Items of a list carry no kind or apiVersion, as a real server's do.
    const items = page.map(([, o]) => {
      const { kind: _k, apiVersion: _a, ...rest } = o;
      return rest;
    });
    return {
      kind: `${kind.kind}List`,
      apiVersion: apiVersionOf(kind),
      metadata: {
        resourceVersion: String(at),
        ...(more ? { continue: Buffer.from(JSON.stringify({ rv: at, after: page[page.length - 1]![0] })).toString('base64url'), remainingItemCount: matching.length - page.length } : {}),
      },
      items,
    };
  }

  #selector(parse: () => Matcher): Matcher {
    try {
      return parse();
    } catch (error) {
      if (error instanceof SelectorError) throw new HttpError(400, status(400, 'BadRequest', error.message));
      throw error;
    }
  }

  #watch(req: IncomingMessage, res: ServerResponse, kind: FakeKind, namespace: string | undefined, query: URLSearchParams, record: FakeRequest): void {
    let labels: Matcher;
    let fields: Matcher;
    try {
      labels = this.#selector(() => parseLabelSelector(query.get('labelSelector')));
      fields = this.#selector(() => parseFieldSelector(query.get('fieldSelector'), kind));
    } catch (error) {
      record.status = (error as HttpError).status;
      send(res, (error as HttpError).status, (error as HttpError).body);
      return;
    }
    const rvText = query.get('resourceVersion') ?? '';
    const initialEvents = query.get('sendInitialEvents') === 'true';
    const bookmarks = query.get('allowWatchBookmarks') === 'true';
    if (initialEvents && (query.get('resourceVersionMatch') !== 'NotOlderThan' || !bookmarks)) {
      record.status = 422;
      send(res, 422, status(422, 'Invalid', 'sendInitialEvents requires resourceVersionMatch=NotOlderThan and allowWatchBookmarks=true'));
      return;
    }
    const timeoutSeconds = Number(query.get('timeoutSeconds') ?? 0) || (this.#options.defaultWatchTimeoutSeconds ?? 1800);
    record.status = 200;
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache, private' });
    res.flushHeaders();
    const watcher: Watcher = {
      kind,
      namespace,
      labels,
      fields,
      bookmarks,
      res,
      stalled: false,
      timer: setTimeout(() => {
        this.#endWatch(watcher);
      }, timeoutSeconds * 1000),
    };
    watcher.timer.unref();
    res.on('close', () => this.#endWatch(watcher));
    const matches = (o: FakeObject): boolean => (namespace === undefined || o.metadata.namespace === namespace) && labels(o) && fields(o);
    const synthetic = rvText === '' || rvText === '0' || initialEvents;
    if (synthetic) {
      const current = [...this.#objects.get(kind)!.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      for (const [, object] of current) if (matches(object)) this.#write(watcher, { type: 'ADDED', object });
      if (initialEvents) {
        const bookmark = this.#bookmark(kind);
        (bookmark.metadata as Record<string, unknown>)['annotations'] = { 'k8s.io/initial-events-end': 'true' };
        this.#write(watcher, { type: 'BOOKMARK', object: bookmark });
      }
    } else {
      const from = Number(rvText);
      if (!Number.isInteger(from) || from < this.compactedRevision) {
        record.watchError = 410;
        this.#write(watcher, { type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${rvText} (${this.compactedRevision})`) });
        this.#endWatch(watcher);
        return;
      }
      for (const entry of this.#history) if (entry.rv > from) this.#deliver(watcher, entry);
    }
    this.#watchers.add(watcher);
  }

  /** One change to one watch: selector transitions become ADDED and DELETED, as the watch cache does. */
  #deliver(watcher: Watcher, entry: HistoryEntry): void {
    if (watcher.kind !== entry.kind || watcher.stalled) return;
    const matches = (o: FakeObject | undefined): boolean => o !== undefined && (watcher.namespace === undefined || o.metadata.namespace === watcher.namespace) && watcher.labels(o) && watcher.fields(o);
    const now = entry.type === 'DELETED' ? false : matches(entry.object);
    const before = matches(entry.previous);
    if (entry.type === 'DELETED') {
      if (before) this.#write(watcher, { type: 'DELETED', object: entry.object });
      return;
    }
    if (now && before) this.#write(watcher, { type: 'MODIFIED', object: entry.object });
    else if (now) this.#write(watcher, { type: 'ADDED', object: entry.object });
    else if (before) this.#write(watcher, { type: 'DELETED', object: entry.object });
  }

  #bookmark(kind: FakeKind): Record<string, unknown> {
    return { kind: kind.kind, apiVersion: apiVersionOf(kind), metadata: { resourceVersion: String(this.revision) } };
  }

  #write(watcher: Watcher, event: { type: string; object: unknown }): void {
    if (watcher.res.writableEnded || watcher.res.destroyed) return;
    watcher.res.write(`${JSON.stringify(event)}\n`);
  }

  #endWatch(watcher: Watcher): void {
    clearTimeout(watcher.timer);
    this.#watchers.delete(watcher);
    if (!watcher.res.writableEnded && !watcher.res.destroyed) watcher.res.end();
  }
}

// ---- helpers ----------------------------------------------------------------------------------------------

interface Route {
  readonly kind: FakeKind | undefined;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly subresource: string | undefined;
}

/** `/api/v1/namespaces/ns/services/x/status` → its parts; undefined for discovery paths. */
function parseRoute(path: string): Route | undefined {
  const parts = path.split('/').filter((p) => p !== '').map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 3) {
    group = '';
    version = parts[1]!;
    rest = parts.slice(2);
  } else if (parts[0] === 'apis' && parts.length >= 4) {
    group = parts[1]!;
    version = parts[2]!;
    rest = parts.slice(3);
  } else {
    return undefined;
  }
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const kind = kindByPath(group, version, rest[0]!);
  // `/api/v1/namespaces/x` itself: a Namespace object.
  if (kind === undefined && namespace !== undefined && rest.length === 0) return { kind: kindByPath('', 'v1', 'namespaces'), namespace: undefined, name: namespace, subresource: undefined };
  return { kind, namespace, name: rest[1], subresource: rest[2] };
}

function verbOf(method: string, route: Route, query: URLSearchParams): FakeVerb {
  const watching = query.get('watch') === 'true' || query.get('watch') === '1';
  switch (method) {
    case 'GET':
      if (route.name === undefined) return watching ? 'watch' : 'list';
      return 'get';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return 'delete';
    default:
      return 'get';
  }
}

class HttpError extends Error {
  readonly status: number;
  readonly body: unknown;
  constructor(code: number, body: unknown) {
    super(`HTTP ${code}`);
    this.status = code;
    this.body = body;
  }
}

function status(code: number, reason: string, message: string): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function send(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-cache, private' });
  res.end(text);
}

function keyOf(kind: FakeKind, meta: { name: string; namespace?: string | undefined }): string {
  return kind.namespaced ? `${meta.namespace ?? ''}/${meta.name}` : meta.name;
}

function clone<T>(value: T): T {
  return value === undefined ? value : (structuredClone(value) as T);
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));
}

function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, sorted(v)]));
  }
  return value;
}

function withoutVersion(object: FakeObject): FakeObject {
  const { resourceVersion: _rv, ...metadata } = object.metadata;
  return { ...object, metadata: metadata as FakeObject['metadata'] };
}

/** Everything but metadata and status: what bumps `metadata.generation`. */
function specOf(object: FakeObject): unknown {
  const { metadata: _m, status: _s, ...rest } = object;
  return rest;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, status(400, 'BadRequest', 'the body is not JSON'));
  }
}

/** JSON merge patch (RFC 7386; strategic merge patch is read as one), or JSON patch (RFC 6902: add, remove, replace, test). */
function applyPatch(old: FakeObject, patch: unknown, contentType: string): FakeObject {
  if (contentType.startsWith('application/json-patch+json')) {
    if (!Array.isArray(patch)) throw new HttpError(400, status(400, 'BadRequest', 'a JSON patch is a list of operations'));
    const doc = clone(old) as unknown as Record<string, unknown>;
    for (const op of patch as { op: string; path: string; value?: unknown }[]) {
      const segments = op.path.split('/').slice(1).map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
      const last = segments.pop();
      let parent: Record<string, unknown> = doc;
      for (const segment of segments) {
        const next = parent[segment];
        if (typeof next !== 'object' || next === null) throw new HttpError(422, status(422, 'Invalid', `the path ${op.path} does not exist`));
        parent = next as Record<string, unknown>;
      }
      if (last === undefined) throw new HttpError(422, status(422, 'Invalid', 'cannot patch the whole document'));
      if (op.op === 'add' || op.op === 'replace') parent[last] = clone(op.value);
      else if (op.op === 'remove') delete parent[last];
      else if (op.op === 'test') {
        if (!same(parent[last], op.value)) throw new HttpError(422, status(422, 'Invalid', `the test of ${op.path} failed`));
      } else throw new HttpError(422, status(422, 'Invalid', `unsupported JSON patch operation ${op.op}`));
    }
    return doc as unknown as FakeObject;
  }
  if (!contentType.startsWith('application/merge-patch+json') && !contentType.startsWith('application/strategic-merge-patch+json')) {
    throw new HttpError(415, status(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json`));
  }
  return merge(old, patch) as FakeObject;
}

function merge(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return clone(patch);
  const result: Record<string, unknown> = typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(clone(target) as Record<string, unknown>) } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = merge(result[key], value);
  }
  return result;
}
