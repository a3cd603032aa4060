/**
 * The live dashboard (`/dashboard` of the operations handler) in a real headless Chromium (Debian's,
 * at /usr/bin/chromium, driven by playwright-core): the page loads, shows the supervision tree and
 * the partitions, and shows an actor crash and a partition worker's crash and restart as they
 * happen, without a reload; a breaker opening shows too. Screenshots go to `.warden/dashboard/`.
 */
import test from 'ava';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { createOpsHandler, defineCall, definePipeline, silentLogger, startNode } from '../../lib/index.js';
import { counter, tally } from '../helpers/counter.js';
import { runDashboard } from '../../lib/cli/commands/dashboard.js';

const CHROMIUM = '/usr/bin/chromium';
let browser: Browser;

test.before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/services.sh ensure (it installs Debian's chromium)`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

test.after.always(async () => {
  await browser?.close();
});

test('the dashboard shows the live tree, and an actor crash and a worker crash and restart as they happen', async (t) => {
  const name = `dash-breaker-${process.pid}`;
  const call = defineCall(name, () => Promise.reject(new Error('down')), { retry: { retries: 0 }, breaker: { volumeThreshold: 2, resetTimeoutMs: 60_000 } });
  t.teardown(() => call.close());
  const pipeline = definePipeline({ name: 'dash', stages: [{ actor: counter, partitions: 2, to: 'tally' }, { actor: tally, partitions: 1 }] });
  const node = await startNode({ pipeline, logger: silentLogger });
  t.teardown(() => node.stop());
  const handler = createOpsHandler({ node, registry: false, live: { refreshMs: 500, minGapMs: 50 } });
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    handler.close();
    server.closeAllConnections();
    server.close();
  });
  const { port } = server.address() as AddressInfo;

  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(`http://127.0.0.1:${port}/dashboard`);
  await page.locator('section.node[data-alive="true"]').waitFor();
  t.is(await page.title(), `warden · dash · ${node.nodeId}`);
  const partition1 = page.locator('li[data-path="dash/counter/partition-1"]');
  await partition1.waitFor();
  t.is(await partition1.getAttribute('data-status'), 'running');
  t.regex(await partition1.locator(':scope > .restarts').textContent() ?? '', /restarts 0/);
  t.is(await page.locator('table.partitions tr[data-partition]').count(), 3);
  const snapshotsBefore = Number(await page.locator('body').getAttribute('data-snapshots'));

  // An actor crash (666 always crashes the counter: restarted, then dead-lettered).
  await node.ingest({ key: 'k1', type: 'add', payload: { amount: 666 } });
  await page.locator('ol.events li[data-type="actor-crashed"]').first().waitFor({ timeout: 10_000 });
  // A partition worker crash and its restart.
  node.kill('counter', 1);
  await page.locator('ol.events li[data-type="child-crashed"]').first().waitFor({ timeout: 10_000 });
  await page.locator('li[data-path="dash/counter/partition-1"][data-status="running"] > .restarts', { hasText: 'restarts 1' }).waitFor({ timeout: 10_000 });
  await page.locator('table.partitions tr[data-partition="counter/1"][data-restarts="1"]').waitFor();
  t.true(await page.locator('ol.events li[data-type="child-restarting"]').count() >= 1, 'the restart is listed');
  t.regex(await page.locator('ol.events li[data-type="child-crashed"]').first().textContent() ?? '', /dash\/counter\/partition-1/);

  for (let i = 0; i < 3; i++) await call.call(i).catch(() => undefined);
  await page.locator(`table.breakers tr[data-call="${name}"][data-state="open"]`).waitFor({ timeout: 10_000 });
  t.true(Number(await page.locator('body').getAttribute('data-snapshots')) > snapshotsBefore, 'updated in place from the stream, no reload');

  mkdirSync('.warden/dashboard', { recursive: true });
  await page.screenshot({ path: '.warden/dashboard/dashboard.png', fullPage: true });
  t.true(statSync('.warden/dashboard/dashboard.png').size > 10_000, 'a screenshot was taken');
  t.log('screenshot: .warden/dashboard/dashboard.png');

  await node.stop();
  await page.locator('section.node[data-alive="false"]').waitFor({ timeout: 10_000 });
  await page.close();
});

test('warden dashboard relays several nodes to one page: each node has its section, live', async (t) => {
  const pipeline = definePipeline({ name: 'dash-two', stages: [{ actor: counter, partitions: 1 }] });
  const servers: Array<{ url: string; close(): void }> = [];
  for (let i = 0; i < 2; i++) {
    const node = await startNode({ pipeline, logger: silentLogger });
    t.teardown(() => node.stop());
    const handler = createOpsHandler({ node, registry: false });
    const server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => { handler.close(); server.closeAllConnections(); server.close(); } });
  }
  t.teardown(() => servers.forEach((s) => s.close()));
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  let out = '';
  const running = runDashboard(servers.map((s) => s.url), { port: 0, host: '127.0.0.1' }, { out: (s) => void (out += s), err: (s) => void (out += s) }, stopped);
  while (!out.includes('\n')) await new Promise((r) => setTimeout(r, 20));
  const { dashboard } = JSON.parse(out) as { dashboard: string };
  const page = await browser.newPage();
  await page.goto(dashboard);
  await page.locator('section.node[data-alive="true"]').nth(1).waitFor({ timeout: 10_000 });
  t.is(await page.locator('section.node').count(), 2);
  t.is(await page.locator('li[data-path="dash-two/counter/partition-0"]').count(), 2, 'each node shows its tree');
  await page.close();
  stop();
  t.is(await running, 0);
});
