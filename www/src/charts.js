// Line charts on uPlot: one line per optimizer, colours by family (SGD blue, SGDN green,
// Adam orange), plain solid, HD thick, HDM dashed, so a chart reads without its legend.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

const FAMILY = { sgd: ['#6baed6', '#2171b5', '#08306b'], sgdn: ['#74c476', '#238b45', '#00441b'], adam: ['#fd8d3c', '#d94801', '#7f2704'] };

/** Stroke colour, width and dash of an optimizer id's line. */
export function styleOf(id) {
  const [base, variant = ''] = id.split('-');
  const shades = FAMILY[base] ?? ['#777', '#444', '#000'];
  if (variant === 'hd') return { stroke: shades[1], width: 2.25 };
  if (variant === 'hdm') return { stroke: shades[2], width: 1.75, dash: [6, 4] };
  return { stroke: shades[0], width: 1.75 };
}

function formatNumber(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : Number(v.toPrecision(4)).toString();
}

/**
 * A chart whose series can be replaced. `x` describes the x axis: { label, log, integer }.
 * `y`: { label, log, percent, min, max }.
 */
export class LineChart {
  constructor(el, { x, y, points = false }) {
    this.el = el;
    this.x = x;
    this.y = y;
    this.points = points;
    this.plot = null;
    this.series = [];
    // Resizing in the observer's own callback would resize the element again within the same
    // frame (the browser's "ResizeObserver loop" error); the next frame is soon enough.
    this.observer = new ResizeObserver(() => requestAnimationFrame(() => this.resize()));
    this.observer.observe(el);
    this.create();
  }

  size() {
    const width = Math.max(240, Math.floor(this.el.clientWidth));
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
        x: { time: false, distr: this.x.log ? 3 : 1 },
        y: { distr: this.y.log ? 3 : 1, range: (u, lo, hi) => this.yRange(u, lo, hi) },
      },
      axes: [
        {
          label: this.x.label,
          values: this.x.log ? (u, vals) => vals.map((v) => (v === null ? '' : v.toExponential(0))) : undefined,
          // Epochs and iterations are whole numbers: no ticks at 0.5.
          ...(this.x.log ? {} : { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000] }),
        },
        {
          label: this.y.label,
          size: 64,
          values: (u, vals) => vals.map((v) => (v === null ? '' : this.y.percent ? `${Math.round(v * 100)} %` : formatNumber(v))),
        },
      ],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      hooks: {
        // The y range in the DOM, for tests and assistive tools (the axes are canvas pixels).
        setScale: [
          (u, key) => {
            if (key !== 'y') return;
            this.el.dataset.yMin = String(u.scales.y.min);
            this.el.dataset.yMax = String(u.scales.y.max);
          },
        ],
      },
      series: [{ label: this.x.label, value: (u, v) => (v === null ? '—' : this.x.log ? v.toExponential(0) : String(v)) }],
    };
    this.plot = new uPlot(opts, [[]], this.el);
  }

  /** Replaces the lines: `series` is [{ id, label }]. Clears the data. */
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
    this.plot?.setData([xs, ...ys]);
  }

  /**
   * The y range from the lines that did not diverge (all of them if every one did): a run that
   * blew up must not squash the others into a flat line at the bottom of the chart.
   */
  yRange(u, lo, hi) {
    let [min, max] = [Infinity, -Infinity];
    const all = this.series.every((s) => s.diverged);
    this.series.forEach((s, i) => {
      if (s.diverged && !all) return;
      for (const v of u.data[i + 1] ?? []) {
        if (v === null || !Number.isFinite(v) || (this.y.log && v <= 0)) continue;
        if (v < min) min = v;
        if (v > max) max = v;
      }
    });
    if (min > max) [min, max] = this.y.log ? [0.1, 10] : [0, 1]; // nothing to show yet
    if (this.y.log) return uPlot.rangeLog(Math.max(min, 1e-12), Math.max(max, 1e-12), 10, true);
    return uPlot.rangeNum(min, max, 0.1, true);
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
