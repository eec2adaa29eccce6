import type { UsherConfig } from '../config/types.ts';
import { UsageError } from './exit-codes.ts';

/** Where a running usher's admin API is, and the token to send. */
export interface AdminEndpoint {
  readonly url: string;
  readonly token: string | undefined;
}

/** The options `usher reload` and `usher status` share. */
export interface AdminOptions {
  readonly config?: string | undefined;
  readonly admin?: string | undefined;
  readonly token?: string | undefined;
}

/**
 * Finds the admin API the way `usher reload` and `usher status` both do:
 * `--admin URL`, else `admin.bind` of the `-c FILE` config; the token from
 * `--token`, else `$USHER_ADMIN_TOKEN`, else the file's `admin.token`.
 * `load` reads and reports the file (undefined when it is invalid).
 * Returns a message instead when the file has no admin section.
 *
 * @throws UsageError when neither `--admin` nor `-c` is given.
 */
export function adminEndpoint(options: AdminOptions, load: (file: string) => UsherConfig | undefined): AdminEndpoint | { readonly error: string } | undefined {
  let token = options.token ?? process.env['USHER_ADMIN_TOKEN'];
  if (options.admin !== undefined) return { url: options.admin, token };
  if (options.config === undefined) throw new UsageError('give -c FILE (its admin section says where usher listens) or --admin URL');
  const config = load(options.config);
  if (config === undefined) return undefined;
  if (config.admin === undefined) return { error: `${options.config} has no admin section; add admin.bind` };
  const { host, port } = config.admin.bind;
  token ??= config.admin.token;
  return { url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`, token };
}

/** What the admin API answered (its JSON body), or why it could not be reached. */
export type AdminAnswer =
  | { readonly reached: true; readonly ok: boolean; readonly status: number; readonly body: unknown }
  | { readonly reached: false; readonly message: string };

/** Calls the admin API; a network error or timeout becomes a message an operator can act on. */
export async function callAdmin(endpoint: AdminEndpoint, method: string, path: string, timeoutMs = 30_000): Promise<AdminAnswer> {
  let response: Response;
  try {
    response = await fetch(new URL(path, endpoint.url), {
      method,
      headers: endpoint.token === undefined ? {} : { authorization: `Bearer ${endpoint.token}` },
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    return { reached: false, message: `cannot reach the admin API at ${endpoint.url}: ${(err as Error).message}` };
  }
  const body = (await response.json().catch(() => ({}))) as unknown;
  return { reached: true, ok: response.ok, status: response.status, body };
}

/** The admin API's own message for an error answer (`{ error: { message } }`), else its status. */
export function errorMessage(answer: { readonly status: number; readonly body: unknown }): string {
  return (answer.body as { error?: { message?: string } } | undefined)?.error?.message ?? `HTTP ${answer.status}`;
}
