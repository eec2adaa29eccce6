/**
 * A Deployment rollout as the EndpointSlices show it, under load, through
 * usher with two worker threads: 0 failed requests.
 *
 * Each step does what Kubernetes does with maxSurge 1, maxUnavailable 0: a
 * new pod starts (listed not ready), passes readiness (ready), then an old
 * pod is deleted: its endpoint turns terminating (still serving) while the
 * pod runs its preStop delay, the pod stops accepting and finishes what it
 * has, and its endpoint goes. Every "pod" is a real HTTP server on its own
 * loopback address; the load runs throughout, bounded in time and count.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { steadyLoad } from '../helpers/load.ts';
import { waitFor } from '../helpers/wait.ts';
import { endpointSlice, type EndpointSpec } from '../k8s-fake/objects.ts';
import { addPod, startPods, type Pod, type PodHandler } from '../k8s-fake/pods.ts';
import type { FakeApiServer } from '../k8s-fake/server.ts';
import { members, startCluster } from '../k8s-fake/usher.ts';

/** Answers after 1-4 ms, so requests are in flight at every step. */
const working: PodHandler = (req, res, pod) => {
  req.resume();
  req.on('end', () => setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain', 'x-origin': pod.name }).end(pod.name), 1 + Math.floor(Math.random() * 4)));
};

test('a rollout through EndpointSlices under load fails no request (workers: 2)', { timeout: 60_000 }, async (t) => {
  const old = await startPods(3, 'v1-', working);
  const fresh: Pod[] = [];
  t.after(async () => {
    for (const pod of [...old, ...fresh]) await pod.close().catch(() => undefined);
  });
  const port = old[0]!.port;
  // Endpoints by pod: the two slices the controller keeps, one per ReplicaSet's pods here.
  const state = new Map<Pod, EndpointSpec>();
  const publish = (fake: FakeApiServer): void => {
    const of = (prefix: string): EndpointSpec[] => [...state].filter(([pod]) => pod.name.startsWith(prefix)).map(([, e]) => e);
    fake.apply(endpointSlice('prod', 'api', 'api-v1', of('v1-'), [{ name: 'http', port }]));
    fake.apply(endpointSlice('prod', 'api', 'api-v2', of('v2-'), [{ name: 'http', port }]));
  };
  for (const pod of old) state.set(pod, { ip: pod.ip, ready: true, serving: true, terminating: false, pod: pod.name });
  const { fake, usher, pool } = await startCluster(t, { workers: 2, before: (f) => publish(f) });
  await waitFor(() => pool().discovered.length === 3, 'three v1 pods');
  await usher.settled();

  const load = steadyLoad(usher.url('web'), { concurrency: 6, maxMs: 40_000, maxRequests: 200_000 });
  let stopped = false;
  t.after(async () => {
    if (!stopped) await load.stop();
  });
  await waitFor(() => load.completed() >= 300, 'load running');

  const started = performance.now();
  for (let i = 0; i < old.length; i++) {
    // Surge: a new pod, not ready yet, then ready.
    const pod = await addPod(`v2-${i}`, old[0]!, working);
    fresh.push(pod);
    state.set(pod, { ip: pod.ip, ready: false, serving: false, terminating: false, pod: pod.name });
    publish(fake);
    const before = load.completed();
    await waitFor(() => load.completed() >= before + 100, 'load while the new pod is not ready');
    assert.equal(pod.requests, 0, 'a pod that is not ready gets no request');
    state.set(pod, { ip: pod.ip, ready: true, serving: true, terminating: false, pod: pod.name });
    publish(fake);
    await waitFor(() => pod.requests > 0, `${pod.name} serving`);

    // An old pod deleted: terminating but serving during its preStop delay, then gone.
    const leaving = old[i]!;
    state.set(leaving, { ip: leaving.ip, ready: false, serving: true, terminating: true, pod: leaving.name });
    publish(fake);
    await waitFor(() => pool().find(`${leaving.ip}:${leaving.port}`)?.terminating === true, `${leaving.name} draining`);
    await usher.settled();
    // Requests a worker sent just before it learned may still be on their way to the pod: once none is in flight,
    // the pod's count can only grow by a new pick.
    await waitFor(() => pool().find(`${leaving.ip}:${leaving.port}`)?.inFlight === 0, `${leaving.name}: nothing in flight`);
    const drainedAt = leaving.requests;
    const mid = load.completed();
    await waitFor(() => load.completed() >= mid + 100, 'load while it drains (the preStop delay)');
    assert.equal(leaving.requests, drainedAt, `${leaving.name} got new requests after every worker knew it was terminating`);
    await leaving.stop(); // stop accepting, finish what is in flight
    state.delete(leaving);
    publish(fake);
    await waitFor(() => pool().find(`${leaving.ip}:${leaving.port}`) === undefined, `${leaving.name} removed`);
  }
  const after = load.completed();
  await waitFor(() => load.completed() >= after + 200, 'load after the rollout');
  stopped = true;
  const result = await load.stop();
  const tookMs = performance.now() - started;

  assert.deepEqual(result.failures, [], `${result.failures.length} failed of ${result.ok + result.failures.length}`);
  assert.deepEqual(members(pool()), fresh.map((p) => `${p.ip}:${p.port}`).sort());
  for (const pod of [...old, ...fresh]) assert.ok((result.byOrigin.get(pod.name) ?? 0) > 0, `${pod.name} served`);
  t.diagnostic(`${result.ok} requests, 0 failed, over a ${Math.round(tookMs)} ms rollout of 3 pods`);
});
