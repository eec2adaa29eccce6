/**
 * One suite, every registered balancer: the guarantees the proxy relies on,
 * whatever the algorithm. The example custom balancers in examples/balancers/
 * are registered first, so they are held to the same contract.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { balancerNames, createBalancer, registerBalancer } from '../../src/balancer/index.ts';
import type { Accept, Balancer, BalancerDefinition, Endpoint } from '../../src/balancer/index.ts';
import { factoryOf } from '../../src/balancer/define.ts';
import leastLatency from '../../examples/balancers/least-latency.ts';
import { mulberry32 } from '../helpers/prng.ts';
import { acceptAll, acceptUntried, makeCtx, makeEndpoints, makeOptions } from './balancer-fixtures.ts';

const acceptNone: Accept = () => false;

/** Builds `name` over `endpoints`, with bounded loads on for the hash algorithms half the time. */
function build(name: string, endpoints: readonly Endpoint[], seed = 1, factor?: number): Balancer {
  return createBalancer(name, endpoints, makeOptions(seed, { now: 1000 }, factor));
}

/** Registers an example definition with `options` checked by its own schema, as the config loader does. */
async function registerExample(name: string, definition: BalancerDefinition<unknown>, options: unknown): Promise<void> {
  const checked = definition.options === undefined ? { value: undefined } : await definition.options['~standard'].validate(options);
  if (checked.issues !== undefined) throw new Error(`${name}: ${JSON.stringify(checked.issues)}`);
  registerBalancer(name, factoryOf(definition, checked.value), { hashes: definition.hashes === true });
}

await registerExample('example-least-latency', leastLatency, {});
await registerExample('example-least-latency-explore-half', leastLatency, { explore: 0.5, decayMs: 50 });

const names = balancerNames();

it('runs the examples too', () => {
  assert.ok(names.includes('example-least-latency'));
});

it('registers the seven built-ins', () => {
  for (const name of ['round-robin', 'least-connections', 'random', 'p2c', 'ewma', 'hash', 'maglev']) {
    assert.ok(names.includes(name), name);
  }
});

for (const name of names) {
  for (const factor of name === 'hash' || name === 'maglev' ? [undefined, 125] : [undefined]) {
    describe(`${name}${factor === undefined ? '' : ` (hashBalanceFactor ${factor})`} conformance`, () => {
      it('returns undefined with no endpoints', () => {
        assert.equal(build(name, [], 1, factor).pick(makeCtx(123), acceptAll), undefined);
      });

      it('returns undefined when no endpoint is accepted', () => {
        const b = build(name, makeEndpoints(5), 1, factor);
        for (let i = 0; i < 50; i++) assert.equal(b.pick(makeCtx(i * 7919), acceptNone), undefined);
      });

      it('handles a single endpoint', () => {
        const endpoints = makeEndpoints(1);
        const b = build(name, endpoints, 1, factor);
        for (let i = 0; i < 20; i++) assert.equal(b.pick(makeCtx(i * 104729), acceptAll), endpoints[0]);
        assert.equal(b.pick(makeCtx(5), acceptNone), undefined);
      });

      it('finds the one accepted endpoint, whichever it is', () => {
        const endpoints = makeEndpoints([1, 3, 1, 2, 1, 5, 1, 1]);
        const b = build(name, endpoints, 2, factor);
        const random = mulberry32(3);
        for (const target of endpoints) {
          const only: Accept = (e) => e === target;
          for (let i = 0; i < 30; i++) {
            assert.equal(b.pick(makeCtx(Math.floor(random() * 2 ** 32)), only), target);
          }
        }
      });

      it('returns only accepted endpoints, and one whenever any is accepted (random subsets)', () => {
        const random = mulberry32(42);
        const endpoints = makeEndpoints(12);
        const b = build(name, endpoints, 4, factor);
        for (let trial = 0; trial < 400; trial++) {
          for (const e of endpoints) {
            e.weight = 1 + Math.floor(random() * 5);
            e.inFlight = Math.floor(random() * 4);
          }
          const mask = Math.floor(random() * 4096);
          const accept: Accept = (e) => (mask & (1 << e.index)) !== 0;
          const picked = b.pick(makeCtx(Math.floor(random() * 2 ** 32)), accept);
          if (mask === 0) assert.equal(picked, undefined);
          else {
            assert.ok(picked !== undefined, `mask ${mask.toString(2)}: nothing picked`);
            assert.ok(accept(picked, makeCtx()), `mask ${mask.toString(2)}: picked ${picked.index}`);
          }
        }
      });

      it('honours tried through accept: retries walk through every backend once', () => {
        const endpoints = makeEndpoints(6);
        const b = build(name, endpoints, 5, factor);
        for (let key = 0; key < 20; key++) {
          const tried: number[] = [];
          for (let attempt = 0; attempt < endpoints.length; attempt++) {
            const e = b.pick(makeCtx(key * 2654435761, tried), acceptUntried);
            assert.ok(e !== undefined);
            assert.ok(!tried.includes(e.index), `attempt ${attempt} repeated ${e.index}`);
            tried.push(e.index);
          }
          assert.equal(b.pick(makeCtx(key, tried), acceptUntried), undefined);
        }
      });

      it('stays correct with zero, negative, NaN and huge weights', () => {
        const endpoints = makeEndpoints([0, -3, Number.NaN, 1, Number.POSITIVE_INFINITY, 0.0001]);
        const b = build(name, endpoints, 6, factor);
        const random = mulberry32(7);
        for (let i = 0; i < 200; i++) {
          const mask = 1 + Math.floor(random() * 63);
          const accept: Accept = (e) => (mask & (1 << e.index)) !== 0;
          const picked = b.pick(makeCtx(Math.floor(random() * 2 ** 32)), accept);
          assert.ok(picked !== undefined && accept(picked, makeCtx()), `mask ${mask}`);
        }
        const onlyZero: Accept = (e) => e.index === 0;
        assert.equal(b.pick(makeCtx(1), onlyZero), endpoints[0]);
      });

      it('never writes to endpoints', () => {
        const endpoints = makeEndpoints([1, 2, 3]).map((e) => Object.freeze({ ...e }));
        const b = build(name, endpoints, 8, factor);
        for (let i = 0; i < 100; i++) {
          const e = b.pick(makeCtx(i * 40503), acceptAll);
          assert.ok(e !== undefined);
          b.observe?.(e, 5 + (i % 7), 1000 + i);
        }
      });

      it('is deterministic given a seeded random and clock', () => {
        const run = (): number[] => {
          const endpoints = makeEndpoints([1, 2, 3, 1, 2]);
          const clock = { now: 0 };
          const b = createBalancer(name, endpoints, makeOptions(99, clock, factor));
          const load = mulberry32(11);
          const out: number[] = [];
          for (let i = 0; i < 500; i++) {
            clock.now = i * 3;
            for (const e of endpoints) e.inFlight = Math.floor(load() * 3);
            const e = b.pick(makeCtx(Math.floor(load() * 2 ** 32)), acceptAll);
            assert.ok(e !== undefined);
            b.observe?.(e, 1 + e.index * 10 + load() * 5, clock.now);
            out.push(e.index);
          }
          return out;
        };
        assert.deepEqual(run(), run());
      });

      it('uses options.random, never Math.random', (t) => {
        t.mock.method(Math, 'random', () => {
          throw new Error('Math.random called');
        });
        const endpoints = makeEndpoints([1, 2, 3]);
        const b = build(name, endpoints, 10, factor);
        for (let i = 0; i < 50; i++) assert.ok(b.pick(makeCtx(i), (e) => e.index !== i % 3) !== undefined);
      });
    });
  }
}
