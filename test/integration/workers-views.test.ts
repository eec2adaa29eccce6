/**
 * What operators see of the worker threads (`runtime.workers: 2`): GET
 * /api/workers (state, restarts, connections, requests, and the rates
 * between usage reports), the usher_worker_* series on /metrics, and the
 * workers table of `usher status` and the dashboard's event stream; then a
 * worker that crashes shows as a restart everywhere, its counters carried over.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { SseParser } from '../../src/dashboard/sse.ts';
import { Usher } from '../../src/runtime/usher.ts';
import { runCli } from '../helpers/cli.ts';
import { until } from '../helpers/load.ts';
import { getOnConnection } from '../helpers/one-shot.ts';
import { startOrigin } from '../helpers/origin.ts';
import { configFromYaml } from '../helpers/usher.ts';

const crashFilter = fileURLToPath(new URL('../fixtures/filters/crash.ts', import.meta.url));

interface Worker {
  index: number;
  state: string;
  restarts: number;
  connections: number;
  requests: number;
  requestsPerSecond: number;
  cpuPercent: number;
}

/** One GET on its own TCP connection; resolves the status. */
async function getOnce(port: number, path = '/'): Promise<number> {
  return (await getOnConnection(port, path)).status;
}

/** `count` one-connection GETs, 8 at a time (or until `stop()` says so); resolves how many answered 200. */
async function getMany(port: number, count: number, stop: () => boolean = () => false): Promise<number> {
  let next = 0;
  let ok = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < count && !stop()) {
        next++;
        if ((await getOnce(port).catch(() => 0)) === 200) ok++;
      }
    }),
  );
  return ok;
}

/** The value of one sample in Prometheus text (undefined when absent). */
function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** The workers table of `usher status` as cells (split on runs of two or more spaces), header first. */
function workersTable(stdout: string): string[][] {
  const lines = stdout.trimEnd().split('\n');
  const start = lines.findIndex((line) => line.startsWith('WORKER'));
  if (start === -1) return [];
  const end = lines.findIndex((line, i) => i > start && line.trim() === '');
  return lines.slice(start, end === -1 ? undefined : end).map((line) => line.trim().split(/ {2,}/));
}

