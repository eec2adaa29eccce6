import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core';
import { spawnCli } from '../helpers/cli.ts';
import { startOrigins } from '../helpers/origin.ts';
import { simpleYaml, startUsher } from '../helpers/usher.ts';

/**
 * The dashboard in a real browser (Debian's chromium; .ci/run installs it),
 * against the real demo: three backends shown healthy, one killed and shown
 * unhealthy without a reload, one drained from the page, a phone-sized
 * viewport without horizontal scrolling, and the token prompt.
 * Screenshots (laptop, phone, token prompt) go to test/browser/artifacts/ (not committed).
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

/** Console errors and uncaught exceptions of `page`, collected as they happen. */
function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  return errors;
}

/** The browser globals the functions run in the page use: this program has Node's types, not the DOM's. */
interface PageNode {
  readonly textContent: string | null;
}
declare const document: {
  readonly documentElement: { readonly scrollWidth: number };
  querySelector(selector: string): PageNode | null;
  querySelectorAll(selector: string): Iterable<PageNode>;
  getElementById(id: string): PageNode | null;
};
declare const window: { readonly innerWidth: number };

function card(address: string, state?: string): string {
  return `article.backend[data-address="${address}"]${state === undefined ? '' : `[data-state="${state}"]`}`;
}

/** Whether the page is wider than its viewport (it would scroll sideways). */
function scrollsSideways(page: Page): Promise<boolean> {
  return page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
}

