import { el, placeChildren, setAttr, setClass, setText, svg } from './dom.ts';
import { formatBytes, formatClock, formatErrorRate, formatMs, formatPercent, formatRate, formatWeight, sparklinePoints } from './format.ts';
import type { BackendView, CacheView, DiscoverySourceView, HealthCheckResult, ListenerView, PeerView, PeersView, PoolView, Snapshot, WorkerView } from './types.ts';

/**
 * Renders snapshots into the page. Elements are kept per pool and per backend
 * and updated in place each second, so focus, hover and an open confirmation
 * survive updates; only values that changed touch the DOM.
 */

export type Action = 'drain' | 'disable' | 'enable';
export type ActionHandler = (pool: string, address: string, action: Action) => void;

const SPARK_WIDTH = 120;
const SPARK_HEIGHT = 24;

export class DashboardView {
  readonly #listeners: HTMLElement;
  readonly #pools: HTMLElement;
  readonly #onAction: ActionHandler;
  readonly #poolSections = new Map<string, PoolSection>();
  #listenersKey = '';

  constructor(listeners: HTMLElement, pools: HTMLElement, onAction: ActionHandler) {
    this.#listeners = listeners;
    this.#pools = pools;
    this.#onAction = onAction;
  }

  render(snapshot: Snapshot): void {
    const key = JSON.stringify(snapshot.listeners);
    if (key !== this.#listenersKey) {
      this.#listenersKey = key;
      this.#listeners.replaceChildren(...snapshot.listeners.map(listenerCard));
      if (snapshot.listeners.length === 0) this.#listeners.append(el('p', 'empty', 'No listeners.'));
    }
    const sections: HTMLElement[] = [];
    const seen = new Set<string>();
    for (const pool of snapshot.pools) {
      let section = this.#poolSections.get(pool.name);
      if (section === undefined) {
        section = new PoolSection(pool.name, this.#onAction);
        this.#poolSections.set(pool.name, section);
      }
      section.update(pool);
      sections.push(section.el);
      seen.add(pool.name);
    }
    for (const name of this.#poolSections.keys()) if (!seen.has(name)) this.#poolSections.delete(name);
    placeChildren(this.#pools, sections);
  }
}

/**
 * The worker threads as a table, one row per worker, updated in place; the
 * section is hidden when the snapshot has none (the main thread serves).
 */
export class WorkersTable {
  readonly #section: HTMLElement;
  readonly #body: HTMLElement;
  readonly #rows = new Map<number, WorkerRow>();

  constructor(section: HTMLElement, body: HTMLElement) {
    this.#section = section;
    this.#body = body;
  }

  update(workers: readonly WorkerView[]): void {
    const hidden = workers.length === 0;
    if (this.#section.hidden !== hidden) this.#section.hidden = hidden;
    const rows: HTMLElement[] = [];
    const seen = new Set<number>();
    for (const worker of workers) {
      let row = this.#rows.get(worker.index);
      if (row === undefined) {
        row = new WorkerRow(worker.index);
        this.#rows.set(worker.index, row);
      }
      row.update(worker);
      rows.push(row.el);
      seen.add(worker.index);
    }
    for (const index of this.#rows.keys()) if (!seen.has(index)) this.#rows.delete(index);
    placeChildren(this.#body, rows);
  }
}

const WORKER_STATE_HELP: Readonly<Record<string, string>> = {
  starting: 'loading the config; not serving yet',
  serving: 'serving traffic',
  restarting: 'the thread died; a replacement starts after a backoff that doubles with each crash in a row',
  stopped: 'stopped',
};

class WorkerRow {
  readonly el: HTMLTableRowElement;
  readonly #cells: Record<'state' | 'connections' | 'rate' | 'cpu' | 'restarts', HTMLElement>;

  constructor(index: number) {
    this.el = el('tr', 'worker', '', { 'data-worker': String(index) });
    const cell = (className = 'num'): HTMLElement => {
      const td = el('td', className);
      this.el.append(td);
      return td;
    };
    this.el.append(el('th', 'mono', `#${index}`, { scope: 'row' }));
    this.#cells = { state: cell('worker-state'), connections: cell(), rate: cell(), cpu: cell(), restarts: cell() };
  }

  update(w: WorkerView): void {
    setAttr(this.el, 'data-state', w.state);
    setClass(this.el, `worker worker-${w.state}`);
    const c = this.#cells;
    setText(c.state, w.state);
    setAttr(c.state, 'title', WORKER_STATE_HELP[w.state] ?? '');
    setText(c.connections, String(w.connections));
    setText(c.rate, formatRate(w.requestsPerSecond));
    setText(c.cpu, formatPercent(w.cpuPercent));
    setText(c.restarts, String(w.restarts));
    setClass(c.restarts, w.restarts > 0 ? 'num warn' : 'num');
  }
}

function listenerCard(listener: ListenerView): HTMLElement {
  const card = el('article', 'listener');
  const head = el('header');
  head.append(el('h3', '', listener.name), el('span', 'tag', listener.protocol), el('span', 'mono', listener.address ?? listener.bind));
  const routes = el('ul', 'routes');
  for (const route of listener.routes) {
    const item = el('li');
    item.append(el('span', 'route-name', route.name), el('span', 'route-match', route.match.length === 0 ? 'everything' : route.match.join(' · ')));
    const to = el('span', 'route-to');
    if (route.pool !== null) {
      to.append('→ pool ', el('a', '', route.pool, { href: `#pool-${route.pool}` }));
      if (route.stripPrefix !== null) to.append(` (strip ${route.stripPrefix})`);
    } else {
      to.textContent = `→ redirect ${route.redirect ?? ''}`;
    }
    item.append(to);
    routes.append(item);
  }
  card.append(head, routes);
  return card;
}

class PoolSection {
  readonly el: HTMLElement;
  readonly #name: string;
  readonly #onAction: ActionHandler;
  readonly #algorithm: HTMLElement;
  readonly #mode: HTMLElement;
  readonly #summary: HTMLElement;
  readonly #grid: HTMLElement;
  readonly #cards = new Map<string, BackendCard>();

  constructor(name: string, onAction: ActionHandler) {
    this.#name = name;
    this.#onAction = onAction;
    this.el = el('section', 'pool', '', { id: `pool-${name}`, 'data-pool': name });
    const head = el('header');
    this.#algorithm = el('span', 'tag');
    this.#mode = el('span', 'mode');
    this.#summary = el('span', 'muted');
    head.append(el('h2', '', `pool ${name}`), this.#algorithm, this.#mode, this.#summary);
    this.#grid = el('div', 'backends');
    this.el.append(head, this.#grid);
  }

  update(pool: PoolView): void {
    setText(this.#algorithm, pool.algorithm);
    setText(this.#mode, pool.mode);
    setClass(this.#mode, `mode mode-${pool.mode}`);
    setAttr(this.#mode, 'title', MODE_HELP[pool.mode] ?? '');
    const up = pool.backends.filter((b) => b.state === 'healthy' || b.state === 'slow-start').length;
    const discovery = (pool.discovery?.sources ?? []).map((source) => `${source.source.toUpperCase()} ${source.state}, ${source.members} found`);
    setText(this.#summary, `${up} of ${pool.backends.length} in rotation${pool.queued > 0 ? ` · ${pool.queued} queued` : ''}${discovery.map((d) => ` · ${d}`).join('')}`);
    setAttr(this.#summary, 'title', (pool.discovery?.sources ?? []).map(discoveryHelp).join('\n'));
    const cards: HTMLElement[] = [];
    const seen = new Set<string>();
    for (const backend of pool.backends) {
      let card = this.#cards.get(backend.address);
      if (card === undefined) {
        card = new BackendCard(this.#name, backend.address, backend.name, this.#onAction);
        this.#cards.set(backend.address, card);
      }
      card.update(backend);
      cards.push(card.el);
      seen.add(backend.address);
    }
    for (const address of this.#cards.keys()) if (!seen.has(address)) this.#cards.delete(address);
    if (cards.length === 0) cards.push(el('p', 'empty', pool.discovery === null ? 'No backends.' : 'No backends: discovery has found none.'));
    placeChildren(this.#grid, cards);
  }
}

const MODE_HELP: Readonly<Record<string, string>> = {
  primary: 'balancing over the available primary backends',
  backup: 'no primary is available: backups take the traffic',
  panic: 'too few healthy backends: balancing over all enabled ones, healthy or not',
  fallback: 'nothing else is available: discovered backends that are terminating still serve',
  none: 'nothing can take a request: clients get 503',
};

/** A discovery source's tooltip: what it asks, how old its last answer is, its last error. */
function discoveryHelp(source: DiscoverySourceView): string {
  const age = source.lastSuccessAgeMs === null ? 'no answer yet' : `last answer ${(source.lastSuccessAgeMs / 1000).toFixed(1)} s ago`;
  return `${source.query}: ${source.state}, ${age}${source.lastError === null ? '' : `; ${source.lastError}`}`;
}

const STATE_HELP: Readonly<Record<string, string>> = {
  healthy: 'in rotation',
  'slow-start': 'in rotation, weight ramping up',
  draining: 'no new requests; in-flight ones finish',
  disabled: 'takes no requests',
  unhealthy: 'failing its health check',
  unreachable: 'refused a connection: out of rotation, tried again after a short backoff',
  ejected: 'ejected by outlier detection after failed requests',
};

class BackendCard {
  readonly el: HTMLElement;
  readonly #badge: HTMLElement;
  readonly #note: HTMLElement;
  readonly #values: Record<'weight' | 'inFlight' | 'rate' | 'errors' | 'p50' | 'p99', HTMLElement>;
  readonly #line: SVGPolylineElement;
  readonly #sparkTitle: SVGTitleElement;
  readonly #checks: HTMLElement;
  readonly #connections: HTMLElement;
  readonly #buttons: Record<Action, HTMLButtonElement>;
  #checksKey = '';

  constructor(pool: string, address: string, name: string | null, onAction: ActionHandler) {
    this.el = el('article', 'backend', '', { 'data-address': address });
    const head = el('header');
    this.#badge = el('span', 'badge');
    // A named backend shows its name first and its address beside it: people know "alpha", logs and the API use the address.
    const title = name === null ? el('h3', 'mono', address) : el('h3', '', name);
    if (name !== null) title.append(' ', el('span', 'mono address', address));
    head.append(title, this.#badge);
    this.#note = el('p', 'note');

    const stats = el('dl', 'stats');
    const stat = (label: string, title: string): HTMLElement => {
      const value = el('dd');
      const item = el('div', '', '', { title });
      item.append(el('dt', '', label), value);
      stats.append(item);
      return value;
    };
    this.#values = {
      weight: stat('weight', 'weight balancers use now (of the configured one, during slow start)'),
      inFlight: stat('in flight', 'requests in flight now (of the connection limit, if any)'),
      rate: stat('req/s', 'attempts in the last complete second'),
      errors: stat('errors', 'failed attempts and 5xx responses, last 10 s'),
      p50: stat('p50', 'median time to response headers, last 10 s'),
      p99: stat('p99', '99th percentile time to response headers, last 10 s'),
    };

    const spark = svg('svg', { class: 'spark', viewBox: `0 -2 ${SPARK_WIDTH} ${SPARK_HEIGHT + 4}`, preserveAspectRatio: 'none', role: 'img' });
    this.#sparkTitle = svg('title');
    this.#line = svg('polyline', { 'vector-effect': 'non-scaling-stroke' });
    spark.append(this.#sparkTitle, this.#line);
    const sparkRow = el('div', 'row');
    sparkRow.append(el('span', 'label', 'req/s, 60 s'), spark);

    this.#checks = el('div', 'checks', '', { role: 'list', 'aria-label': 'recent health checks, oldest first' });
    const checksRow = el('div', 'row');
    checksRow.append(el('span', 'label', 'checks'), this.#checks);

    const foot = el('footer');
    this.#connections = el('span', 'muted');
    const actions = el('div', 'actions');
    const button = (action: Action, label: string): HTMLButtonElement => {
      const b = el('button', `btn btn-${action}`, label, { type: 'button', 'data-action': action });
      b.addEventListener('click', () => onAction(pool, address, action));
      actions.append(b);
      return b;
    };
    this.#buttons = { drain: button('drain', 'Drain'), disable: button('disable', 'Disable'), enable: button('enable', 'Enable') };
    foot.append(this.#connections, actions);

    this.el.append(head, this.#note, stats, sparkRow, checksRow, foot);
  }

  update(b: BackendView): void {
    setClass(this.el, `backend state-${b.state}`);
    setAttr(this.el, 'data-state', b.state);
    const tags = [b.state, ...(b.backup ? ['backup'] : []), ...(b.discovered ? [b.priority === null || b.priority === 0 ? 'discovered' : `discovered, priority ${b.priority}`] : [])];
    setText(this.#badge, tags.join(' · '));
    setAttr(this.#badge, 'title', STATE_HELP[b.state] ?? '');
    const ejectedUntil = b.outlier?.ejectedUntil ?? null;
    setText(this.#note, ejectedUntil !== null ? `ejected until ${formatClock(ejectedUntil)}` : b.adminState !== 'enabled' && b.inFlight > 0 ? `finishing ${b.inFlight} in flight` : '');

    const v = this.#values;
    setText(v.weight, formatWeight(b.effectiveWeight, b.weight));
    setText(v.inFlight, b.maxConnections === null ? String(b.inFlight) : `${b.inFlight} / ${b.maxConnections}`);
    const series = b.requestsPerSecond;
    setText(v.rate, formatRate(series.at(-1) ?? 0));
    setText(v.errors, formatErrorRate(b.recent.errors, b.recent.requests));
    setClass(v.errors, b.recent.errors > 0 ? 'bad' : '');
    setText(v.p50, formatMs(b.recent.p50Ms));
    setText(v.p99, formatMs(b.recent.p99Ms));

    setAttr(this.#line, 'points', sparklinePoints(series, SPARK_WIDTH, SPARK_HEIGHT));
    setText(this.#sparkTitle, `requests per second over the last minute; peak ${formatRate(Math.max(0, ...series))}`);

    const last = b.checks.at(-1);
    const checksKey = `${b.checks.length}:${last?.at ?? ''}`;
    if (checksKey !== this.#checksKey) {
      this.#checksKey = checksKey;
      this.#checks.replaceChildren(...b.checks.map(checkMark));
      if (b.checks.length === 0) this.#checks.append(el('span', 'muted', 'none yet'));
    }
    setText(this.#connections, `${b.connections.open} conn${b.connections.open === 1 ? '' : 's'}, ${b.connections.idle} idle`);

    setButton(this.#buttons.drain, b.adminState === 'enabled');
    setButton(this.#buttons.disable, b.adminState !== 'disabled');
    setButton(this.#buttons.enable, b.adminState !== 'enabled');
  }
}

function setButton(button: HTMLButtonElement, enabled: boolean): void {
  if (button.disabled === enabled) button.disabled = !enabled;
}

function checkMark(check: HealthCheckResult): HTMLElement {
  const when = formatClock(check.at);
  const title = check.ok ? `${when} ok (${formatMs(check.durationMs)})` : `${when} failed: ${check.detail}`;
  return el('span', check.ok ? 'check ok' : 'check fail', '', { role: 'listitem', title, 'aria-label': title });
}

/**
 * The response cache: hit ratio (hits over lookups since start), size against
 * its limit, entries, and the keys with the most hits. Hidden when no route
 * caches.
 */
export class CachePanel {
  readonly #section: HTMLElement;
  readonly #summary: HTMLElement;
  readonly #top: HTMLElement;
  #topKey = '';

  constructor(section: HTMLElement, summary: HTMLElement, top: HTMLElement) {
    this.#section = section;
    this.#summary = summary;
    this.#top = top;
  }

  update(cache: CacheView | undefined): void {
    const hidden = cache === undefined;
    if (this.#section.hidden !== hidden) this.#section.hidden = hidden;
    if (cache === undefined) return;
    const lookups = cache.hits + cache.misses;
    const ratio = lookups === 0 ? '–' : `${((100 * cache.hits) / lookups).toFixed(1)}%`;
    setText(this.#summary, `hit ratio ${ratio} · ${formatBytes(cache.bytes)} of ${formatBytes(cache.maxBytes)} · ${cache.entries} entries · ${cache.collapsed} collapsed`);
    const key = JSON.stringify(cache.top);
    if (key === this.#topKey) return;
    this.#topKey = key;
    this.#top.replaceChildren(...cache.top.map((t) => {
      const row = el('tr', 'cache-key');
      row.append(el('td', 'mono', t.key), el('td', 'num', String(t.hits)));
      return row;
    }));
  }
}

/**
 * The usher instances sharing this one's Redis: one row per live instance
 * (this one first), its version, config hash, admin API and when it was last
 * seen; a config that differs from this instance's is marked, and a banner
 * says when the configs differ or Redis is unreachable (the list is then the
 * last known one). Hidden without a `redis` section.
 */
export class PeersPanel {
  readonly #section: HTMLElement;
  readonly #summary: HTMLElement;
  readonly #alert: HTMLElement;
  readonly #body: HTMLElement;
  readonly #rows = new Map<string, PeerRow>();

  constructor(section: HTMLElement, summary: HTMLElement, alert: HTMLElement, body: HTMLElement) {
    this.#section = section;
    this.#summary = summary;
    this.#alert = alert;
    this.#body = body;
  }

  update(peers: PeersView | undefined): void {
    const hidden = peers === undefined;
    if (this.#section.hidden !== hidden) this.#section.hidden = hidden;
    if (peers === undefined) return;
    setText(this.#summary, `${peers.liveInstances} instance${peers.liveInstances === 1 ? '' : 's'} on ${peers.redis}${peers.shareAdminActions ? ' · admin actions shared' : ''}`);
    const alerts: string[] = [];
    if (!peers.connected) alerts.push(`Redis unreachable${peers.error === null ? '' : ` (${peers.error})`}: the list is as of ${peers.listAgeMs === null ? 'never' : `${(peers.listAgeMs / 1000).toFixed(0)} s ago`}.`);
    if (peers.configMismatch) alerts.push('Config mismatch: the live instances do not all serve the same config.');
    setText(this.#alert, alerts.join(' '));
    const alertHidden = alerts.length === 0;
    if (this.#alert.hidden !== alertHidden) this.#alert.hidden = alertHidden;
    setAttr(this.#section, 'data-mismatch', String(peers.configMismatch));
    setAttr(this.#section, 'data-connected', String(peers.connected));
    const rows: HTMLElement[] = [];
    const seen = new Set<string>();
    for (const peer of peers.peers) {
      let row = this.#rows.get(peer.instance);
      if (row === undefined) {
        row = new PeerRow(peer.instance);
        this.#rows.set(peer.instance, row);
      }
      row.update(peer);
      rows.push(row.el);
      seen.add(peer.instance);
    }
    for (const instance of this.#rows.keys()) if (!seen.has(instance)) this.#rows.delete(instance);
    placeChildren(this.#body, rows);
  }
}

class PeerRow {
  readonly el: HTMLTableRowElement;
  readonly #cells: Record<'instance' | 'version' | 'config' | 'admin' | 'seen', HTMLElement>;

  constructor(instance: string) {
    this.el = el('tr', 'peer', '', { 'data-instance': instance });
    const cell = (className = ''): HTMLElement => {
      const td = el('td', className);
      this.el.append(td);
      return td;
    };
    this.#cells = { instance: cell('mono'), version: cell(), config: cell('mono'), admin: cell('mono'), seen: cell('num') };
  }

  update(p: PeerView): void {
    setClass(this.el, `peer${p.self ? ' peer-self' : ''}${p.sameConfig ? '' : ' peer-differs'}`);
    setAttr(this.el, 'data-same-config', String(p.sameConfig));
    const c = this.#cells;
    setText(c.instance, p.self ? `${p.instance} (this)` : p.instance);
    setAttr(c.instance, 'title', `${p.hostname}, pid ${p.pid}, started ${formatClock(p.startedAt)}`);
    setText(c.version, p.version);
    setText(c.config, p.sameConfig ? p.configHash : `${p.configHash} ≠`);
    setAttr(c.config, 'title', p.sameConfig ? 'same config as this instance' : 'a different config from this instance');
    setClass(c.config, p.sameConfig ? 'mono' : 'mono warn');
    setText(c.admin, p.admin ?? '–');
    setText(c.seen, `${(p.ageMs / 1000).toFixed(1)} s ago`);
  }
}
