// Line charts on uPlot: one line per optimizer, styled by `styleOf` (palette.js) so a chart
// reads without its legend.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { styleOf } from './palette.js';

export { styleOf };

function formatNumber(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : Number(v.toPrecision(4)).toString();
}

/** One font for every axis' ticks and label: uPlot sets the canvas font only when it changes,
 * and setting it (a CSS font parse) was a tenth of the page's drawing time with its default
 * two fonts per axis. */
const AXIS_FONT = '12px system-ui, sans-serif';

/** The quantile `q` of sorted finite values (nearest rank). */
function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];
}

/**
 * A chart whose series can be replaced. `x` describes the x axis: { label, log, integer, max }
 * (`max`: the axis spans 0…max from the start). `y`: { label, log, percent, robust } (`robust`:
 * the range covers the 2nd to 98th percentile, so a few early spikes do not flatten the rest).
 * `right`: an optional second y scale { label, min, max } for series declared with
 * `scale: 'right'`. `sync`: charts with the same key share the hover cursor. `zero`: draw y = 0.
 */
export class LineChart {
  constructor(el, { x, y, right = null, points = false, sync = null, zero = false }) {
    this.el = el;
    this.x = x;
    this.y = y;
    this.right = right;
    this.sync = sync;
    this.zero = zero;
    this.points = points;
    this.plot = null;
    this.series = [];
    // The width the observer reports: reading `clientWidth` in a frame would force a layout of
    // the page (the element's height changes with its legend on every new line). Resizing in
    // the observer's own callback would resize the element again within the same frame (the
    // browser's "ResizeObserver loop" error); the next frame is soon enough.
    this.width = el.clientWidth;
    this.observer = new ResizeObserver((entries) => {
      const width = entries.at(-1).contentRect.width;
      if (width === this.width) return;
      this.width = width;
      requestAnimationFrame(() => this.resize());
    });
    this.observer.observe(el);
    this.create();
  }

  size() {
    const width = Math.max(240, Math.floor(this.width));
    return { width, height: Math.round(Math.min(280, Math.max(180, width * 0.55))) };
  }

  resize() {
    const size = this.size();
    if (this.plot && (size.width !== this.plot.width || size.height !== this.plot.height)) this.plot.setSize(size);
  }

  /** The y value formatter of the legend. */
  formatY(v) {
    if (this.y.percent) return v === null || v === undefined ? '—' : `${(v * 100).toFixed(2)} %`;
    return formatNumber(v);
  }

