/**
 * Check 3, a stateful service behind a stateless pool, judged from what the
 * backends answered (no I/O here; `observe.ts` makes the requests).
 *
 * Backend A's response sets cookies; the same cookies are sent to A again
 * (the control) and to every other backend B. A cookie that B replaces (sets
 * again with another value), or a request B refuses (401, 403, or a redirect
 * where A did not redirect), means a session lives in A's memory: without
 * sticky sessions the next request of that client lands elsewhere and loses
 * it. A cookie that A itself replaces on the control request changes on every
 * response (a CSRF token, a rotating id) and proves nothing, so it is left out.
 * Cookie values are secrets: they are compared, never printed.
 */
import type { Outcome, Reply } from './client.ts';
import type { Finding } from './findings.ts';
import { plural } from './units.ts';

/** A `Set-Cookie` field's name and value (attributes dropped). */
export interface SetCookie {
  readonly name: string;
  readonly value: string;
  /** `Max-Age=0` or negative, or `Expires` in the past: the cookie is being deleted. */
  readonly deletes: boolean;
}

/** The cookies a response sets, in order; when one name is set twice the last wins (as in browsers). */
export function setCookies(reply: Reply, nowMs: number = Date.now()): SetCookie[] {
  const byName = new Map<string, SetCookie>();
  for (const [name, value] of reply.headers) {
    if (name !== 'set-cookie') continue;
    const cookie = parseSetCookie(value, nowMs);
    if (cookie !== undefined) byName.set(cookie.name, cookie);
  }
  return [...byName.values()];
}

/** `sid=abc; Path=/; HttpOnly` → {name: sid, value: abc}; undefined when there is no `name=` (RFC 6265 §5.2 ignores those). */
export function parseSetCookie(field: string, nowMs: number = Date.now()): SetCookie | undefined {
  const [pair = '', ...attributes] = field.split(';');
  const eq = pair.indexOf('=');
  if (eq <= 0) return undefined;
  const name = pair.slice(0, eq).trim();
  if (name === '') return undefined;
  let value = pair.slice(eq + 1).trim();
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
  let deletes = false;
  for (const attribute of attributes) {
    const at = attribute.indexOf('=');
    const key = (at === -1 ? attribute : attribute.slice(0, at)).trim().toLowerCase();
    const arg = at === -1 ? '' : attribute.slice(at + 1).trim();
    if (key === 'max-age' && /^-?\d+$/.test(arg) && Number(arg) <= 0) deletes = true;
    if (key === 'expires') {
      const when = Date.parse(arg);
      if (Number.isFinite(when) && when <= nowMs) deletes = true;
    }
  }
  return { name, value, deletes };
}

/** The `Cookie` request header a browser would send back for `cookies` (deleted ones left out). */
export function cookieHeader(cookies: readonly SetCookie[]): string {
  return cookies
    .filter((cookie) => !cookie.deletes)
    .map((cookie) => `${cookie.name}=${cookie.value}`)
    .join('; ');
}

/** What the session requests got. */
export type SessionsObservation =
  /** No backend answered the first GET. */
  | { readonly kind: 'no-answer'; readonly tried: readonly { readonly address: string; readonly message: string }[] }
  | {
      readonly kind: 'observed';
      /** Backend A, whose response set the cookies. */
      readonly origin: string;
      readonly first: Reply;
      /** A again, with its own cookies; undefined when it set none. */
      readonly control: Outcome | undefined;
      /** Every other backend, with A's cookies (empty when A set none). */
      readonly others: readonly { readonly address: string; readonly outcome: Outcome }[];
    };

/** How one other backend treated A's cookies. */
interface Rejection {
  readonly address: string;
  /** "replaced sid", "answered 401", "redirected to /login". */
  readonly how: string;
  readonly cookies: readonly string[];
}