test('dashboard on the demo: backends live, a killed one turns unhealthy, drain from the page, laptop and phone', { skip }, async (t) => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const demo = spawnCli(['demo', '--bind', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
  t.after(async () => {
    demo.child.kill('SIGTERM');
    const exited = await Promise.race([demo.exited.then(() => true), sleep(5000).then(() => false)]);
    if (!exited) demo.child.kill('SIGKILL');
  });
  const [, url] = await demo.waitFor(/usher demo is running on (http:\/\/\S+)/, 20_000);
  const [, adminUrl] = await demo.waitFor(/admin API: (http:\/\/\S+)/);
  const [, dashboardUrl] = await demo.waitFor(/dashboard: (http:\/\/\S+\/)/);
  assert.equal(dashboardUrl, `${adminUrl}/`);
  const [, alpha, bravo, charlie] = await demo.waitFor(/backends: alpha \((\S+)\), bravo \((\S+)\), charlie \((\S+)\)/);
  const [, alphaPid] = await demo.waitFor(/kill (\d+) +# stop alpha/);

  // Some traffic, so rates, the sparkline and latencies have something to show.
  let sending = true;
  const traffic = (async () => {
    for (let i = 0; sending; i++) {
      await fetch(`${url}/slow?ms=${i % 10 === 0 ? 25 : i % 3}`).then((res) => res.text(), () => '');
      await sleep(20);
    }
  })();
  t.after(async () => {
    sending = false;
    await traffic;
  });

  const browser = await launch(t);
  const laptop = await browser.newPage(LAPTOP);
  const errors = collectErrors(laptop);
  await laptop.goto(dashboardUrl!);
  for (const address of [alpha!, bravo!, charlie!]) await laptop.waitForSelector(card(address, 'healthy'), { timeout: 10_000 });
  assert.equal(await laptop.locator('article.backend').count(), 3);
  // The demo's backends carry names: each card shows its name, then its address.
  for (const [name, address] of [['alpha', alpha!], ['bravo', bravo!], ['charlie', charlie!]]) {
    assert.equal((await laptop.textContent(`${card(address!)} h3`))?.replace(/\s+/g, ' '), `${name} ${address}`);
  }
  assert.equal(await laptop.textContent('#status'), 'live');
  // The listener and its route are shown, with the address it is bound to.
  assert.match((await laptop.textContent('#listeners'))!, new RegExp(`web.*http.*${url!.slice('http://'.length)}.*route-0.*everything.*pool demo`));
  assert.match((await laptop.textContent('[data-pool="demo"] header'))!, /pool demo.*round-robin.*primary.*3 of 3 in rotation/);
  // The demo serves from the main thread: no workers, no workers table.
  assert.equal(await laptop.isHidden('#workers-section'), true);

  // Live numbers: requests per second, latency percentiles, health-check marks.
  await laptop.waitForFunction(
    (selector) => {
      const values = [...document.querySelectorAll(`${selector} .stats dd`)].map((dd) => dd.textContent ?? '');
      return Number(values[2]) > 0 && /ms$/.test(values[4] ?? '') && /ms$/.test(values[5] ?? '');
    },
    card(charlie!),
    { timeout: 10_000 },
  );
  assert.ok((await laptop.locator(`${card(charlie!)} .check.ok`).count()) >= 1, 'health-check results are shown');
  assert.notEqual(await laptop.getAttribute(`${card(charlie!)} polyline`, 'points'), '');

  // Kill alpha as the banner suggests: the page shows it unhealthy within 5 s, without a reload.
  const killedAt = performance.now();
  process.kill(Number(alphaPid), 'SIGTERM');
  await laptop.waitForSelector(card(alpha!, 'unhealthy'), { timeout: 5000 });
  t.diagnostic(`alpha shown unhealthy ${(performance.now() - killedAt).toFixed(0)} ms after the kill`);
  assert.ok((await laptop.locator(`${card(alpha!)} .check.fail`).count()) >= 1, 'failed checks are shown');

  // Drain bravo from the page: cancel first (nothing changes), then confirm.
  await laptop.click(`${card(bravo!)} button[data-action="drain"]`);
  await laptop.waitForSelector('#confirm[open]');
  assert.match((await laptop.textContent('#confirm-title'))!, new RegExp(`Drain ${bravo} in pool demo\\?`));
  await laptop.click('#confirm-cancel');
  await laptop.waitForSelector('#confirm', { state: 'hidden' });
  const poolPath = `${adminUrl}/api/pools/demo/backends/${encodeURIComponent(bravo!)}`;
  assert.equal(((await (await fetch(poolPath)).json()) as { adminState: string }).adminState, 'enabled', 'cancel changed nothing');
  await laptop.click(`${card(bravo!)} button[data-action="drain"]`);
  await laptop.click('#confirm-ok');
  await laptop.waitForSelector(card(bravo!, 'draining'), { timeout: 5000 });
  const view = (await (await fetch(poolPath)).json()) as { state: string; adminState: string };
  assert.equal(view.adminState, 'draining');
  assert.equal(view.state, 'draining');
  assert.equal(await laptop.isDisabled(`${card(bravo!)} button[data-action="drain"]`), true);
  assert.equal(await laptop.isEnabled(`${card(bravo!)} button[data-action="enable"]`), true);
  await laptop.waitForSelector(card(charlie!, 'healthy'));
  assert.equal(await scrollsSideways(laptop), false);
  await sleep(1200); // let the toast fade and the charts take one more step
  await laptop.screenshot({ path: `${ARTIFACTS}dashboard-laptop.png`, fullPage: true });

  // A phone: everything readable in one column, nothing wider than the screen.
  const phoneContext = await browser.newContext(PHONE);
  const phone = await phoneContext.newPage();
  const phoneErrors = collectErrors(phone);
  await phone.goto(dashboardUrl!);
  await phone.waitForSelector(card(alpha!, 'unhealthy'), { timeout: 10_000 });
  await phone.waitForSelector(card(bravo!, 'draining'));
  await phone.waitForSelector(card(charlie!, 'healthy'));
  assert.equal(await scrollsSideways(phone), false, 'the phone layout scrolls sideways');
  const cardBox = (await phone.locator(card(charlie!)).boundingBox())!;
  assert.ok(cardBox.x >= 0 && cardBox.x + cardBox.width <= 390, `the card fits the screen: ${JSON.stringify(cardBox)}`);
  await phone.screenshot({ path: `${ARTIFACTS}dashboard-phone.png`, fullPage: true });

  // Pages close before usher stops: a stopped usher makes the page log failed reconnects.
  await laptop.close();
  await phoneContext.close();
  assert.deepEqual(errors, [], 'laptop page');
  assert.deepEqual(phoneErrors, [], 'phone page');
});

test('dashboard with an admin token: the page asks for it, refuses a wrong one, works with the right one', { skip }, async (t) => {
  const token = 'dashboard-test-token-4f7a';
  const origins = await startOrigins(2);
  t.after(() => Promise.all(origins.map((o) => o.close())));
  const usher = await startUsher(`listeners:
  - name: web
    bind: 127.0.0.1:0
    routes:
      - name: api
        match: { pathPrefix: /api }
        pool: main
      - pool: main
pools:
  main:
    backends:
${origins.map((o) => `      - address: ${o.address}\n`).join('')}admin:
  bind: 127.0.0.1:0
  token: ${token}
`);
  t.after(() => usher.stop({ timeoutMs: 500 }));
  const adminUrl = usher.adminUrl!;

  const browser = await launch(t);
  const context = await browser.newContext(LAPTOP);
  const page = await context.newPage();
  const errors = collectErrors(page);
  const eventRequests: { url: string; authorization: string | undefined }[] = [];
  page.on('request', (request) => {
    if (request.url().includes('/api/')) eventRequests.push({ url: request.url(), authorization: request.headers()['authorization'] });
  });

  await page.goto(`${adminUrl}/`);
  await page.waitForSelector('#token[open]');
  assert.equal(await page.textContent('#status'), 'token needed');
  assert.match((await page.textContent('#token-reason'))!, /requires an admin token/);
  assert.equal(await page.locator('article.backend').count(), 0, 'no data without the token');
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: `${ARTIFACTS}dashboard-token.png` });

  await page.fill('#token-input', 'wrong-token');
  await page.click('#token button[type="submit"]');
  await page.waitForFunction(() => /not accepted/.test(document.getElementById('token-reason')?.textContent ?? '') && document.querySelector('#token[open]') !== null);

  await page.fill('#token-input', token);
  await page.click('#token button[type="submit"]');
  for (const origin of origins) await page.waitForSelector(card(origin.address, 'healthy'), { timeout: 10_000 });
  assert.equal(await page.textContent('#status'), 'live');
  assert.match((await page.textContent('#listeners'))!, /api.*pathPrefix \/api.*pool main/);
  assert.equal(await page.evaluate(() => sessionStorage.getItem('usher.adminToken')), token);

  // Actions carry the token too.
  await page.click(`${card(origins[0]!.address)} button[data-action="disable"]`);
  await page.click('#confirm-ok');
  await page.waitForSelector(card(origins[0]!.address, 'disabled'), { timeout: 5000 });
  assert.equal(usher.snapshot.pools.get('main')!.control.backends[0]!.adminState, 'disabled');

  // A reload keeps the token for the tab's session: no prompt.
  await page.reload();
  await page.waitForSelector(card(origins[1]!.address, 'healthy'), { timeout: 10_000 });
  assert.equal(await page.locator('#token[open]').count(), 0);

  // The token never goes into a URL; every API call after it was entered sends it.
  assert.ok(eventRequests.every((r) => !r.url.includes(token)));
  const withToken = eventRequests.filter((r) => r.authorization === `Bearer ${token}`);
  assert.ok(withToken.some((r) => r.url.endsWith('/api/events')) && withToken.some((r) => r.url.endsWith('/disable')), JSON.stringify(eventRequests));
  await context.close();
  // The browser logs each 401 it got as a failed resource; nothing else may be logged.
  assert.deepEqual(errors.filter((e) => !/status of 401/.test(e)), []);
});

