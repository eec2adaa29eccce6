/**
 * Slowloris: many connections that each trickle a request head one byte at a
 * time (or send nothing at all) must be closed by usher's client timeouts,
 * while an ordinary client keeps being served quickly throughout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { startOrigin } from '../helpers/origin.ts';
import { startUsher } from '../helpers/usher.ts';
import type { Usher } from '../../src/runtime/usher.ts';
import { waitFor as until } from '../helpers/wait.ts';

const ATTACKERS = 200;
const BYTE_INTERVAL_MS = 100;

/** One attacking connection and what happened to it. */
interface Attacker {
  readonly socket: Socket;
  sent: number;
  firstByteAt: number;
  closedAt: number;
  received: string;
  reset: boolean;
}


async function openAttacker(port: number): Promise<Attacker> {
  const socket = connect(port, '127.0.0.1');
  const attacker: Attacker = { socket, sent: 0, firstByteAt: 0, closedAt: 0, received: '', reset: false };
  socket.setNoDelay(true);
  socket.on('data', (chunk: Buffer) => (attacker.received += chunk.toString('latin1')));
  socket.on('error', () => (attacker.reset = true));
  socket.on('close', () => (attacker.closedAt = performance.now()));
  await once(socket, 'connect');
  return attacker;
}

/** Opens `count` connections, a few at a time so the accept backlog never overflows. */
async function openAttackers(port: number, count: number): Promise<Attacker[]> {
  const attackers: Attacker[] = [];
  for (let i = 0; i < count; i += 25) {
    attackers.push(...(await Promise.all(Array.from({ length: Math.min(25, count - i) }, () => openAttacker(port)))));
  }
  return attackers;
}

