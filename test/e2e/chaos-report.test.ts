/**
 * The report of a chaos run as a person reads it (chaos/report.ts): `report.html` opened from disk
 * in a real headless Chromium (Debian's, at /usr/bin/chromium, driven by playwright-core; installed
 * by `scripts/services.sh ensure`), and the plain-text summary. Set `CHAOS_REPORT_OUT=<dir>` to
 * keep the page and its screenshot there.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { renderHtml, summaryTable, writeReport } from '../../chaos/report.js';
import type { ChaosReport, TimelineSample } from '../../chaos/report-types.js';

const CHROMIUM = '/usr/bin/chromium';
const SCRIPT = '<script>document.title = "pwned"</script>';
const IMG = '"><img src=x onerror="document.body.dataset.pwned = 1">';

/**
 * 60 s at 50 inputs/s sampled every 500 ms: a node killed at 15 s (delivery slows, then catches
 * up: recovered after 6.5 s), a node paused from 38 s to 46 s (lag grows and never comes back).
 */
function realisticReport(): ChaosReport {
  const sampleMs = 500;
  const rate = 50;
  const deliveredPerSec = (s: number): number => {
    if (s >= 15 && s < 18) return 10;
    if (s >= 18 && s < 21.5) return 85;
    if (s >= 38 && s < 46) return 15;
    if (s >= 46) return 45;
    return rate;
  };
  const timeline: TimelineSample[] = [];
  let delivered = 0;
  for (let i = 1; i <= 120; i++) {
    const t = i * sampleMs;
    const step = Math.min(deliveredPerSec((t - sampleMs) / 1_000) * (sampleMs / 1_000), t * rate / 1_000 - 5 - delivered);
    delivered += Math.max(step, 0);
    const sent = t * rate / 1_000;
    timeline.push({ t, sent, delivered, throughput: Math.max(step, 0) * (1_000 / sampleMs), lag: sent - delivered });
  }
  return {
    scenario: 'clickstream-failover',
    description: `Kill one node and pause another under 50 inputs/s. ${SCRIPT}`,
    seed: 42,
    nodes: 3,
    startedAt: '2025-06-01T12:00:00.000Z',
    durationMs: 60_000,
    sampleMs,
    sent: 3_000,
    lost: 0,
    duplicated: 0,
    outOfOrder: 3,
    staleWritesAccepted: 0,
    lateAfterMs: 1_000,
    recoveryMsMax: 6_500,
    recoveryMsP99: 6_500,
    passed: false,
    faults: [
      { kind: 'kill-node', target: 'node 2', atMs: 15_000, endMs: 15_000, recoveryMs: 6_500 },
      { kind: 'pause-node', target: 'node 3', atMs: 38_000, endMs: 46_000, recoveryMs: undefined },
    ],
    invariants: [
      { name: 'no lost inputs', passed: true, value: '0 lost of 3,000' },
      { name: 'no duplicated effects', passed: true, value: '0 duplicated' },
      { name: 'in order per key', passed: false, value: '3 out of order', examples: ['user#17: seq 412 applied before 411', 'user#17: seq 413 applied before 411', `user#9 ${IMG}`] },
      { name: 'no stale writes accepted', passed: true, value: '0 of 14 fenced writes accepted' },
      { name: 'liveness', passed: true, value: 'every key advanced' },
      { name: 'recovery time', passed: false, value: 'pause-node node 3 not recovered (bound 10 s)' },
    ],
    timeline,
  };
}

/** The report as `JSON.parse(report.json)` gives it back: an undefined `recoveryMs` is left out. */
const asJson = (r: ChaosReport): unknown => JSON.parse(JSON.stringify(r)) as unknown;

let browser: Browser | undefined;
let launchError: string | undefined;