test('dashboard with worker threads: a workers table, one row per worker, on a laptop and a phone', { skip }, async (t) => {
  const origins = await startOrigins(1);
  t.after(() => Promise.all(origins.map((o) => o.close())));
  const usher = await startUsher(`runtime: { workers: 2 }\naccessLog: { enabled: false }\nadmin: { bind: 127.0.0.1:0 }\n${simpleYaml([origins[0]!.address])}`);
  t.after(() => usher.stop({ timeoutMs: 500 }));
  for (let i = 0; i < 20; i++) await fetch(`${usher.url('web')}/`).then((res) => res.text());

  const browser = await launch(t);
  for (const options of [LAPTOP, PHONE]) {
    const context = await browser.newContext(options);
    const page = await context.newPage();
    const errors = collectErrors(page);
    await page.goto(`${usher.adminUrl!}/`);
    await page.waitForSelector('#workers-section', { state: 'visible', timeout: 10_000 });
    assert.equal(await page.locator('#workers tr.worker[data-state="serving"]').count(), 2);
    const rows = await page.$$eval('#workers tr', (trs) => trs.map((tr) => [...tr.children].map((cell) => cell.textContent ?? '')));
    assert.equal(rows.length, 2);
    for (const [i, row] of rows.entries()) {
      assert.equal(row.length, 6, JSON.stringify(rows));
      assert.deepEqual([row[0], row[1], row[5]], [`#${i}`, 'serving', '0']);
      assert.match(row[2]!, /^\d+$/);
      assert.match(row[3]!, /^\d+(\.\d)?k?$/);
      assert.match(row[4]!, /^\d+(\.\d)?%$/);
    }
    assert.equal(await scrollsSideways(page), false, 'the workers table makes the page scroll sideways');
    if (options === LAPTOP) {
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: `${ARTIFACTS}dashboard-workers.png`, fullPage: true });
    }
    await context.close();
    assert.deepEqual(errors, []);
  }
});
