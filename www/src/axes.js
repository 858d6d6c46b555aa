// The geometry of a line chart, shared by the page (ranges, hover) and the chart worker (drawing):
// the plot area inside the canvas, value ↔ pixel mapping on linear and log scales, axis ranges
// and tick positions. No DOM, so node's test runner checks it.

/** Margins of the plot area in CSS pixels: tick labels and the axis title left and below,
 * the right axis' when there is one. */
export const MARGIN = { top: 10, left: 72, bottom: 46, right: 16, rightAxis: 56 };

/** The plot area of a `width` × `height` chart: { left, top, width, height }. */
export function plotBox(width, height, rightAxis = false) {
  const right = rightAxis ? MARGIN.rightAxis : MARGIN.right;
  return {
    left: MARGIN.left,
    top: MARGIN.top,
    width: Math.max(1, width - MARGIN.left - right),
    height: Math.max(1, height - MARGIN.top - MARGIN.bottom),
  };
}

/** Where `v` lies along a scale { min, max, log } as a fraction 0…1 of its length (log: of
 * log10 v); NaN for a value a log scale cannot show (≤ 0). */
export function fraction(v, scale) {
  if (scale.log) {
    if (!(v > 0)) return NaN;
    const lo = Math.log10(scale.min);
    return (Math.log10(v) - lo) / (Math.log10(scale.max) - lo);
  }
  return (v - scale.min) / (scale.max - scale.min);
}

/** The value at fraction `f` of a scale (the inverse of `fraction`). */
export function valueAt(f, scale) {
  if (scale.log) {
    const lo = Math.log10(scale.min);
    return 10 ** (lo + f * (Math.log10(scale.max) - lo));
  }
  return scale.min + f * (scale.max - scale.min);
}

/** The smallest 1, 2 or 5 × 10^k at least `step` (`integer`: at least 1). */
export function niceStep(step, integer = false) {
  if (!(step > 0) || !Number.isFinite(step)) return 1;
  const p = 10 ** Math.floor(Math.log10(step));
  const m = step / p;
  const nice = (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
  return integer ? Math.max(1, Math.round(nice)) : nice;
}

/** A log axis' range: the data's [min, max] widened to whole decades (at least one). */
export function rangeLog(min, max) {
  const lo = 10 ** Math.floor(Math.log10(min));
  let hi = 10 ** Math.ceil(Math.log10(max));
  if (hi <= lo) hi = lo * 10;
  return [lo, hi];
}

/**
 * A linear axis' range: the data's [min, max] padded by a tenth of its span on each side
 * (never across zero when the data stay on one side of it), then widened to a round step.
 * A single value gets ±10 % of itself (±1 at zero).
 */
export function rangeNum(min, max) {
  let [lo, hi] = [min, max];
  if (hi === lo) {
    const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    [lo, hi] = [lo - d, hi + d];
  } else {
    const pad = (hi - lo) * 0.1;
    [lo, hi] = [lo - pad, hi + pad];
    if (min >= 0 && lo < 0) lo = 0;
    if (max <= 0 && hi > 0) hi = 0;
  }
  const step = niceStep((hi - lo) / 10);
  return [clean(Math.floor(lo / step + 1e-9) * step), clean(Math.ceil(hi / step - 1e-9) * step)];
}

/** Rounds away binary noise (0.30000000000000004 → 0.3). */
function clean(v) {
  return Number(v.toPrecision(12));
}

/**
 * Tick values of a scale { min, max, log, integer } along `length` pixels, at least `space`
 * pixels apart: multiples of a round step, or powers of ten on a log scale (every k-th decade
 * when they would crowd).
 */
export function ticks(scale, length, space) {
  const most = Math.max(2, Math.floor(length / space));
  if (scale.log) {
    const [a, b] = [Math.ceil(Math.log10(scale.min) - 1e-9), Math.floor(Math.log10(scale.max) + 1e-9)];
    const every = Math.max(1, Math.ceil((b - a + 1) / most));
    const out = [];
    for (let e = a; e <= b; e += every) out.push(clean(10 ** e));
    return out;
  }
  const step = niceStep((scale.max - scale.min) / most, scale.integer);
  const out = [];
  for (let i = Math.ceil(scale.min / step - 1e-9); i * step <= scale.max + step * 1e-9; i++) out.push(clean(i * step));
  return out;
}

/** A number for an axis or a legend: 4 significant digits, scientific when tiny or huge. */
export function formatNumber(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : Number(v.toPrecision(4)).toString();
}

/** The index in ascending `xs` whose value is nearest `x` (−1 when `xs` is empty). */
export function nearest(xs, x) {
  if (xs.length === 0) return -1;
  let [lo, hi] = [0, xs.length - 1];
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] <= x) lo = mid;
    else hi = mid;
  }
  return Math.abs(xs[hi] - x) < Math.abs(xs[lo] - x) ? hi : lo;
}
