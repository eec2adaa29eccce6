import { backendAction, EventStream, setToken, type StreamStatus } from './client.ts';
import { askForToken, confirmAction } from './dialogs.ts';
import { formatClock } from './format.ts';
import { CachePanel, DashboardView, PeersPanel, WorkersTable, type Action } from './render.ts';

/** The live dashboard: reads /api/events, renders every listener, pool, backend, worker thread and peer, and drives drain/disable/enable. */

function byId(id: string): HTMLElement {
  const node = document.getElementById(id);
  if (node === null) throw new Error(`index.html has no #${id}`);
  return node;
}

const statusEl = byId('status');
const updatedEl = byId('updated');
const tokenButton = byId('token-button');
const toastEl = byId('toast');

let toastTimer: ReturnType<typeof setTimeout> | undefined;
function toast(message: string, bad = false): void {
  toastEl.textContent = message;
  toastEl.className = bad ? 'toast show bad' : 'toast show';
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (toastEl.className = 'toast'), 5000);
}

const STATUS_TEXT: Readonly<Record<StreamStatus, string>> = {
  connecting: 'connecting…',
  live: 'live',
  reconnecting: 'reconnecting…',
  unauthorized: 'token needed',
};

let lastReason = '';
function showStatus(status: StreamStatus, detail?: string): void {
  statusEl.textContent = STATUS_TEXT[status];
  statusEl.className = `status status-${status}`;
  statusEl.title = detail ?? '';
  tokenButton.hidden = status !== 'unauthorized';
  if (status === 'unauthorized') {
    lastReason = detail ?? '';
    promptForToken();
  }
}

function promptForToken(): void {
  askForToken(lastReason, (token) => {
    setToken(token);
    stream.restart();
  });
}

const VERBS: Readonly<Record<Action, { verb: string; detail: string; done: string }>> = {
  drain: { verb: 'Drain', detail: 'It takes no new requests; requests in flight finish.', done: 'draining' },
  disable: { verb: 'Disable', detail: 'It takes no requests; open tunnels close after the drain timeout.', done: 'disabled' },
  enable: { verb: 'Enable', detail: 'It takes requests again once healthy (with slow start, if configured).', done: 'enabled' },
};

async function onAction(pool: string, address: string, action: Action): Promise<void> {
  const { verb, detail, done } = VERBS[action];
  const confirmed = await confirmAction(`${verb} ${address} in pool ${pool}?`, `${detail} This lasts until the next reload.`, verb);
  if (!confirmed) return;
  const result = await backendAction(pool, address, action);
  if (result.ok) {
    toast(`${address}: ${done}`);
    return;
  }
  toast(`${verb} ${address} failed: ${result.message}`, true);
  if (result.unauthorized) showStatus('unauthorized', 'The admin token was not accepted.');
}

const view = new DashboardView(byId('listeners'), byId('pools'), (pool, address, action) => void onAction(pool, address, action));
const workers = new WorkersTable(byId('workers-section'), byId('workers'));
const cache = new CachePanel(byId('cache-section'), byId('cache-summary'), byId('cache-top'));
const peers = new PeersPanel(byId('peers-section'), byId('peers-summary'), byId('peers-alert'), byId('peers'));
const stream = new EventStream({
  snapshot(snapshot) {
    view.render(snapshot);
    workers.update(snapshot.workers ?? []);
    cache.update(snapshot.cache);
    peers.update(snapshot.peers);
    updatedEl.textContent = `updated ${formatClock(snapshot.at)}`;
    document.body.classList.remove('loading');
  },
  status: showStatus,
});

tokenButton.addEventListener('click', promptForToken);
stream.restart();