  /** Creates the (empty) plot once: later series changes add and delete lines in place,
   * which costs a fraction of re-creating the chart's DOM (a long main-thread task). */
  create() {
    const opts = {
      ...this.size(),
      scales: {
        x: { time: false, distr: this.x.log ? 3 : 1, ...(this.x.max ? { range: (u, lo, hi) => this.xRange(lo, hi) } : {}) },
        y: { distr: this.y.log ? 3 : 1, range: (u, lo, hi) => this.yRange(u, lo, hi) },
        ...(this.right ? { right: { range: [this.right.min, this.right.max] } } : {}),
      },
      axes: [
        {
          label: this.x.label,
          font: AXIS_FONT,
          labelFont: AXIS_FONT,
          values: this.x.log ? (u, vals) => vals.map((v) => (v === null ? '' : v.toExponential(0))) : undefined,
          // Epochs and iterations are whole numbers: no ticks at 0.5.
          ...(this.x.log ? {} : { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000] }),
        },
        {
          label: this.y.label,
          font: AXIS_FONT,
          labelFont: AXIS_FONT,
          size: 64,
          values: (u, vals) => vals.map((v) => (v === null ? '' : this.y.percent ? `${Math.round(v * 100)} %` : formatNumber(v))),
        },
        ...(this.right ? [{ scale: 'right', side: 1, label: this.right.label, font: AXIS_FONT, labelFont: AXIS_FONT, size: 48, grid: { show: false } }] : []),
      ],
      legend: { live: true },
      cursor: { drag: { x: true, y: false }, ...(this.sync ? { sync: { key: this.sync, setSeries: false } } : {}) },
      hooks: {
        draw: this.zero ? [(u) => this.drawZero(u)] : [],
        // The y range in the DOM, for tests and assistive tools (the axes are canvas pixels).
        setScale: [
          (u, key) => {
            if (key !== 'x' && key !== 'y') return;
            this.el.dataset[`${key}Min`] = String(u.scales[key].min);
            this.el.dataset[`${key}Max`] = String(u.scales[key].max);
          },
        ],
      },
      series: [{ label: this.x.label, value: (u, v) => (v === null ? '—' : this.x.log ? v.toExponential(0) : String(v)) }],
    };
    this.plot = new uPlot(opts, [[]], this.el);
    this.el.dataset.empty = 'true';
  }

  /** The x range: 0…max (or the data's end, if later) so an empty chart shows its real span. */
  xRange(lo, hi) {
    return [this.x.min ?? 0, Math.max(this.x.max, hi ?? 0)];
  }

  /** Sets the x axis' end (e.g. the number of epochs). */
  setXMax(max) {
    this.x.max = max;
  }

  /** A thin line at y = 0: the sign of a hypergradient is what matters. */
  drawZero(u) {
    const y = u.valToPos(0, 'y', true);
    if (!Number.isFinite(y) || y < u.bbox.top || y > u.bbox.top + u.bbox.height) return;
    const ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = '#57606a';
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(u.bbox.left, y);
    ctx.lineTo(u.bbox.left + u.bbox.width, y);
    ctx.stroke();
    ctx.restore();
  }

  /** The chart's text alternative (assistive tools cannot read a canvas). */
  describe(text) {
    if (this.el.getAttribute('aria-label') !== text) {
      this.el.setAttribute('role', 'img');
      this.el.setAttribute('aria-label', text);
    }
  }

  /** Replaces the lines: `series` is [{ id, label, scale? }]. Clears the data. */
  setSeries(series) {
    if (!this.plot) this.create();
    this.plot.setData([[], ...this.series.map(() => [])]);
    for (let i = this.series.length; i >= 1; i--) this.plot.delSeries(i);
    this.series = series.map((s) => ({ ...s, diverged: false }));
    series.forEach((s, i) => {
      this.plot.addSeries(
        {
          label: s.label,
          ...styleOf(s.id),
          ...(s.scale ? { scale: s.scale } : {}),
          ...(s.style ?? {}),
          spanGaps: false,
          value: (u, v) => this.formatY(v),
          points: { show: this.points, size: 7 },
        },
        i + 1,
      );
    });
    this.plot.setData([[], ...series.map(() => [])]);
  }

  /** Sets x values and one y array per series (null for a gap). */
  setData(xs, ys) {
    this.el.dataset.empty = String(xs.length === 0 || ys.length === 0);
    this.plot?.setData([xs, ...ys]);
  }

  /**
   * The y range from the lines that did not diverge (all of them if every one did): a run that
   * blew up must not squash the others into a flat line at the bottom of the chart.
   */
  yRange(u, lo, hi) {
    let [min, max] = [Infinity, -Infinity];
    const all = this.series.every((s) => s.diverged || s.scale);
    const values = [];
    this.series.forEach((s, i) => {
      if ((s.diverged && !all) || s.scale) return;
      for (const v of u.data[i + 1] ?? []) {
        if (v === null || !Number.isFinite(v) || (this.y.log && v <= 0)) continue;
        if (this.y.robust) values.push(v);
        if (v < min) min = v;
        if (v > max) max = v;
      }
    });
    if (this.y.robust && values.length > 20) {
      values.sort((a, b) => a - b);
      [min, max] = [quantile(values, 0.02), quantile(values, 0.98)];
    }
    if (this.zero && min <= max) [min, max] = [Math.min(min, 0), Math.max(max, 0)];
    if (min > max) [min, max] = this.y.log ? [0.1, 10] : [0, 1]; // nothing to show yet
    if (this.y.log) return uPlot.rangeLog(Math.max(min, 1e-12), Math.max(max, 1e-12), 10, true);
    return uPlot.rangeNum(min, max, 0.1, true);
  }

  /** Shows or hides series `i`. */
  show(i, visible) {
    const s = this.plot?.series[i + 1];
    if (s && s.show !== visible) this.plot.setSeries(i + 1, { show: visible });
  }

  /** Marks series `i` diverged (it no longer sets the y range). */
  setDiverged(i, diverged) {
    const s = this.series[i];
    if (s) s.diverged = diverged;
  }

  /** Renames series `i` (e.g. to mark it diverged). */
  setLabel(i, label) {
    const el = this.plot?.root.querySelectorAll('.u-legend .u-series')[i + 1]?.querySelector('.u-label');
    if (el && el.textContent !== label) el.textContent = label;
  }
}
