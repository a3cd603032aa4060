/**
 * The report of a chaos run, for the person who reads it afterwards: `report.json` (the data, as
 * `report-types.ts` defines it), `report.html` (one page that needs nothing but itself: the
 * verdict, the headline figures, the timeline drawn as SVG with the faults and their recovery,
 * the invariants and the faults), and the plain-text summary a CLI prints at the end.
 *
 * Invariants:
 *  1. Every string of the report reaches the page escaped: shown as text, never read as markup.
 *  2. The page is self-contained: inline CSS, an SVG drawn here, the data inlined as JSON. No
 *     script runs and nothing is fetched; its Content-Security-Policy forbids both.
 *  3. Each series path of the timeline has exactly one point per sample (`M` then one `L` per
 *     further sample); a value that is not a finite number is drawn as 0.
 *  4. Any report renders: no samples, one sample, no faults, an unrecovered fault, huge numbers.
 *  5. The summary's last line is its verdict, `PASSED` or `FAILED` as `report.passed` says; no
 *     control character of the report reaches the terminal.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChaosReport, FaultRecord, InvariantResult, TimelineSample } from './report-types.js';

export type { ChaosReport, FaultRecord, InvariantResult, TimelineSample } from './report-types.js';

/**
 * Writes `dir/report.json` (the report, pretty JSON; a `recoveryMs` that is undefined is left
 * out) and `dir/report.html` (`renderHtml`), creating `dir`. Resolves with both paths.
 *
 * @example
 * const { html } = await writeReport('.warden/chaos/run-42', report);
 * console.log(summaryTable(report));
 * console.log(`report: ${html}`);
 */
export async function writeReport(dir: string, report: ChaosReport): Promise<{ json: string; html: string }> {
  await mkdir(dir, { recursive: true });
  const json = join(dir, 'report.json');
  const html = join(dir, 'report.html');
  await writeFile(json, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(html, renderHtml(report));
  return { json, html };
}

// ---- formatting -------------------------------------------------------------------------------

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** HTML-escapes text for an element's content or a quoted attribute (invariant 1). */
const esc = (s: unknown): string => String(s).replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
/** One line of plain text: control characters (newlines, terminal escapes) become spaces (invariant 5). */
const oneLine = (s: unknown): string => String(s).replace(/\p{Cc}+/gu, ' ');
const finite = (n: number): number => (Number.isFinite(n) ? n : 0);

const INTEGER = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const COMPACT = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });
/** `12,345`; `n/a` for a value that is not a finite number. */
const count = (n: number): string => (Number.isFinite(n) ? INTEGER.format(n) : 'n/a');