/** One GET on a fresh connection (connect included); resolves with its status and latency. */
async function timedGet(port: number, path: string): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  const socket = connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  let data = '';
  socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
  const closed = new Promise<void>((resolve, reject) => {
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
  await once(socket, 'connect');
  socket.write(`GET ${path} HTTP/1.1\r\nHost: usher.test\r\nConnection: close\r\n\r\n`);
  const timer = setTimeout(() => socket.destroy(new Error(`no answer to GET ${path} within 5 s`)), 5000);
  await closed.finally(() => clearTimeout(timer));
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(data)?.[1] ?? 0);
  return { status, ms: performance.now() - started };
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function startPair(t: { after(fn: () => Promise<void>): void }, timeouts: string): Promise<{ usher: Usher; port: number }> {
  const origin = await startOrigin('o');
  const usher = await startUsher(`listeners:
  - name: web
    bind: 127.0.0.1:0
    timeouts: ${timeouts}
    routes:
      - pool: main
pools:
  main:
    backends:
      - address: ${origin.address}
`);
  t.after(async () => {
    await usher.stop({ timeoutMs: 200 });
    await origin.close();
  });
  return { usher, port: usher.address('web').port };
}

/** Sequential GETs, `gapMs` apart: at least `count`, and on while `attackOn()` holds (at most 300). */
async function normalClient(port: number, count: number, gapMs: number, attackOn: () => boolean): Promise<{ status: number; ms: number }[]> {
  const results: { status: number; ms: number }[] = [];
  for (let i = 0; i < 300 && (i < count || attackOn()); i++) {
    results.push(await timedGet(port, `/normal${i}`));
    await new Promise((resolve) => setTimeout(resolve, gapMs));
  }
  return results;
}

test(`slowloris: ${ATTACKERS} connections trickling a head one byte per ${BYTE_INTERVAL_MS} ms are all closed after timeouts.header; a normal client stays fast`, async (t) => {
  const headerTimeoutMs = 1000;
  const { port } = await startPair(t, '{ header: 1s }');
  const attackers = await openAttackers(port, ATTACKERS);
  t.after(() => {
    for (const a of attackers) a.socket.destroy();
  });
  // A head that could never complete within the timeout at this rate.
  const head = Buffer.from(`GET /slow HTTP/1.1\r\nHost: usher.test\r\nX-Slow: ${'s'.repeat(200)}\r\n\r\n`, 'latin1');
  const tick = (): void => {
    const now = performance.now();
    for (const a of attackers) {
      if (a.closedAt > 0 || a.socket.destroyed || a.sent >= head.length) continue;
      if (a.sent === 0) a.firstByteAt = now;
      a.socket.write(head.subarray(a.sent, a.sent + 1));
      a.sent++;
    }
  };
  tick();
  const interval = setInterval(tick, BYTE_INTERVAL_MS);
  t.after(() => clearInterval(interval));

  // Meanwhile, an ordinary client: GETs on fresh connections (at least 50) until the last attacker is gone.
  const normal = await normalClient(port, 50, 20, () => attackers.some((a) => a.closedAt === 0));
  const bound = headerTimeoutMs + BYTE_INTERVAL_MS + 500;
  await until(() => attackers.every((a) => a.closedAt > 0), 'every attacking connection to close', bound + 2000);
  clearInterval(interval);

  const lifetimes = attackers.map((a) => a.closedAt - a.firstByteAt);
  const with408 = attackers.filter((a) => /^HTTP\/1\.1 408 /.test(a.received) && /x-usher-error: header_timeout\r\n/.test(a.received)).length;
  const resets = attackers.filter((a) => a.reset).length;
  const maxBytes = Math.max(...attackers.map((a) => a.sent));
  const latencies = normal.map((r) => r.ms);
  t.diagnostic(
    `attackers: ${attackers.length} closed, ${with408} with 408 header_timeout, ${resets} reset; lifetime min ${Math.min(...lifetimes).toFixed(0)} ` +
      `p50 ${percentile(lifetimes, 50).toFixed(0)} max ${Math.max(...lifetimes).toFixed(0)} ms; at most ${maxBytes} bytes sent each`,
  );
  t.diagnostic(
    `normal client: ${normal.filter((r) => r.status === 200).length}/${normal.length} ok; latency p50 ${percentile(latencies, 50).toFixed(1)} ` +
      `p99 ${percentile(latencies, 99).toFixed(1)} max ${Math.max(...latencies).toFixed(1)} ms`,
  );

  assert.equal(attackers.filter((a) => a.closedAt > 0).length, ATTACKERS, 'every attacking connection was closed');
  assert.equal(with408 + attackers.filter((a) => a.received === '' && a.reset).length, ATTACKERS, 'each got a 408 header_timeout (or a reset)');
  assert.ok(Math.min(...lifetimes) >= headerTimeoutMs - 50, `none closed before the header timeout (min ${Math.min(...lifetimes).toFixed(0)} ms)`);
  assert.ok(Math.max(...lifetimes) <= bound, `all closed within ${bound} ms of their first byte (max ${Math.max(...lifetimes).toFixed(0)} ms)`);
  assert.ok(maxBytes < 20, `no attacker got to send more than ${maxBytes} bytes`);
  assert.ok(normal.length >= 50);
  assert.equal(normal.filter((r) => r.status === 200).length, normal.length, 'every normal request was served');
  // Latency on a shared 2-core machine: allow two scheduling hiccups, never a stall.
  const slow = latencies.filter((ms) => ms >= 200).length;
  assert.ok(slow <= 2, `${slow} of ${latencies.length} normal requests took 200 ms or more`);
  assert.ok(Math.max(...latencies) < 1000, `every normal request took under 1 s (max ${Math.max(...latencies).toFixed(1)} ms)`);
});

test(`slowloris: ${ATTACKERS} connections that send nothing are closed after timeouts.keepAlive; a normal client stays fast`, async (t) => {
  const keepAliveMs = 500;
  const { port } = await startPair(t, '{ keepAlive: 500ms, header: 1s }');
  const openedAt = performance.now();
  const attackers = await openAttackers(port, ATTACKERS);
  const allOpenAt = performance.now();
  t.after(() => {
    for (const a of attackers) a.socket.destroy();
  });
  const normal = await normalClient(port, 30, 10, () => attackers.some((a) => a.closedAt === 0));
  await until(() => attackers.every((a) => a.closedAt > 0), 'every silent connection to close', keepAliveMs + 3000);
  const closedAfter = attackers.map((a) => a.closedAt - openedAt);
  const latencies = normal.map((r) => r.ms);
  t.diagnostic(
    `silent connections: ${attackers.length} closed ${Math.min(...closedAfter).toFixed(0)}-${Math.max(...closedAfter).toFixed(0)} ms after the first opened ` +
      `(all open after ${(allOpenAt - openedAt).toFixed(0)} ms); normal latency max ${Math.max(...latencies).toFixed(1)} ms`,
  );
  assert.equal(attackers.filter((a) => a.received === '').length, ATTACKERS, 'an idle close sends nothing');
  assert.ok(Math.min(...closedAfter) >= keepAliveMs - 50, 'none closed before the keep-alive timeout');
  assert.ok(Math.max(...closedAfter) <= allOpenAt - openedAt + keepAliveMs + 500, `all closed within keepAlive + 500 ms of opening`);
  assert.ok(normal.length >= 30);
  assert.equal(normal.filter((r) => r.status === 200).length, normal.length);
  const slow = latencies.filter((ms) => ms >= 200).length;
  assert.ok(slow <= 2, `${slow} of ${latencies.length} normal requests took 200 ms or more`);
  assert.ok(Math.max(...latencies) < 1000, `every normal request took under 1 s (max ${Math.max(...latencies).toFixed(1)} ms)`);
});
