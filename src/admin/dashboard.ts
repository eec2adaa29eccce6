import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The live dashboard's static assets: the page, script and stylesheet that
 * `npm run build` bundles from src/dashboard into dist/dashboard
 * (scripts/build-dashboard.ts). They are served without a token: they hold no
 * data; the page asks for the token and sends it with every API call. The
 * event stream it reads is in events.ts.
 */

export interface DashboardAsset {
  readonly contentType: string;
  readonly body: Buffer;
  /** Response headers besides the content type. */
  readonly headers: Readonly<Record<string, string>>;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** Everything from usher itself, nothing inline, no framing (the buttons change state: no clickjacking). */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

/** Where the bundle is: dist/dashboard, seen from dist/admin or (tests run from source) from src/admin. */
function bundleDir(): string {
  const relative = import.meta.url.endsWith('.ts') ? '../../dist/dashboard' : '../dashboard';
  return fileURLToPath(new URL(relative, import.meta.url));
}

const NOT_BUILT = `<!doctype html>
<meta charset="utf-8"><title>usher</title>
<p>The dashboard is not built: run <code>npm run build</code>. The admin API under <code>/api/</code> works without it.</p>
`;

let assets: ReadonlyMap<string, DashboardAsset> | undefined;

/** Reads the bundle once; a missing bundle serves a page that says so at `/`. */
function loadAssets(dir = bundleDir()): ReadonlyMap<string, DashboardAsset> {
  const map = new Map<string, DashboardAsset>();
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    // not built
  }
  for (const name of names) {
    const contentType = CONTENT_TYPES[extname(name)];
    if (contentType === undefined) continue;
    map.set(`/${name}`, { contentType, body: readFileSync(join(dir, name)), headers: SECURITY_HEADERS });
  }
  const index = map.get('/index.html') ?? { contentType: CONTENT_TYPES['.html']!, body: Buffer.from(NOT_BUILT), headers: SECURITY_HEADERS };
  map.set('/', index);
  map.set('/index.html', index);
  return map;
}

/** A static dashboard asset for `path` (`/`, `/app.js`, ...), or undefined. */
export function dashboardAsset(path: string): DashboardAsset | undefined {
  assets ??= loadAssets();
  return assets.get(path);
}
