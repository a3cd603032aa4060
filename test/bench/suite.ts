/** The shape of a benchmark suite. */
export interface SuiteResult {
  /** Human table rows: label, value. */
  rows: Array<[string, string]>;
  /** Machine-readable figures (the JSON line). */
  figures: Record<string, number | string | boolean>;
}

export interface Suite {
  run(log: (line: string) => void): Promise<SuiteResult>;
}

/** Median of numbers. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

/** Formats an integer with thousands separators. */
export function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}
