/**
 * `usher/backend` stays dependency-free: every import in src/backend is a
 * node: built-in or a sibling, and the built package exports it as a subpath
 * (`usher/backend`) that loads without usher's own dependencies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const KIT = fileURLToPath(new URL('../../src/backend/', import.meta.url));

/** Module specifiers of static imports and re-exports, side-effect imports, dynamic import() and require(). */
function specifiers(source: string): string[] {
  const found: string[] = [];
  const patterns = [
    /^\s*(?:import|export)\s[^;]*?\sfrom\s*['"]([^'"]+)['"]/gms,
    /^\s*import\s*['"]([^'"]+)['"]/gm,
    /\bimport\s*\(\s*['"`]([^'"`]+)['"`]\s*\)/g,
    /\brequire\s*\(\s*['"`]([^'"`]+)['"`]\s*\)/g,
  ];
  for (const pattern of patterns) for (const match of source.matchAll(pattern)) found.push(match[1]!);
  return found;
}

test('every import in src/backend/*.ts is a node: built-in or a sibling module of src/backend', () => {
  const files = readdirSync(KIT).filter((name) => name.endsWith('.ts'));
  assert.ok(files.includes('index.ts') && files.length >= 8, `kit files: ${files.join(', ')}`);
  // Nothing but files: a subfolder would escape the "sibling" rule.
  assert.deepEqual(readdirSync(KIT, { withFileTypes: true }).filter((e) => !e.isFile()).map((e) => e.name), []);
  const bad: string[] = [];
  let count = 0;
  for (const file of files) {
    const source = readFileSync(`${KIT}${file}`, 'utf8');
    for (const spec of specifiers(source)) {
      count++;
      const sibling = /^\.\/[\w-]+\.ts$/.test(spec) && files.includes(spec.slice(2));
      if (!spec.startsWith('node:') && !sibling) bad.push(`${file}: ${spec}`);
    }
  }
  assert.ok(count >= 20, `found only ${count} imports: the scan is broken`);
  assert.deepEqual(bad, [], 'imports outside node: and src/backend');
  // The scan itself sees every form of import.
  assert.deepEqual(specifiers(`import a from 'x';\nimport type { B } from "y";\nexport { c } from './z.ts';\nimport 'side';\nconst d = await import('dyn');\nrequire("req");\nimport {\n  e,\n} from 'multi';`), [
    'x',
    'y',
    './z.ts',
    'multi',
    'side',
    'dyn',
    'req',
  ]);
});

test('the built package exports usher/backend (types and code), and "." still works', () => {
  const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { exports: Record<string, { types: string; default: string }> };
  assert.deepEqual(pkg.exports['./backend'], { types: './dist/backend/index.d.ts', default: './dist/backend/index.js' });
  assert.deepEqual(pkg.exports['.'], { types: './dist/index.d.ts', default: './dist/index.js' });
  for (const entry of Object.values(pkg.exports)) {
    for (const path of [entry.types, entry.default]) assert.ok(existsSync(`${ROOT}${path}`), `${path} is missing: run "npm run build" (npm test does it)`);
  }
  // Imported by package name (self-reference) in a fresh process, which reports what it loaded.
  const script = `
    const kit = await import('usher/backend');
    const main = await import('usher');
    console.log(JSON.stringify({ kit: Object.keys(kit).sort(), main: typeof main.Usher }));
  `;
  // Every module the kit's entry point pulls in, recorded by a resolve hook.
  const loadedByKit = `
    const { registerHooks } = await import('node:module');
    const seen = [];
    registerHooks({ resolve(specifier, context, next) { const result = next(specifier, context); seen.push(result.url); return result; } });
    await import('usher/backend');
    console.log(JSON.stringify(seen));
  `;
  const run = (code: string): string => {
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    assert.equal(result.status, 0, result.stderr);
    return result.stdout;
  };
  const { kit, main } = JSON.parse(run(script)) as { kit: string[]; main: string };
  for (const name of ['createHealth', 'gracefulShutdown', 'expressHealth', 'fastifyHealth', 'fastifyShutdown', 'honoHealth', 'honoShutdown', 'shutdownExitCodes']) {
    assert.ok(kit.includes(name), `usher/backend exports ${name}: ${kit.join(', ')}`);
  }
  assert.equal(main, 'function');
  // The built kit works on its own, and a pending check's timeout keeps the process alive until the answer.
  const answered = run(`
    const { createHealth } = await import('usher/backend');
    const health = createHealth({ checkTimeoutMs: 50, checks: { db: () => new Promise(() => {}) } });
    const answer = await health.answer('GET', '/health');
    console.log(answer.status, answer.body);
  `);
  assert.equal(answered, '503 {"status":"unavailable","failed":["db"],"checks":{"db":{"ok":false,"error":"timed out after 50 ms","ms":50}}}\n');
  const loaded = JSON.parse(run(loadedByKit)) as string[];
  const kitDir = new URL('dist/backend/', `file://${ROOT}`).href;
  assert.ok(loaded.includes(`${kitDir}index.js`), loaded.join('\n'));
  assert.deepEqual(loaded.filter((url) => !url.startsWith('node:') && !url.startsWith(kitDir)), [], 'modules outside dist/backend loaded by usher/backend');
});
