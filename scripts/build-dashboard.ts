/**
 * Bundles the dashboard (src/dashboard) into dist/dashboard: app.js, app.css
 * and index.html, which the admin listener serves (src/admin/dashboard.ts).
 * Run by `npm run build` after tsc. Everything is local: no CDN, no web fonts.
 */
import { copyFileSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const source = join(root, 'src/dashboard');
const out = join(root, 'dist/dashboard');

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(source, 'app.ts'), join(source, 'app.css')],
  outdir: out,
  bundle: true,
  format: 'iife',
  platform: 'browser',
  // Browsers of the last few years: <dialog>, fetch streams, CSS min().
  target: ['chrome111', 'firefox113', 'safari16.4'],
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
  tsconfig: join(source, 'tsconfig.json'),
});
copyFileSync(join(source, 'index.html'), join(out, 'index.html'));

const sizes = readdirSync(out).map((name) => `${name} ${(statSync(join(out, name)).size / 1024).toFixed(1)} KiB`);
process.stdout.write(`dashboard: ${sizes.join(', ')}\n`);
