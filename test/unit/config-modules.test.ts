/**
 * Balancer modules named in the config (`algorithm: { module, options }`):
 * loading relative to the config file, option checks with file:line:col
 * errors, and every way a module can fail to load, each a config error that
 * names the file and why.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { algorithmHashes, algorithmName, createAlgorithm } from '../../src/balancer/algorithm.ts';
import { registerBalancer } from '../../src/balancer/registry.ts';
import { formatIssue, parseConfig, resolveModules, type ConfigResult } from '../../src/config/index.ts';
import type { BalancerModuleConfig, UsherConfig } from '../../src/config/types.ts';
import { Usher } from '../../src/runtime/usher.ts';
import { UsherConfigError } from '../../src/errors.ts';
import { acceptAll, makeCtx, makeEndpoints, makeOptions } from './balancer-fixtures.ts';

const example = fileURLToPath(new URL('../../examples/balancers/least-latency.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'usher-modules-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A Standard Schema by hand (no dependency in the temp directory): `{ reverse?: boolean }`. */
const reverseSchema = `{
  '~standard': {
    version: 1,
    vendor: 'test',
    validate(value: unknown) {
      const options = (value ?? {}) as { reverse?: unknown };
      if (options.reverse !== undefined && typeof options.reverse !== 'boolean') {
        return { issues: [{ message: 'reverse must be true or false', path: [{ key: 'reverse' }] }] };
      }
      return { value: { reverse: options.reverse === true } };
    },
  },
}`;

const modules: Readonly<Record<string, string>> = {
  'first.ts': `export default {
  name: 'first-available',
  options: ${reverseSchema},
  create(endpoints: readonly { index: number }[], options: { reverse: boolean }) {
    const order = options.reverse ? [...endpoints].reverse() : endpoints;
    return { pick: (ctx: unknown, accept: (e: unknown, ctx: unknown) => boolean) => order.find((e) => accept(e, ctx)) };
  },
};
`,
  'hashing.ts': `export default {
  name: 'by-hash',
  hashes: true,
  create(endpoints: readonly unknown[]) {
    return { pick: (ctx: { hash: number }) => endpoints[ctx.hash % endpoints.length] };
  },
};
`,
  'factory.mjs': `export default function lastone(endpoints) { return { pick: (ctx, accept) => [...endpoints].reverse().find((e) => accept(e, ctx)) }; }\n`,
  'no-default.ts': `export const balancer = 1;\n`,
  'picky.ts': `export default {
  name: 'picky',
  create(endpoints: readonly unknown[]) {
    if (endpoints.length > 1) throw new Error('one backend at most');
    return { pick: () => endpoints[0] };
  },
};
`,
  'not-a-balancer.ts': `export default { name: 'Bad Name', create: 3 };\n`,
  'enum.ts': `enum Mode { A }\nexport default Mode;\n`,
  'syntax.ts': `export default {\n  name: 'x',\n  create: = 2,\n};\n`,
  'throws.ts': `const x: number = 1;\nif (x === 1) throw new Error('no database here');\nexport default {};\n`,
  'missing-import.ts': `import helper from './helper-that-is-not-there.ts';\nexport default helper;\n`,
};
for (const [name, text] of Object.entries(modules)) writeFileSync(join(dir, name), text);

/** A config in `dir` whose pool `p` uses `algorithm` (YAML text) and `extra` pool keys. */
function yaml(algorithm: string, extra = ''): string {
  return `listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: p
pools:
  p:
    algorithm: ${algorithm}
${extra}    backends:
      - address: 127.0.0.1:3001
      - address: 127.0.0.1:3002
`;
}

async function load(text: string): Promise<ConfigResult> {
  return resolveModules(parseConfig(text, join(dir, 'usher.yaml'), {}));
}

async function errorsOf(text: string): Promise<string[]> {
  const result = await load(text);
  assert.ok(!result.ok, 'expected the config to be rejected');
  return result.errors.map(formatIssue);
}

