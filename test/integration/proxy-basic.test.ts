import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { Client, request } from 'undici';
import { startOrigins } from '../helpers/origin.ts';
import { simpleYaml, startUsher } from '../helpers/usher.ts';

test('balances per request over one keep-alive client connection', async (t) => {
  const origins = await startOrigins(3);
  const usher = await startUsher(simpleYaml(origins.map((o) => o.address), { algorithm: 'round-robin' }));
  t.after(async () => {
    await usher.stop({ timeoutMs: 1000 });
    await Promise.all(origins.map((o) => o.close()));
  });

  // One client connection, sequential requests: an L4 balancer would send all of them to one backend.
  const client = new Client(usher.url('web'), { pipelining: 1, connections: 1 } as Client.Options);
  t.after(() => client.close());
  const names: string[] = [];
  for (let i = 0; i < 30; i++) {
    const res = await client.request({ path: `/n/${i}`, method: 'GET' });
    assert.equal(res.statusCode, 200);
    names.push(await res.body.text());
  }
  for (const origin of origins) assert.equal(names.filter((n) => n === origin.name).length, 10, `${origin.name} gets a third`);
  // Round-robin is an exact cycle.
  assert.deepEqual(names.slice(0, 6), [names[0], names[1], names[2], names[0], names[1], names[2]]);
  assert.equal(new Set(names.slice(0, 3)).size, 3);
});

test('reuses upstream connections instead of opening one per request', async (t) => {
  const origins = await startOrigins(1);
  const usher = await startUsher(simpleYaml([origins[0]!.address]));
  t.after(async () => {
    await usher.stop({ timeoutMs: 1000 });
    await origins[0]!.close();
  });
  for (let i = 0; i < 50; i++) {
    const res = await request(`${usher.url('web')}/r${i}`);
    assert.equal(res.statusCode, 200);
    await res.body.text();
  }
  assert.equal(origins[0]!.seen.length, 50);
  assert.ok(origins[0]!.connections <= 2, `50 sequential requests used ${origins[0]!.connections} upstream connections`);
});

test('forwards method, path, query and body unchanged', async (t) => {
  const origins = await startOrigins(1, 'echo', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => res.writeHead(201, { 'x-method': req.method ?? '' }).end(`${req.url}|${Buffer.concat(chunks).toString()}`));
  });
  const usher = await startUsher(simpleYaml([origins[0]!.address]));
  t.after(async () => {
    await usher.stop({ timeoutMs: 1000 });
    await origins[0]!.close();
  });
  const res = await request(`${usher.url('web')}/a/b?x=1&y=%20`, { method: 'POST', body: 'hello body' });
  assert.equal(res.statusCode, 201);
  assert.equal(res.headers['x-method'], 'POST');
  assert.equal(await res.body.text(), '/a/b?x=1&y=%20|hello body');

  // Chunked request body (no content-length) is re-framed upstream.
  async function* parts() {
    yield Buffer.from('part1-');
    yield Buffer.from('part2');
  }
  const chunked = await request(`${usher.url('web')}/c`, { method: 'PUT', body: Readable.from(parts()) });
  assert.equal(await chunked.body.text(), '/c|part1-part2');
  // Re-framed, never both: usher frames the body itself (chunked, or a length when it is already complete).
  const framing = origins[0]!.seen[1]!.headers;
  assert.ok((framing['transfer-encoding'] === 'chunked') !== (framing['content-length'] === '11'), JSON.stringify(framing));
});