/** The pool-level finding of check 3. */
export function sessionsFinding(observation: SessionsObservation, pool: string, path: string): Finding {
  const request = `GET ${path}`;
  if (observation.kind === 'no-answer') {
    return { check: 'sessions', severity: 'skip', message: `no backend answered ${request} (${observation.tried.map((t) => `${t.address}: ${t.message}`).join('; ')})` };
  }
  const { origin, first, control, others } = observation;
  const cookies = setCookies(first).filter((cookie) => !cookie.deletes);
  if (cookies.length === 0) {
    return {
      check: 'sessions',
      severity: 'ok',
      message: `${request} on ${origin} sets no cookie: nothing ties a client to one backend (sessions that start only after a login are not seen; try --path)`,
      measured: { origin, cookies: '' },
    };
  }
  // Cookies A itself replaces when they come back change on every response: not a session.
  const rotating = new Set<string>();
  if (control?.ok === true) {
    for (const again of setCookies(control.reply)) {
      const mine = cookies.find((cookie) => cookie.name === again.name);
      if (mine !== undefined && (again.value !== mine.value || again.deletes)) rotating.add(again.name);
    }
  }
  const tracked = cookies.filter((cookie) => !rotating.has(cookie.name));
  const names = (list: readonly { readonly name: string }[]): string => list.map((cookie) => cookie.name).join(', ');
  if (tracked.length === 0) {
    return {
      check: 'sessions',
      severity: 'ok',
      message: `cookie${cookies.length === 1 ? '' : 's'} ${names(cookies)} from ${origin} change${cookies.length === 1 ? 's' : ''} on every response, even from ${origin} itself: no session to compare`,
      measured: { origin, cookies: names(cookies), rotating: names(cookies) },
    };
  }
  const answered = others.filter((other) => other.outcome.ok);
  if (answered.length === 0) {
    return { check: 'sessions', severity: 'skip', message: `no other backend answered ${request} with ${origin}'s cookies (${names(tracked)})`, measured: { origin, cookies: names(tracked) } };
  }
  const rejections: Rejection[] = [];
  for (const other of answered) {
    if (!other.outcome.ok) continue;
    const rejection = rejectionBy(other.address, first, other.outcome.reply, tracked);
    if (rejection !== undefined) rejections.push(rejection);
  }
  if (rejections.length === 0) {
    return {
      check: 'sessions',
      severity: 'ok',
      message: `${plural(answered.length, 'other backend')} accepted cookie${tracked.length === 1 ? '' : 's'} ${names(tracked)} set by ${origin} (not replaced, no 401/403, no redirect)`,
      measured: { origin, cookies: names(tracked), rejectedBy: '' },
    };
  }
  const rejected = [...new Set(rejections.flatMap((rejection) => rejection.cookies))];
  const label = rejected.length > 0 ? rejected.join(', ') : names(tracked);
  return {
    check: 'sessions',
    severity: 'problem',
    message: `backends set session cookie ${label} that another backend does not accept: ${origin} set it, ${rejections.map((rejection) => `${rejection.address} ${rejection.how}`).join(', ')}; a client moved to another backend loses its session`,
    fix: `add \`sticky: { cookie: usher_sticky }\` to pools.${pool} so each client stays on one backend, or keep sessions in a shared store (e.g. Redis) instead of process memory`,
    measured: { origin, cookies: label, rejectedBy: rejections.map((rejection) => rejection.address).join(', ') },
  };
}

/** How `reply` of backend `address` refused the cookies A set, or undefined when it accepted them. */
function rejectionBy(address: string, first: Reply, reply: Reply, tracked: readonly SetCookie[]): Rejection | undefined {
  const replaced = setCookies(reply).filter((again) => tracked.some((cookie) => cookie.name === again.name && (cookie.value !== again.value || again.deletes)));
  if (replaced.length > 0) {
    const list = replaced.map((cookie) => cookie.name);
    return { address, how: `${replaced.some((cookie) => cookie.deletes) ? 'deleted or replaced' : 'replaced'} ${list.join(', ')}`, cookies: list };
  }
  if (reply.status === 401 || reply.status === 403) return { address, how: `answered ${reply.status}`, cookies: [] };
  const redirect = (status: number): boolean => status >= 300 && status < 400 && status !== 304;
  if (redirect(reply.status) && !redirect(first.status)) {
    const location = reply.headers.find(([name]) => name === 'location')?.[1];
    return { address, how: `redirected (${reply.status}${location === undefined ? '' : ` to ${location.slice(0, 80)}`})`, cookies: [] };
  }
  return undefined;
}