function moduleOf(config: UsherConfig): BalancerModuleConfig {
  const algorithm = config.pools['p']!.algorithm;
  assert.ok(typeof algorithm !== 'string');
  return algorithm;
}

describe('balancer modules', () => {
  it('loads a module relative to the config file, checks its options and builds balancers with them', async () => {
    const result = await load(yaml('{ module: ./first.ts, options: { reverse: true } }'));
    assert.ok(result.ok, result.ok ? '' : result.errors.map(formatIssue).join('\n'));
    const algorithm = moduleOf(result.config);
    assert.equal(algorithm.module, join(dir, 'first.ts'), 'the path is made absolute against the config file');
    assert.equal(algorithmName(algorithm), 'first-available');
    assert.equal(algorithmHashes(algorithm), false);
    const endpoints = makeEndpoints(3);
    const balancer = createAlgorithm(algorithm, endpoints, makeOptions());
    assert.equal(balancer.pick(makeCtx(), acceptAll), endpoints[2], 'options reached create(): reversed order');
    assert.equal(balancer.pick(makeCtx(), (e) => e.index < 2), endpoints[1]);
  });

  it('gives options their defaults through the schema (the example balancer, written with zod)', async () => {
    const result = await load(yaml(`{ module: ${example} }`));
    assert.ok(result.ok, result.ok ? '' : result.errors.map(formatIssue).join('\n'));
    assert.equal(algorithmName(moduleOf(result.config)), 'least-latency');
  });

  it('reports option errors at their line and key, as file:line:col path: message', async () => {
    const errors = await errorsOf(yaml(`
      module: ${example}
      options:
        explore: 2
        decayMs: soon
        surprise: 1`));
    // Sorted by position: the unknown key is reported on the options mapping, which starts first.
    assert.deepEqual(errors.map((e) => e.replace(/: .*$/, '')), [
      `${join(dir, 'usher.yaml')}:11:9 pools.p.algorithm.options`,
      `${join(dir, 'usher.yaml')}:11:18 pools.p.algorithm.options.explore`,
      `${join(dir, 'usher.yaml')}:12:18 pools.p.algorithm.options.decayMs`,
    ]);
    assert.match(errors[0]!, /surprise/);
    assert.match(errors[1]!, /options\.explore: .*(<=|at most|too big).*1/i);
    assert.match(errors[2]!, /options\.decayMs: .*number/i);
  });

  it('reports a hand-written Standard Schema issue at its key path', async () => {
    const errors = await errorsOf(yaml('{ module: ./first.ts, options: { reverse: "yes" } }'));
    assert.deepEqual(errors, [`${join(dir, 'usher.yaml')}:8:58 pools.p.algorithm.options.reverse: reverse must be true or false`]);
  });

  it('refuses options for a balancer that takes none', async () => {
    const errors = await errorsOf(yaml('{ module: ./hashing.ts, options: { x: 1 } }'));
    assert.match(errors[0]!, /:8:\d+ pools\.p\.algorithm\.options: balancer "by-hash" takes no options/);
  });

  it('lets a balancer that hashes use hashKey, and refuses hashKey for one that does not', async () => {
    const hashing = await load(yaml('{ module: ./hashing.ts }', '    hashKey: header:x-user\n'));
    assert.ok(hashing.ok, hashing.ok ? '' : hashing.errors.map(formatIssue).join('\n'));
    assert.equal(algorithmHashes(moduleOf(hashing.config)), true);
    const errors = await errorsOf(yaml('{ module: ./first.ts }', '    hashKey: header:x-user\n'));
    assert.match(errors[0]!, /:9:5 pools\.p\.hashKey: hashKey only applies to algorithms that hash, and balancer "first-available" does not/);
  });

  it('accepts a bare factory function as the default export', async () => {
    const result = await load(yaml('{ module: ./factory.mjs }'));
    assert.ok(result.ok, result.ok ? '' : result.errors.map(formatIssue).join('\n'));
    assert.equal(algorithmName(moduleOf(result.config)), 'lastone');
  });

  it('turns every way a module can fail to load into a config error naming the file and why', async () => {
    const cases: readonly (readonly [string, RegExp])[] = [
      ['./nowhere.ts', /cannot load .*nowhere\.ts: no such file \(ENOENT\)/],
      ['./no-default.ts', /no-default\.ts: has no default export; export default defineBalancer/],
      ['./not-a-balancer.ts', /not-a-balancer\.ts: its default export is not a balancer: name must match/],
      ['./enum.ts', /cannot load .*enum\.ts: unsupported TypeScript.*enum.*erasable syntax only/],
      ['./syntax.ts', /cannot load .*syntax\.ts: syntax error \(line 3\)/],
      ['./throws.ts', /cannot load .*throws\.ts: it threw while loading \(line 2\): no database here/],
      ['./missing-import.ts', /cannot load .*missing-import\.ts: an import cannot be resolved: .*helper-that-is-not-there\.ts/],
      ['.', /cannot load .*: it is not a file/],
    ];
    for (const [file, expected] of cases) {
      const errors = await errorsOf(yaml(`{ module: ${file} }`));
      assert.equal(errors.length, 1, file);
      assert.match(errors[0]!, /usher\.yaml:8:\d+ pools\.p\.algorithm\.module: /, file);
      assert.match(errors[0]!, expected, file);
    }
  });

  it('builds the balancer once over the file\'s backends: a create() that throws is a config error', async () => {
    const errors = await errorsOf(yaml('{ module: ./picky.ts }'));
    assert.deepEqual(errors.map((e) => e.replace(/^.*usher\.yaml:\d+:\d+ /, '')), [
      'pools.p.algorithm.module: balancer "picky": create() threw over this pool\'s primary backends: one backend at most',
    ]);
  });

  it('keeps parseConfig synchronous and module-free: the module is loaded only by resolveModules', () => {
    const result = parseConfig(yaml('{ module: ./nowhere.ts }'), join(dir, 'usher.yaml'), {});
    assert.ok(result.ok);
    assert.equal(moduleOf(result.config).loaded, undefined);
  });

  it('reports an unknown name with the known ones and a suggestion, and accepts a name registered before loading', async () => {
    const unknown = parseConfig(yaml('least-latency'), join(dir, 'usher.yaml'), {});
    assert.ok(!unknown.ok);
    assert.match(formatIssue(unknown.errors[0]!), /pools\.p\.algorithm: expected one of p2c, .*maglev, or a balancer module \(\{ module: \.\/balancer\.ts \}\), got "least-latency"/);
    const typo = parseConfig(yaml('round-robbin'), join(dir, 'usher.yaml'), {});
    assert.ok(!typo.ok);
    assert.match(formatIssue(typo.errors[0]!), /\(did you mean "round-robin"\?\), got "round-robbin"/);
    registerBalancer('test-registered', (endpoints) => ({ pick: (ctx, accept) => endpoints.find((e) => accept(e, ctx)) }));
    const registered = parseConfig(yaml('test-registered'), join(dir, 'usher.yaml'), {});
    assert.ok(registered.ok);
    assert.equal(registered.config.pools['p']!.algorithm, 'test-registered');
  });

  it('Usher.start loads the modules of a config it is given, and refuses one that does not load', async () => {
    const parsed = parseConfig(yaml('{ module: ./first.ts }'), join(dir, 'usher.yaml'), {});
    assert.ok(parsed.ok);
    const usher = await Usher.start(parsed.config);
    try {
      assert.equal(algorithmName(usher.snapshot.pools.get('p')!.control.config.algorithm), 'first-available');
    } finally {
      await usher.stop({ timeoutMs: 0 });
    }
    const broken = parseConfig(yaml('{ module: ./throws.ts }'), join(dir, 'usher.yaml'), {});
    assert.ok(broken.ok);
    await assert.rejects(Usher.start(broken.config), (error: unknown) => {
      assert.ok(error instanceof UsherConfigError);
      assert.match(error.details.join('\n'), /usher\.yaml:8:\d+ pools\.p\.algorithm\.module: cannot load .*throws\.ts: it threw while loading/);
      return true;
    });
  });
});
