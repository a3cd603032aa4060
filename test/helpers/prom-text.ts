/** Reading a Prometheus text page in tests: the series of a metric, by labels. */

/** Every series of `name` on `page`: its labels and value. */
export function seriesOf(page: string, name: string): Array<{ labels: Record<string, string>; value: number }> {
  const out: Array<{ labels: Record<string, string>; value: number }> = [];
  for (const line of page.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const m = /^[^{ ]+(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const x of (m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[x[1]!] = x[2]!;
    out.push({ labels, value: Number(m[2]) });
  }
  return out;
}

const matches = (got: Record<string, string>, want: Record<string, string | number>): boolean => Object.entries(want).every(([k, v]) => got[k] === String(v));

/** The value of the first series of `name` with `labels` (in any order, others allowed); undefined if none. */
export function metric(page: string, name: string, labels: Record<string, string | number> = {}): number | undefined {
  return seriesOf(page, name).find((s) => matches(s.labels, labels))?.value;
}

/** The sum of every series of `name` with `labels`. */
export function total(page: string, name: string, labels: Record<string, string | number> = {}): number {
  return seriesOf(page, name).filter((s) => matches(s.labels, labels)).reduce((n, s) => n + s.value, 0);
}
