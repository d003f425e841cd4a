// Repeated measurement: warm-up rounds that are thrown away, then timed rounds, summarised as
// the median and the spread (min, max and the interquartile range relative to the median).
// Every figure the bench reports is a ratio of two such medians measured in the same run.

export interface Summary {
  median: number;
  min: number;
  max: number;
  /** (Q3 - Q1) / median: 0.05 means the middle half of the rounds lies within 5% of the median. */
  relIqr: number;
  samples: number[];
}

export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new RangeError('summarize: no samples');
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number): number => {
    const at = p * (s.length - 1);
    const lo = Math.floor(at);
    const hi = Math.ceil(at);
    return s[lo]! + (s[hi]! - s[lo]!) * (at - lo);
  };
  const median = q(0.5);
  return { median, min: s[0]!, max: s[s.length - 1]!, relIqr: median === 0 ? 0 : (q(0.75) - q(0.25)) / median, samples: [...samples] };
}

export const median = (xs: readonly number[]): number => summarize(xs).median;

/** Host milliseconds for one call of `f`. */
export function timeMs<T>(f: () => T): { value: T; ms: number } {
  const t0 = process.hrtime.bigint();
  const value = f();
  return { value, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
}

export async function timeMsAsync<T>(f: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = process.hrtime.bigint();
  const value = await f();
  return { value, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
}

/** "12.3 (±4%)": a median with its relative interquartile range. */
export function withSpread(s: Summary, digits = 1): string {
  return `${s.median.toFixed(digits)} (±${(50 * s.relIqr).toFixed(0)}%)`;
}

/** A ratio, formatted: 2.41× or 0.031×. */
export function ratio(x: number): string {
  if (!Number.isFinite(x)) return '-';
  return x >= 10 ? `${x.toFixed(0)}×` : x >= 1 ? `${x.toFixed(2)}×` : `${x.toPrecision(2)}×`;
}