test.before(async () => {
  if (!existsSync(CHROMIUM)) {
    launchError = `${CHROMIUM} is missing: run scripts/services.sh ensure as root, or apt-get install -y chromium`;
    return;
  }
  // launch() gives each run a fresh, temporary user data dir; nothing is downloaded.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

test.after.always(async () => {
  await browser?.close();
});

interface Opened {
  page: Page;
  errors: string[];
  requests: string[];
}

/** A page in a context of its own, recording console errors, page errors and every request. */
async function openPage(t: ExecutionContext): Promise<Opened> {
  if (!browser) throw new Error(launchError ?? 'the browser did not start');
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  t.teardown(() => context.close());
  const page = await context.newPage();
  const opened: Opened = { page, errors: [], requests: [] };
  page.on('console', (m) => { if (m.type() === 'error') opened.errors.push(m.text()); });
  page.on('pageerror', (e) => opened.errors.push(e.message));
  page.on('request', (r) => opened.requests.push(r.url()));
  return opened;
}

const attributes = async (l: Locator, name: string): Promise<(string | null)[]> => Promise.all((await l.all()).map((e) => e.getAttribute(name)));

/** Path commands (M, L, ...) in a `d` attribute: one per sample (report invariant 3). */
const commands = (d: string | null): number => (d ?? '').match(/[MLHVCSQTAZ]/gi)?.length ?? 0;

async function outDir(t: ExecutionContext): Promise<string> {
  const keep = process.env.CHAOS_REPORT_OUT;
  if (keep) return resolve(keep);
  const dir = await mkdtemp(join(tmpdir(), 'warden-chaos-report-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('report.html in Chromium: verdict, timeline with one point per sample, 2 fault markers and their recovery, invariants, escaped text, no errors or requests', async (t) => {
  const report = realisticReport();
  const dir = await outDir(t);
  const paths = await writeReport(dir, report);
  const url = pathToFileURL(paths.html).href;
  const { page, errors, requests } = await openPage(t);
  await page.goto(url, { waitUntil: 'load' });

  t.deepEqual(errors, [], 'no console errors');
  t.deepEqual(requests.filter((r) => r !== url), [], 'no request but the page itself');
  t.is(await page.locator('#verdict').textContent(), 'FAILED');
  t.is(await page.locator('[data-figure="out-of-order"] .value').textContent(), '3');
  t.is(await page.locator('[data-figure="sent"] .value').textContent(), '3,000');
  t.is(await page.locator('[data-figure="recovery-p99"] .value').textContent(), '6.5 s');

  const box = await page.evaluate<{ width: number; height: number }>('(() => { const b = document.getElementById("timeline").getBoundingClientRect(); return { width: b.width, height: b.height }; })()');
  t.true(box.width > 0 && box.height > 0, `the timeline is drawn (${box.width} x ${box.height})`);
  t.is(commands(await page.locator('#timeline path[data-series="throughput"]').getAttribute('d')), 120);
  t.is(commands(await page.locator('#timeline path[data-series="lag"]').getAttribute('d')), 120);
  const faults = page.locator('#timeline .fault');
  t.is(await faults.count(), 2);
  t.deepEqual(await attributes(faults, 'data-kind'), ['kill-node', 'pause-node']);
  t.deepEqual(await page.locator('#timeline .fault-label').allTextContents(), ['kill-node node 2', 'pause-node node 3']);
  t.deepEqual(await attributes(page.locator('#timeline .recovery'), 'data-recovered'), ['true', 'false']);
  t.is(await page.locator('#timeline .fault-band').count(), 1, 'the pause lasted 8 s: a band; the kill was instant');

  const rows = page.locator('#invariants tbody tr');
  t.deepEqual(await rows.locator('td.name').allTextContents(), report.invariants.map((i) => i.name));
  t.deepEqual(await page.locator('#invariants tr.failed td.name').allTextContents(), ['in order per key', 'recovery time']);
  t.deepEqual(await page.locator('#invariants tr.failed td.verdict').allTextContents(), ['✘ failed', '✘ failed']);
  const background = (selector: string): Promise<unknown> => page.evaluate(`getComputedStyle(document.querySelector('${selector}')).backgroundColor`);
  const failedBg = await background('#invariants tr.failed');
  const passedBg = await background('#invariants tr.passed');
  t.not(failedBg, passedBg, 'failed rows are highlighted');
  t.deepEqual(await page.locator('#faults tbody tr').locator('td:nth-child(6)').allTextContents(), ['6.5 s', 'not recovered']);

  t.true((await page.locator('.description').textContent())?.includes(SCRIPT), 'the <script> of the description is shown as text');
  t.true((await page.locator('#invariants ul.examples').textContent())?.includes(IMG), 'the <img> of an example is shown as text');
  t.is(await page.title(), 'FAILED: chaos run clickstream-failover', 'no injected script ran');
  t.is(await page.evaluate('document.body.dataset.pwned'), undefined, 'no injected handler ran');
  t.is(await page.locator('img, script:not([type="application/json"])').count(), 0);
  t.deepEqual(JSON.parse(await page.locator('#report-data').textContent() ?? ''), asJson(report), 'the data inlined in the page');

  const png = join(dir, 'report.png');
  await page.screenshot({ path: png, fullPage: true });
  const size = (await stat(png)).size;
  t.true(size > 10_000, `the screenshot is not blank (${size} bytes)`);
  t.deepEqual(errors, []);
  t.deepEqual(requests.filter((r) => r !== url), []);
});

test('writeReport writes report.json that parses back equal and report.html, creating the directory', async (t) => {
  const report = realisticReport();
  const dir = join(await mkdtemp(join(tmpdir(), 'warden-chaos-report-')), 'nested', 'run');
  t.teardown(() => rm(resolve(dir, '../..'), { recursive: true, force: true }));
  const paths = await writeReport(dir, report);
  t.deepEqual(paths, { json: join(dir, 'report.json'), html: join(dir, 'report.html') });
  const json = await readFile(paths.json, 'utf8');
  t.true(json.startsWith('{\n  "scenario"'), 'pretty JSON');
  t.deepEqual(JSON.parse(json), asJson(report));
  t.is(await readFile(paths.html, 'utf8'), renderHtml(report));
});

test('renderHtml escapes every string of the report; the inlined JSON cannot close its element', (t) => {
  const report = realisticReport();
  report.scenario = '</title><script>alert(1)</script>';
  report.faults[0]!.kind = 'kill"><script>alert(2)</script>';
  report.faults[0]!.target = "node '2' & <b>";
  report.invariants[0]!.value = '</script><script>alert(3)</script>';
  const html = renderHtml(report);
  t.false(/<script>|<img|<b>/i.test(html), 'no markup of the report reaches the page');
  t.is(html.match(/<\/script>/g)?.length, 1, 'only the data block closes a script element');
  t.true(html.includes('data-kind="kill&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;"'));
  t.true(html.includes('node &#39;2&#39; &amp; &lt;b&gt;'));
});

test('renderHtml lists the examples of a failed invariant, up to 10, and none for one that held', (t) => {
  const report = realisticReport();
  report.invariants[0] = { name: 'no lost inputs', passed: true, value: '0 lost', examples: ['left over'] };
  report.invariants[1] = { name: 'recovery time', passed: false, value: '0 of 12 recovered', examples: Array.from({ length: 12 }, (_, i) => `kill-node node ${i}`) };
  const table = /<table id="invariants">.*?<\/table>/s.exec(renderHtml(report))?.[0] ?? '';
  t.true(table.includes('recovery time'));
  t.false(table.includes('left over'), 'a row that held shows no examples');
  t.is(table.match(/<li>kill-node node \d+<\/li>/g)?.length, 10);
});

test('edge cases render in Chromium: no samples, one sample, no faults, undefined recovery, huge numbers', async (t) => {
  const base = realisticReport();
  const empty: ChaosReport = { ...base, timeline: [], faults: [], invariants: [], durationMs: 0, recoveryMsMax: null, recoveryMsP99: null };
  const one: ChaosReport = { ...base, timeline: [{ t: 500, sent: 25, delivered: 20, throughput: 40, lag: 5 }], faults: [{ kind: 'kill-node', target: 'node 1', atMs: 200, endMs: 200, recoveryMs: undefined }] };
  const huge: ChaosReport = {
    ...base,
    sent: 1e15, lost: 123_456_789_012, durationMs: 9e12,
    timeline: [{ t: 0, sent: 0, delivered: 0, throughput: 0, lag: 0 }, { t: 9e12, sent: 1e15, delivered: 9e14, throughput: 2.5e12, lag: Number.NaN }],
    faults: [{ kind: 'kill-node', target: 'node 1', atMs: 1e12, endMs: 5e12, recoveryMs: 1e12 }],
  };
  const expected: [ChaosReport, number][] = [[empty, 0], [one, 1], [huge, 2]];
  for (const [report, points] of expected) {
    const html = renderHtml(report);
    t.false(/NaN|Infinity|undefined/.test(html.replace(/<script type="application\/json"[^]*?<\/script>/, '')), 'no NaN, Infinity or undefined shown');
    const { page, errors, requests } = await openPage(t);
    await page.setContent(html, { waitUntil: 'load' });
    const box = await page.locator('#timeline').boundingBox();
    t.true((box?.width ?? 0) > 0 && (box?.height ?? 0) > 0);
    t.is(commands(await page.locator('path[data-series="throughput"]').getAttribute('d')), points);
    t.is(commands(await page.locator('path[data-series="lag"]').getAttribute('d')), points);
    t.is(await page.locator('#timeline .fault').count(), report.faults.length);
    t.is(await page.locator('#timeline .recovery').count(), report.faults.length);
    t.deepEqual(errors, []);
    t.deepEqual(requests, []);
  }
  t.true(renderHtml(empty).includes('No faults were injected.'));
  t.true(renderHtml(empty).includes('no samples'));
  t.true(renderHtml(huge).includes('1,000,000,000,000,000'), 'big counts in full, grouped');
});

test('summaryTable: aligned invariants with ✔/✘, values and examples, the faults with recovery, one verdict line last', (t) => {
  const report = realisticReport();
  report.invariants[2]!.examples!.push('\u001b[31mred\u001b[0m\nnext line');
  const lines = summaryTable(report).split('\n');
  t.deepEqual(lines, [
    'invariant                 verdict  value',
    'no lost inputs            ✔        0 lost of 3,000',
    'no duplicated effects     ✔        0 duplicated',
    'in order per key          ✘        3 out of order',
    '                                   e.g. user#17: seq 412 applied before 411',
    '                                   e.g. user#17: seq 413 applied before 411',
    `                                   e.g. user#9 ${IMG}`,
    '                                   and 1 more',
    'no stale writes accepted  ✔        0 of 14 fenced writes accepted',
    'liveness                  ✔        every key advanced',
    'recovery time             ✘        pause-node node 3 not recovered (bound 10 s)',
    '',
    'fault       target  at      lasted   recovered after',
    'kill-node   node 2  15.0 s  instant  6.5 s',
    'pause-node  node 3  38.0 s  8.0 s    not recovered',
    '',
    'FAILED clickstream-failover: invariants failed: 2 of 6 (in order per key, recovery time)',
  ]);
  report.invariants[0]!.value = 'a\u001b[2Jb\r\nc';
  t.false(/\p{Cc}/u.test(summaryTable(report).replaceAll('\n', '')), 'no control character reaches the terminal');
});

test('summaryTable: a run that passed, without faults', (t) => {
  const report: ChaosReport = { ...realisticReport(), passed: true, faults: [], invariants: [{ name: 'no lost inputs', passed: true, value: '0 lost of 10' }] };
  t.deepEqual(summaryTable(report).split('\n'), [
    'invariant       verdict  value',
    'no lost inputs  ✔        0 lost of 10',
    '',
    'no faults injected',
    '',
    'PASSED clickstream-failover: invariants held: 1 of 1',
  ]);
});
