import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core';
import { startOrigin } from '../helpers/origin.ts';
import { startRedis } from '../helpers/redis.ts';
import { startUsher } from '../helpers/usher.ts';
import type { Usher } from '../../src/runtime/usher.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * The dashboard's Peers panel in a real browser (Debian's chromium), with
 * three in-process ushers on one redis-server: one row per instance (this
 * one first and marked), the config mismatch flagged on the row and in a
 * banner, Redis unreachable said while the last list stays, no sideways
 * scrolling on a phone, and no panel at all without a `redis` section.
 * Screenshots go to test/browser/artifacts/ (not committed).
 */

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));
const BUNDLE = fileURLToPath(new URL('../../dist/dashboard/app.js', import.meta.url));
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: .ci/run installs it (apt-get install chromium)`;
const LAPTOP: BrowserContextOptions = { viewport: { width: 1280, height: 800 } };
const PHONE: BrowserContextOptions = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };

async function launch(t: TestContext): Promise<Browser> {
  assert.ok(existsSync(BUNDLE), `${BUNDLE} is missing: run "npm run build" (npm test does it)`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.after(() => browser.close());
  return browser;
}

function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  return errors;
}

declare const document: { readonly documentElement: { readonly scrollWidth: number } };
declare const window: { readonly innerWidth: number };

test('dashboard Peers panel: one row per instance, the mismatch flagged, Redis unreachable said; laptop and phone', { skip }, async (t) => {
  const redis = await startRedis(t);
  const origin = await startOrigin('o');
  t.after(() => origin.close());
  const start = async (instance: string, weight: number): Promise<Usher> => {
    const usher = await startUsher(`redis: { url: 'redis://127.0.0.1:${redis.port}', instance: ${instance}, heartbeat: 200ms, peerTimeout: 1s }
admin: { bind: '127.0.0.1:0' }
listeners: [ { name: web, bind: '127.0.0.1:0', routes: [ { pool: main } ] } ]
pools: { main: { backends: [ { address: '${origin.address}', weight: ${weight} } ] } }
`);
    t.after(() => usher.stop({ timeoutMs: 500 }));
    return usher;
  };
  const alpha = await start('alpha', 1);
  await start('bravo', 1);
  await start('charlie', 3);
  await waitFor(() => alpha.peersView()!.peers.length === 3, 'alpha to list three instances', 10_000, 20);

  const browser = await launch(t);
  const context = await browser.newContext(LAPTOP);
  const page = await context.newPage();
  const errors = collectErrors(page);
  await page.goto(`${alpha.adminUrl!}/`);
  await page.waitForSelector('#peers-section', { state: 'visible', timeout: 10_000 });
  await page.waitForFunction(() => (globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } }).document.querySelectorAll('#peers tr.peer').length === 3);
  const rows = await page.$$eval('#peers tr.peer', (trs) => trs.map((tr) => ({ instance: tr.getAttribute('data-instance'), same: tr.getAttribute('data-same-config'), cells: [...tr.children].map((cell) => cell.textContent ?? '') })));
  assert.deepEqual(rows.map((r) => [r.instance, r.same]), [['alpha', 'true'], ['bravo', 'true'], ['charlie', 'false']]);
  assert.equal(rows[0]!.cells[0], 'alpha (this)');
  assert.match(rows[2]!.cells[2]!, /^[0-9a-f]{16} ≠$/);
  assert.match(rows[1]!.cells[3]!, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.match(rows[1]!.cells[4]!, /^\d+\.\d s ago$/);
  assert.match((await page.textContent('#peers-summary'))!, /^3 instances on redis:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(await page.getAttribute('#peers-section', 'data-mismatch'), 'true');
  assert.match((await page.textContent('#peers-alert'))!, /Config mismatch/);
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: `${ARTIFACTS}dashboard-peers.png`, fullPage: true });

  // Redis away: the list stays, the banner says so.
  await redis.kill();
  await page.waitForSelector('#peers-section[data-connected="false"]', { timeout: 10_000 });
  assert.match((await page.textContent('#peers-alert'))!, /Redis unreachable .*the list is as of \d+ s ago/);
  assert.equal(await page.locator('#peers tr.peer').count(), 3);
  await context.close();

  const phone = await browser.newContext(PHONE);
  const small = await phone.newPage();
  const phoneErrors = collectErrors(small);
  await small.goto(`${alpha.adminUrl!}/`);
  await small.waitForSelector('#peers tr.peer', { timeout: 10_000 });
  assert.equal(await small.evaluate(() => document.documentElement.scrollWidth > window.innerWidth), false, 'the peers table makes the page scroll sideways');
  await small.screenshot({ path: `${ARTIFACTS}dashboard-peers-phone.png`, fullPage: true });
  await phone.close();
  assert.deepEqual([...errors, ...phoneErrors], []);
});

test('dashboard without a redis section: no Peers panel', { skip }, async (t) => {
  const origin = await startOrigin('o');
  t.after(() => origin.close());
  const usher = await startUsher(`admin: { bind: '127.0.0.1:0' }
listeners: [ { name: web, bind: '127.0.0.1:0', routes: [ { pool: main } ] } ]
pools: { main: { backends: [ { address: '${origin.address}' } ] } }
`);
  t.after(() => usher.stop({ timeoutMs: 500 }));
  const browser = await launch(t);
  const page = await browser.newPage();
  await page.goto(`${usher.adminUrl!}/`);
  await page.waitForSelector('article.backend', { timeout: 10_000 });
  assert.equal(await page.isHidden('#peers-section'), true);
  assert.equal((await fetch(`${usher.adminUrl!}/api/peers`)).status, 404);
});
