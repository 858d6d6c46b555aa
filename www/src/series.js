// Preparing long series for drawing. No DOM, so node's test runner checks it.

/** Most points per line a training chart draws (see `decimate`): what one chart update posts
 * to the chart worker stays bounded however long the run. */
export const MAX_POINTS = 300;

/**
 * Averages consecutive points so a chart never draws more than `max` per line: drawing
 * 100,000 points per line (batch size 1) would block the page for hundreds of milliseconds.
 * Gaps (null) stay gaps when a whole bucket is null.
 */
export function decimate(ys, max) {
  const n = ys[0]?.length ?? 0;
  const xs = [];
  if (n <= max) {
    for (let i = 0; i < n; i++) xs.push(i + 1);
    return { xs, ys };
  }
  const size = Math.ceil(n / max);
  const out = ys.map(() => []);
  for (let start = 0; start < n; start += size) {
    const end = Math.min(n, start + size);
    xs.push((start + end + 1) / 2);
    ys.forEach((y, k) => {
      let sum = 0;
      let count = 0;
      for (let i = start; i < end; i++) {
        const v = y[i];
        if (v !== null && Number.isFinite(v)) {
          sum += v;
          count++;
        }
      }
      out[k].push(count > 0 ? sum / count : null);
    });
  }
  return { xs, ys: out };
}

/**
 * The mean of each value and up to `window − 1` before it (gaps skipped; a gap stays a gap):
 * the minibatch loss without its minibatch-to-minibatch noise.
 */
export function movingMean(ys, window) {
  const out = new Array(ys.length);
  let sum = 0;
  let count = 0;
  for (let i = 0; i < ys.length; i++) {
    const v = ys[i];
    if (v !== null && Number.isFinite(v)) {
      sum += v;
      count++;
    }
    const old = i >= window ? ys[i - window] : null;
    if (old !== null && Number.isFinite(old)) {
      sum -= old;
      count--;
    }
    out[i] = v === null || !Number.isFinite(v) || count === 0 ? null : sum / count;
  }
  return out;
}