/** `850 ms`, `2.1 s`, `3 min 05 s`, `26 h 40 min`; `—` when undefined. */
export function formatMs(ms: number | null | undefined): string {
  if (ms === undefined || ms === null || !Number.isFinite(ms)) return '—';
  if (Math.abs(ms) < 1_000) return `${Math.round(ms)} ms`;
  if (Math.abs(ms) < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  const s = Math.round(ms / 1_000);
  if (s < 3_600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${INTEGER.format(Math.floor(s / 3_600))} h ${String(Math.floor(s / 60) % 60).padStart(2, '0')} min`;
}

const lasted = (f: FaultRecord): string => (f.endMs > f.atMs ? formatMs(f.endMs - f.atMs) : 'instant');
const recoveredAfter = (f: FaultRecord): string => (f.recoveryMs === undefined ? 'not recovered' : formatMs(f.recoveryMs));
const failedOf = (invariants: InvariantResult[]): InvariantResult[] => invariants.filter((i) => !i.passed);

/** `2025-06-01 12:00:00 UTC` for an ISO time; the text itself when it is not one. */
function startTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

// ---- the timeline -----------------------------------------------------------------------------

const W = 960;
const LEFT = 76;
const RIGHT = 24;
const LABEL_ROWS = [40, 54, 68];
const TOP = 82;
const PANEL = 150;
const GAP = 44;
const H = TOP + 2 * PANEL + GAP + 46;
const BOTTOM = TOP + 2 * PANEL + GAP;
const COLORS = { throughput: '#2563eb', lag: '#9333ea', fault: '#dc2626', recovery: '#f59e0b', unrecovered: '#ea580c', band: '#64748b' };
const r1 = (n: number): string => String(Math.round(n * 10) / 10);

/** Round tick values (1, 2, 5 x 10^k, at least `minStep`) covering [lo, hi] in about `n` steps. */
function niceTicks(lo: number, hi: number, n: number, minStep: number): { lo: number; hi: number; values: number[] } {
  const raw = Math.max((hi - lo) / n, minStep);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * mag >= raw * (1 - 1e-9)) ?? 10) * mag;
  const a = Math.floor(lo / step) * step;
  const b = Math.max(Math.ceil(hi / step) * step, a + step);
  const values: number[] = [];
  for (let v = a, i = 0; v <= b + step / 2 && i < 100; i++, v = a + i * step) values.push(v);
  return { lo: a, hi: b, values };
}

const maxOf = (values: Iterable<number>, floor: number): number => {
  let m = floor;
  for (const v of values) if (Number.isFinite(v) && v > m) m = v;
  return m;
};

/** One panel: frame, horizontal grid with value ticks, the series path (invariant 3). */
function panelSvg(series: 'throughput' | 'lag', unit: string, top: number, samples: TimelineSample[], x: (ms: number) => number): string {
  const values = samples.map((s) => finite(s[series]));
  const lo = values.reduce((m, v) => Math.min(m, v), 0);
  const y = niceTicks(lo, maxOf(values, 1), 4, 1);
  const yOf = (v: number): number => top + PANEL - ((v - y.lo) / (y.hi - y.lo)) * PANEL;
  const grid = y.values.map((v) => `<line class="grid" x1="${LEFT}" x2="${W - RIGHT}" y1="${r1(yOf(v))}" y2="${r1(yOf(v))}"/>`
    + `<text class="tick" x="${LEFT - 6}" y="${r1(yOf(v) + 4)}" text-anchor="end">${esc(COMPACT.format(v))}</text>`).join('');
  const d = samples.map((s, i) => `${i === 0 ? 'M' : 'L'}${r1(x(finite(s.t)))},${r1(yOf(values[i] ?? 0))}`).join(' ');
  const single = samples.length === 1 ? `<circle cx="${r1(x(finite(samples[0]!.t)))}" cy="${r1(yOf(values[0] ?? 0))}" r="3" fill="${COLORS[series]}"/>` : '';
  const empty = samples.length === 0 ? `<text class="empty" x="${(LEFT + W - RIGHT) / 2}" y="${top + PANEL / 2}" text-anchor="middle">no samples</text>` : '';
  const mid = top + PANEL / 2;
  return `<g class="panel" data-panel="${series}">${grid}`
    + `<text class="axis-title" x="18" y="${mid}" text-anchor="middle" transform="rotate(-90 18 ${mid})">${esc(unit)}</text>`
    + `<path data-series="${series}" d="${d}" fill="none" stroke="${COLORS[series]}" stroke-width="2" stroke-linejoin="round"/>${single}${empty}`
    + `<path class="frame" d="M${LEFT},${top}V${top + PANEL}H${W - RIGHT}" fill="none"/></g>`;
}

/** Vertical grid and the time axis under the lower panel. */
function timeAxisSvg(endMs: number, x: (ms: number) => number): string {
  const t = niceTicks(0, endMs / 1_000, 8, 0.001);
  return t.values.filter((s) => s * 1_000 <= endMs * (1 + 1e-9)).map((s) => {
    const px = r1(x(s * 1_000));
    return `<line class="grid" x1="${px}" x2="${px}" y1="${TOP}" y2="${BOTTOM}"/>`
      + `<text class="tick" x="${px}" y="${BOTTOM + 16}" text-anchor="middle">${esc(COMPACT.format(s))}</text>`;
  }).join('') + `<text class="axis-title" x="${(LEFT + W - RIGHT) / 2}" y="${BOTTOM + 38}" text-anchor="middle">time (s)</text>`;
}

/** Shaded spans behind the series: a lasting fault's band, then its recovery (to the end when unrecovered). */
function spansSvg(faults: FaultRecord[], endMs: number, x: (ms: number) => number): string {
  return faults.map((f) => {
    const at = x(finite(f.atMs));
    const band = f.endMs > f.atMs
      ? `<rect class="fault-band" data-kind="${esc(f.kind)}" x="${r1(at)}" y="${TOP}" width="${r1(Math.max(x(f.endMs) - at, 1))}" height="${BOTTOM - TOP}" fill="${COLORS.band}" fill-opacity="0.16"><title>${esc(`${f.kind} ${f.target}: lasted ${lasted(f)}`)}</title></rect>`
      : '';
    const until = f.recoveryMs === undefined ? endMs : finite(f.atMs) + finite(f.recoveryMs);
    const color = f.recoveryMs === undefined ? COLORS.unrecovered : COLORS.recovery;
    const span = `<rect class="recovery" data-recovered="${f.recoveryMs !== undefined}" x="${r1(at)}" y="${TOP}" width="${r1(Math.max(x(until) - at, 1))}" height="${BOTTOM - TOP}" fill="${color}" fill-opacity="0.2"><title>${esc(`${f.kind} ${f.target}: ${recoveredAfter(f)}`)}</title></rect>`;
    return band + span;
  }).join('');
}

/** A line per fault over both panels, labelled `kind target` in the first label row where it fits. */
function faultMarkersSvg(faults: FaultRecord[], x: (ms: number) => number): string {
  const rowEnds = LABEL_ROWS.map(() => -Infinity);
  return faults.map((f) => {
    const px = x(finite(f.atMs));
    const label = `${f.kind} ${f.target}`;
    const width = label.length * 6.4;
    const leftward = px + 4 + width > W - RIGHT;
    const [from, to] = leftward ? [px - 4 - width, px] : [px, px + 4 + width];
    let row = rowEnds.findIndex((end) => end < from - 6);
    if (row < 0) row = rowEnds.indexOf(Math.min(...rowEnds));
    rowEnds[row] = to;
    const ty = LABEL_ROWS[row] ?? LABEL_ROWS[0]!;
    return `<g class="fault" data-kind="${esc(f.kind)}" data-target="${esc(f.target)}"><title>${esc(`${label} at ${formatMs(f.atMs)}, lasted ${lasted(f)}, ${recoveredAfter(f)}`)}</title>`
      + `<line x1="${r1(px)}" x2="${r1(px)}" y1="${ty + 3}" y2="${BOTTOM}" stroke="${COLORS.fault}" stroke-width="1.5" stroke-dasharray="5 3"/>`
      + `<text class="fault-label" x="${r1(leftward ? px - 4 : px + 4)}" y="${ty}" text-anchor="${leftward ? 'end' : 'start'}">${esc(label)}</text></g>`;
  }).join('');
}

function legendSvg(): string {
  const items: [string, string][] = [
    [`<line x1="0" x2="18" y1="-4" y2="-4" stroke="${COLORS.throughput}" stroke-width="2.5"/>`, 'throughput (inputs/s)'],
    [`<line x1="0" x2="18" y1="-4" y2="-4" stroke="${COLORS.lag}" stroke-width="2.5"/>`, 'lag (inputs)'],
    [`<line x1="9" x2="9" y1="-11" y2="3" stroke="${COLORS.fault}" stroke-width="1.5" stroke-dasharray="4 2"/>`, 'fault'],
    [`<rect y="-11" width="18" height="12" fill="${COLORS.band}" fill-opacity="0.3"/>`, 'fault lasting'],
    [`<rect y="-11" width="18" height="12" fill="${COLORS.recovery}" fill-opacity="0.35"/>`, 'recovering'],
    [`<rect y="-11" width="18" height="12" fill="${COLORS.unrecovered}" fill-opacity="0.35"/>`, 'not recovered'],
  ];
  let at = LEFT;
  return `<g class="legend">${items.map(([swatch, label]) => {
    const g = `<g transform="translate(${at} 18)">${swatch}<text x="24" y="0">${label}</text></g>`;
    at += 24 + label.length * 6.6 + 18;
    return g;
  }).join('')}</g>`;
}

/** The timeline as an inline SVG (`id="timeline"`): throughput above, lag below, faults over both. */
function timelineSvg(r: ChaosReport): string {
  const ends = r.faults.flatMap((f) => [f.atMs, f.endMs, f.atMs + (f.recoveryMs ?? 0)]);
  const endMs = maxOf([r.durationMs, ...ends, ...r.timeline.map((s) => s.t)], 1_000);
  const x = (ms: number): number => LEFT + (Math.min(Math.max(ms, 0), endMs) / endMs) * (W - LEFT - RIGHT);
  const summary = `Timeline of ${r.timeline.length} samples over ${formatMs(endMs)} with ${r.faults.length} faults`;
  return `<svg id="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(summary)}">`
    + `<title>${esc(summary)}</title>${legendSvg()}${spansSvg(r.faults, endMs, x)}${timeAxisSvg(endMs, x)}`
    + panelSvg('throughput', 'inputs/s', TOP, r.timeline, x)
    + panelSvg('lag', 'lag (inputs)', TOP + PANEL + GAP, r.timeline, x)
    + `${faultMarkersSvg(r.faults, x)}</svg>`;
}

// ---- the page ---------------------------------------------------------------------------------

const CSS = `
:root { color-scheme: light; --ok: #15803d; --bad: #b91c1c; --muted: #64748b; --line: #e2e8f0; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1040px; padding: 24px; font: 14px/1.45 system-ui, "DejaVu Sans", sans-serif; color: #0f172a; background: #fff; }
header { display: grid; grid-template-columns: 1fr auto; gap: 4px 24px; border-bottom: 1px solid var(--line); padding-bottom: 16px; }
h1 { margin: 0; font-size: 24px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.description { margin: 0; color: #334155; grid-column: 1; }
.verdict-badge { grid-column: 2; grid-row: 1 / span 3; align-self: start; font-size: 34px; font-weight: 800; letter-spacing: 2px; color: #fff; padding: 10px 22px; border-radius: 10px; }
.passed .verdict-badge { background: var(--ok); } .failed .verdict-badge { background: var(--bad); }
dl.meta { display: flex; flex-wrap: wrap; gap: 4px 20px; margin: 6px 0 0; color: var(--muted); grid-column: 1; }
dl.meta div { display: flex; gap: 6px; } dl.meta dd { margin: 0; color: #0f172a; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(120px, 1fr)); gap: 8px; margin-top: 16px; }
.figure { border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; overflow-wrap: anywhere; }
.figure .value { display: block; font-size: 22px; font-weight: 700; } .figure .label { color: var(--muted); font-size: 12px; }
.figure.bad { border-color: #fca5a5; background: #fef2f2; } .figure.bad .value { color: var(--bad); }
.figure.good .value { color: var(--ok); } .figure.long .value { font-size: 15px; }
#timeline { display: block; width: 100%; height: auto; }
#timeline text { font: 11px system-ui, "DejaVu Sans", sans-serif; fill: #334155; }
#timeline .grid { stroke: #eef2f7; } #timeline .frame { stroke: #94a3b8; }
#timeline .axis-title { fill: var(--muted); } #timeline .fault-label { fill: #b91c1c; font-weight: 600; }
#timeline .empty { fill: var(--muted); font-size: 13px; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; } td.num { font-variant-numeric: tabular-nums; }
tr.failed, tr.unrecovered { background: #fef2f2; } tr.failed td.verdict { color: var(--bad); font-weight: 700; } td.verdict { color: var(--ok); white-space: nowrap; }
ul.examples { margin: 0; padding-left: 16px; font: 12px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; overflow-wrap: anywhere; }
.none { color: var(--muted); } footer { margin-top: 28px; color: var(--muted); font-size: 12px; }
`;

function headerHtml(r: ChaosReport): string {
  const verdict = r.passed ? 'PASSED' : 'FAILED';
  const meta: [string, string][] = [['seed', String(r.seed)], ['nodes', count(r.nodes)], ['started', startTime(r.startedAt)], ['duration', formatMs(r.durationMs)], ['sampled every', formatMs(r.sampleMs)], ['late after', formatMs(r.lateAfterMs)]];
  const figure = (key: string, label: string, value: string, tone = ''): string =>
    `<div class="figure ${tone}${value.length > 9 ? ' long' : ''}" data-figure="${key}"><span class="value">${esc(value)}</span><span class="label">${esc(label)}</span></div>`;
  const bad = (n: number): string => (n === 0 ? 'good' : 'bad');
  return `<header>
<h1>Chaos run: <span class="scenario">${esc(r.scenario)}</span></h1>
<div class="verdict-badge" id="verdict">${verdict}</div>
<p class="description">${esc(r.description)}</p>
<dl class="meta">${meta.map(([k, v]) => `<div><dt>${k}</dt><dd>${esc(v)}</dd></div>`).join('')}</dl>
</header>
<div class="figures">${[
    figure('sent', 'sent', count(r.sent)),
    figure('lost', 'lost', count(r.lost), bad(r.lost)),
    figure('duplicated', 'duplicated', count(r.duplicated), bad(r.duplicated)),
    figure('out-of-order', 'out of order', count(r.outOfOrder), bad(r.outOfOrder)),
    figure('stale-writes', 'stale writes accepted', count(r.staleWritesAccepted), bad(r.staleWritesAccepted)),
    figure('recovery-max', 'recovery max', formatMs(r.recoveryMsMax)),
    figure('recovery-p99', 'recovery p99', formatMs(r.recoveryMsP99)),
  ].join('')}</div>`;
}

function invariantsHtml(invariants: InvariantResult[]): string {
  if (invariants.length === 0) return '<p class="none">No invariants were checked.</p>';
  const rows = invariants.map((i) => {
    const shown = i.passed ? [] : (i.examples ?? []).slice(0, 10); // the examples of a failure, up to 10
    const examples = shown.length > 0 ? `<ul class="examples">${shown.map((e) => `<li>${esc(e)}</li>`).join('')}</ul>` : '';
    return `<tr class="${i.passed ? 'passed' : 'failed'}" data-passed="${i.passed}"><td class="name">${esc(i.name)}</td>`
      + `<td class="verdict">${i.passed ? '✔ held' : '✘ failed'}</td><td class="value">${esc(i.value)}</td><td>${examples}</td></tr>`;
  });
  return `<table id="invariants"><thead><tr><th>invariant</th><th>verdict</th><th>value</th><th>examples</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function faultsHtml(faults: FaultRecord[]): string {
  if (faults.length === 0) return '<p class="none" id="no-faults">No faults were injected.</p>';
  const rows = faults.map((f, n) => `<tr class="${f.recoveryMs === undefined ? 'unrecovered' : 'recovered'}"><td class="num">${n + 1}</td>`
    + `<td>${esc(f.kind)}</td><td>${esc(f.target)}</td><td class="num">${esc(formatMs(f.atMs))}</td><td class="num">${esc(lasted(f))}</td><td class="num">${esc(recoveredAfter(f))}</td></tr>`);
  return `<table id="faults"><thead><tr><th>#</th><th>kind</th><th>target</th><th>at</th><th>lasted</th><th>recovered after</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/** JSON that cannot close its `<script>` element or open a comment (`<`, `>`, `&` as `\u00XX`). */
const inlineJson = (r: ChaosReport): string =>
  JSON.stringify(r).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/**
 * The report as one self-contained HTML page (invariants 1, 2, 4): header with the verdict and
 * the headline figures, the timeline (`svg#timeline`), the invariants (`table#invariants`), the
 * faults (`table#faults`), and the report itself as JSON in `script#report-data` (not run).
 *
 * @example
 * await writeFile('report.html', renderHtml(report));
 */
export function renderHtml(report: ChaosReport): string {
  const verdict = report.passed ? 'PASSED' : 'FAILED';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<link rel="icon" href="data:,">
<title>${verdict}: chaos run ${esc(report.scenario)}</title>
<style>${CSS}</style>
</head>
<body class="${report.passed ? 'passed' : 'failed'}">
${headerHtml(report)}
<section><h2>Timeline</h2>
${timelineSvg(report)}
</section>
<section><h2>Invariants</h2>
${invariantsHtml(report.invariants)}
</section>
<section><h2>Faults</h2>
${faultsHtml(report.faults)}
</section>
<footer>The same data is in report.json beside this page.</footer>
<script type="application/json" id="report-data">${inlineJson(report)}</script>
</body>
</html>
`;
}

// ---- the summary ------------------------------------------------------------------------------

/** Rows as columns padded to their widest cell, two spaces apart; `indent` is where the last column starts. */
function columns(rows: string[][]): { lines: string[]; indent: number } {
  const widths: number[] = [];
  for (const row of rows) row.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  const lines = rows.map((row) => row.map((c, i) => (i < row.length - 1 ? c.padEnd(widths[i] ?? 0) : c)).join('  ').trimEnd());
  return { lines, indent: widths.slice(0, -1).reduce((a, w) => a + w + 2, 0) };
}

/**
 * The plain-text summary a CLI prints at the end of a run: the invariants (✔/✘, value, up to 3
 * examples of a failure), the faults with their recovery, then one verdict line (invariant 5).
 *
 * @example
 * console.log(summaryTable(report));
 * // invariant         verdict  value
 * // no lost inputs    ✔        0 lost of 3,000
 * // ...
 * // PASSED failover: invariants held: 6 of 6
 */
export function summaryTable(report: ChaosReport): string {
  const out: string[] = [];
  const inv = report.invariants;
  const table = columns([['invariant', 'verdict', 'value'], ...inv.map((i) => [oneLine(i.name), i.passed ? '✔' : '✘', oneLine(i.value)])]);
  out.push(table.lines[0]!);
  inv.forEach((i, n) => {
    out.push(table.lines[n + 1]!);
    const examples = i.passed ? [] : (i.examples ?? []);
    for (const e of examples.slice(0, 3)) out.push(`${' '.repeat(table.indent)}e.g. ${oneLine(e)}`);
    if (examples.length > 3) out.push(`${' '.repeat(table.indent)}and ${examples.length - 3} more`);
  });
  out.push('');
  if (report.faults.length === 0) out.push('no faults injected');
  else {
    const rows = report.faults.map((f) => [oneLine(f.kind), oneLine(f.target), formatMs(f.atMs), lasted(f), recoveredAfter(f)]);
    out.push(...columns([['fault', 'target', 'at', 'lasted', 'recovered after'], ...rows]).lines);
  }
  out.push('', verdictLine(report));
  return out.join('\n');
}

function verdictLine(r: ChaosReport): string {
  const failed = failedOf(r.invariants);
  const n = r.invariants.length;
  const why = failed.length > 0
    ? `invariants failed: ${failed.length} of ${n} (${failed.map((i) => oneLine(i.name)).join(', ')})`
    : `invariants held: ${n} of ${n}`;
  return `${r.passed ? 'PASSED' : 'FAILED'} ${oneLine(r.scenario)}: ${why}`;
}
