import { SseParser } from './sse.ts';
import type { Snapshot } from './types.ts';

/**
 * The page's side of the admin API: the token (kept in sessionStorage, sent
 * as `Authorization: Bearer`, never in a URL), the event stream read with
 * fetch(), and the backend actions.
 */

const TOKEN_KEY = 'usher.adminToken';
/** No snapshot for this long (the server sends one a second): reconnect. */
const STALL_MS = 5000;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 10_000;

export function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null; // storage disabled: the token lives only as long as the page
  }
}

export function storeToken(token: string | null): void {
  try {
    if (token === null) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    // see storedToken
  }
}

let memoryToken: string | null = storedToken();

export function setToken(token: string | null): void {
  memoryToken = token;
  storeToken(token);
}

export function hasToken(): boolean {
  return memoryToken !== null;
}

function authHeaders(): Record<string, string> {
  return memoryToken === null ? {} : { authorization: `Bearer ${memoryToken}` };
}

export type StreamStatus = 'connecting' | 'live' | 'reconnecting' | 'unauthorized';

export interface StreamHandlers {
  snapshot(snapshot: Snapshot): void;
  status(status: StreamStatus, detail?: string): void;
}

/**
 * Reads /api/events until `stop()`: reconnects with backoff after errors, and
 * stops on 401 until `restart()` (after the user gave a token).
 */
export class EventStream {
  readonly #handlers: StreamHandlers;
  #controller: AbortController | undefined;
  #retryMs = RETRY_MIN_MS;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #stallTimer: ReturnType<typeof setTimeout> | undefined;
  #generation = 0;

  constructor(handlers: StreamHandlers) {
    this.#handlers = handlers;
  }

  /** (Re)connects now. */
  restart(): void {
    this.stop();
    const generation = ++this.#generation;
    void this.#run(generation);
  }

  stop(): void {
    this.#generation++;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#stallTimer);
    this.#controller?.abort();
    this.#controller = undefined;
  }

  async #run(generation: number): Promise<void> {
    const controller = new AbortController();
    this.#controller = controller;
    this.#handlers.status(this.#retryMs === RETRY_MIN_MS ? 'connecting' : 'reconnecting');
    let problem: string;
    try {
      this.#armStall(controller);
      const response = await fetch('/api/events', { headers: { ...authHeaders(), accept: 'text/event-stream' }, cache: 'no-store', signal: controller.signal });
      if (response.status === 401) {
        await response.body?.cancel();
        if (generation !== this.#generation) return;
        clearTimeout(this.#stallTimer);
        this.#handlers.status('unauthorized', hasToken() ? 'The admin token was not accepted.' : 'This usher requires an admin token.');
        return; // until restart()
      }
      if (!response.ok || response.body === null) throw new Error(`HTTP ${response.status}`);
      await this.#read(response.body, controller, generation);
      problem = 'the stream ended';
    } catch (err) {
      problem = err instanceof Error ? err.message : String(err);
    }
    if (generation !== this.#generation) return; // stopped or restarted meanwhile
    clearTimeout(this.#stallTimer);
    this.#handlers.status('reconnecting', problem);
    this.#retryTimer = setTimeout(() => {
      if (generation === this.#generation) void this.#run(generation);
    }, this.#retryMs);
    this.#retryMs = Math.min(this.#retryMs * 2, RETRY_MAX_MS);
  }

  async #read(body: ReadableStream<Uint8Array>, controller: AbortController, generation: number): Promise<void> {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    const parser = new SseParser();
    for (;;) {
      const { value, done } = await reader.read();
      if (done || generation !== this.#generation) return;
      for (const event of parser.push(decoder.decode(value, { stream: true }))) {
        if (event.type !== 'snapshot') continue;
        this.#armStall(controller);
        this.#retryMs = RETRY_MIN_MS;
        this.#handlers.status('live');
        this.#handlers.snapshot(JSON.parse(event.data) as Snapshot);
      }
    }
  }

  #armStall(controller: AbortController): void {
    clearTimeout(this.#stallTimer);
    this.#stallTimer = setTimeout(() => controller.abort(new Error('no update for 5 s')), STALL_MS);
  }
}

export type ActionResult = { readonly ok: true } | { readonly ok: false; readonly unauthorized: boolean; readonly message: string };

/** POST /api/pools/{pool}/backends/{address}/{action}. */
export async function backendAction(pool: string, address: string, action: 'drain' | 'disable' | 'enable'): Promise<ActionResult> {
  const path = `/api/pools/${encodeURIComponent(pool)}/backends/${encodeURIComponent(address)}/${action}`;
  let response: Response;
  try {
    response = await fetch(path, { method: 'POST', headers: authHeaders(), cache: 'no-store' });
  } catch (err) {
    return { ok: false, unauthorized: false, message: `cannot reach usher: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (response.ok) {
    await response.body?.cancel();
    return { ok: true };
  }
  let message = `HTTP ${response.status}`;
  try {
    const body = (await response.json()) as { error?: { message?: string } };
    if (body.error?.message !== undefined) message = body.error.message;
  } catch {
    // not JSON: keep the status
  }
  return { ok: false, unauthorized: response.status === 401, message };
}