test('workers: 2 as operators see them: /api/workers, usher_worker_* metrics, usher status; a crash shows as a restart', async (t) => {
  const origin = await startOrigin('one');
  t.after(() => origin.close());
  const usher = await Usher.start(
    configFromYaml(`runtime: { workers: 2 }
accessLog: { enabled: false }
admin: { bind: 127.0.0.1:0 }
listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - pool: main
        filters:
          - module: ${crashFilter}
pools:
  main:
    backends:
      - address: ${origin.address}
`),
  );
  t.after(() => usher.stop({ timeoutMs: 1000 }));
  const adminUrl = usher.adminUrl!;
  const port = usher.address('web').port;
  const workers = async (): Promise<Worker[]> => {
    const res = await fetch(`${adminUrl}/api/workers`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { workers: Worker[] };
    assert.deepEqual(Object.keys(body), ['workers']);
    return body.workers;
  };
  const total = (list: readonly Worker[]): number => list.reduce((sum, w) => sum + w.requests, 0);

  await t.test('GET /api/workers lists both workers serving; requests add up to the requests made', async () => {
    const before = await workers();
    assert.deepEqual(
      before.map((w) => [w.index, w.state, w.restarts]),
      [[0, 'serving', 0], [1, 'serving', 0]],
    );
    for (const w of before) assert.deepEqual(Object.keys(w).sort(), ['connections', 'cpuPercent', 'index', 'requests', 'requestsPerSecond', 'restarts', 'state']);
    assert.equal(total(before), 0);
    assert.equal(await getMany(port, 200), 200);
    // Usage comes once a second from each worker.
    let list: Worker[] = [];
    await until(async () => {
      list = await workers();
      return total(list) === 200 && list.every((w) => w.connections === 0);
    }, 'both workers reporting 200 requests answered, none open', 5000, 100);
    for (const w of list) assert.ok(w.requests > 0, `worker ${w.index} answered none of 200 requests: ${JSON.stringify(list)}`);
    assert.equal((await fetch(`${adminUrl}/api/workers`, { method: 'POST' })).status, 405);
  });

  await t.test('the dashboard\'s snapshot event carries the same workers', async () => {
    const controller = new AbortController();
    const res = await fetch(`${adminUrl}/api/events`, { signal: controller.signal });
    const reader = res.body!.getReader();
    const parser = new SseParser();
    const decoder = new TextDecoder();
    let data: string | undefined;
    try {
      while (data === undefined) {
        const { value, done } = await reader.read();
        if (done) break;
        data = parser.push(decoder.decode(value, { stream: true })).find((event) => event.type === 'snapshot')?.data;
      }
    } finally {
      controller.abort();
    }
    const snapshot = JSON.parse(data!) as { workers: Worker[] };
    assert.deepEqual(
      snapshot.workers.map((w) => [w.index, w.state, w.requests]),
      (await workers()).map((w) => [w.index, w.state, w.requests]),
    );
    assert.equal(total(snapshot.workers), 200);
  });

  await t.test('requestsPerSecond and cpuPercent follow the load between usage reports, and fall back to 0 requests/s after it', async () => {
    let stopped = false;
    const load = getMany(port, 100_000, () => stopped);
    try {
      let list: Worker[] = [];
      await until(async () => {
        list = await workers();
        return list.reduce((sum, w) => sum + w.requestsPerSecond, 0) > 0 && list.some((w) => w.cpuPercent > 0);
      }, 'rates under load', 5000, 100);
      for (const w of list) {
        assert.ok(w.requestsPerSecond >= 0 && w.cpuPercent >= 0 && w.cpuPercent <= 200, JSON.stringify(list));
      }
    } finally {
      stopped = true;
      await load;
    }
    // Two usage reports without a new connection: the rate between them is 0, whatever the totals.
    let list: Worker[] = [];
    await until(async () => {
      list = await workers();
      return list.every((w) => w.requestsPerSecond === 0);
    }, 'connections per second back to 0 after the load', 5000, 100);
    assert.ok(total(list) > 200, JSON.stringify(list));
  });

  await t.test('/metrics has usher_worker_* per worker, counted once', async () => {
    const text = await (await fetch(`${adminUrl}/metrics`)).text();
    assert.match(text, /^# TYPE usher_worker_restarts_total counter$/m);
    assert.match(text, /^# TYPE usher_worker_up gauge$/m);
    assert.match(text, /^# TYPE usher_worker_connections gauge$/m);
    assert.match(text, /^# TYPE usher_worker_cpu_seconds_total counter$/m);
    for (const worker of ['0', '1']) {
      const labels = `worker="${worker}"`;
      // Declared on the main thread only: summing the workers' registries into /metrics must not double these.
      assert.equal(sample(text, 'usher_worker_up', labels), 1, text);
      assert.equal(sample(text, 'usher_worker_restarts_total', labels), 0);
      assert.equal(sample(text, 'usher_worker_connections', labels), 0);
      const cpu = sample(text, 'usher_worker_cpu_seconds_total', labels);
      assert.ok(cpu !== undefined && cpu > 0 && cpu < 600, `cpu seconds of worker ${worker}: ${cpu}`);
    }
    assert.equal(sample(text, 'usher_worker_up', 'worker="2"'), undefined);
  });

  await t.test('usher status prints a workers section (table, --json and --watch)', async () => {
    const result = await runCli(['status', '--admin', adminUrl]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^POOL {2}/m, 'the pools table is still there');
    const table = workersTable(result.stdout);
    assert.deepEqual(table[0], ['WORKER', 'STATE', 'CONNECTIONS', 'REQ/S', 'CPU%', 'RESTARTS']);
    assert.equal(table.length, 3, result.stdout);
    for (const [i, row] of table.slice(1).entries()) {
      assert.deepEqual([row[0], row[1], row[2], row[5]], [String(i), 'serving', '0', '0']);
      assert.match(row[3]!, /^\d+\.\d$/);
      assert.match(row[4]!, /^\d+\.\d$/);
    }
    const json = await runCli(['status', '--admin', adminUrl, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const body = JSON.parse(json.stdout) as { pools: { name: string }[]; workers: Worker[] };
    assert.deepEqual(body.pools.map((p) => p.name), ['main']);
    assert.deepEqual(body.workers.map((w) => [w.index, w.state]), [[0, 'serving'], [1, 'serving']]);
    const watch = await runCli(['status', '--admin', adminUrl, '--watch', '0.2', '--count', '2']);
    assert.equal(watch.code, 0, watch.stderr);
    assert.equal(watch.stdout.match(/^WORKER {2}/gm)?.length, 2, watch.stdout);
  });

  await t.test('a worker that crashes shows as a restart in the API, the metrics and usher status; its counters carry over', async () => {
    const before = await workers();
    await getOnce(port, '/crash').catch(() => 0);
    let list: Worker[] = [];
    await until(async () => {
      list = await workers();
      return list.some((w) => w.restarts === 1) && list.every((w) => w.state === 'serving');
    }, 'a worker replaced and serving again', 10_000, 50);
    const crashed = list.find((w) => w.restarts === 1)!;
    assert.deepEqual(list.map((w) => w.restarts).sort(), [0, 1]);
    // Counters never go back: the dead thread's counts stay in the worker's. (Rates are 0 until the
    // replacement reports: its first report's window holds its start-up CPU.)
    await until(async () => {
      list = await workers();
      return list[crashed.index]!.cpuPercent > 0;
    }, 'the replacement reporting', 5000, 100);
    for (const w of list) assert.ok(w.requests >= before[w.index]!.requests, `worker ${w.index}: ${w.requests} after the crash, ${before[w.index]!.requests} before`);

    const text = await (await fetch(`${adminUrl}/metrics`)).text();
    assert.equal(sample(text, 'usher_worker_restarts_total', `worker="${crashed.index}"`), 1, text);
    assert.equal(sample(text, 'usher_worker_restarts_total', `worker="${1 - crashed.index}"`), 0);
    assert.equal(sample(text, 'usher_worker_up', `worker="${crashed.index}"`), 1);

    const result = await runCli(['status', '--admin', adminUrl]);
    assert.equal(result.code, 0, result.stderr);
    const rows = workersTable(result.stdout).slice(1);
    assert.deepEqual(rows.map((row) => [row[0], row[1], row[5]]), [0, 1].map((i) => [String(i), 'serving', i === crashed.index ? '1' : '0']));
    // And it serves again.
    assert.equal(await getMany(port, 40), 40);
  });
});
