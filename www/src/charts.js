// Line charts: one line per optimizer, styled by `styleOf` (palette.js) so a chart reads without
// its legend. The canvas is drawn by the chart worker (chart-worker.js): this thread keeps only
// the legend, the hover cursor and the scales, so a redraw costs it a message, not a drawing.
// The DOM keeps uPlot's class names (u-wrap, u-over, u-cursor-x, u-legend, u-series, u-label,
// u-value, u-off), which the styles and the tests read.
import { fraction, formatNumber, nearest, plotBox, rangeLog, rangeNum, valueAt } from './axes.js';
import { styleOf } from './palette.js';
import { draw } from './chart-draw.js';
import { schedule } from './frames.js';

export { styleOf };

/** The quantile `q` of sorted finite values (nearest rank). */
function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))];
}

/** The one chart worker, started with the first chart. */
let painter = null;
let nextId = 0;
/** The charts of each cursor group (`sync` key). */
const groups = new Map();

/** True where a canvas can be handed to a worker (every current browser). */
const OFFSCREEN = typeof HTMLCanvasElement !== 'undefined' && 'transferControlToOffscreen' in HTMLCanvasElement.prototype;

function element(tag, className, parent) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  parent?.append(el);
  return el;
}

/**
 * A chart whose series can be replaced. `x` describes the x axis: { label, log, max } (`max`:
 * the axis spans 0…max from the start). `y`: { label, log, percent, robust } (`robust`: the
 * range covers the 2nd to 98th percentile, so a few early spikes do not flatten the rest).
 * `right`: an optional second y scale { label, min, max } for series declared with
 * `scale: 'right'`. `sync`: charts with the same key share the hover cursor. `zero`: draw y = 0.
 * `el` gets `data-x-min`, `data-x-max`, `data-y-min`, `data-y-max` (the drawn ranges),
 * `data-points` (the most points of a drawn line) and `data-size` (the CSS pixels the worker
 * draws, width × height), for tests and assistive tools.
 */
export class LineChart {
  constructor(el, { x, y, right = null, points = false, sync = null, zero = false }) {
    this.el = el;
    this.x = x;
    this.y = y;
    this.right = right;
    this.zero = zero;
    this.points = points;
    this.series = [];
    this.xs = [];
    this.ys = [];
    this.id = nextId++;
    // The width the observer reports: reading `clientWidth` in a frame would force a layout of
    // the page. Resizing in the observer's own callback would resize the element again within
    // the same frame (the browser's "ResizeObserver loop" error): the resize is a job of a
    // later frame (frames.js), one chart per frame when many change width at once.
    this.width = el.clientWidth;
    this.observer = new ResizeObserver((entries) => {
      const width = entries.at(-1).contentRect.width;
      if (width === this.width) return;
      this.width = width;
      schedule(`resize-${this.id}`, () => this.resize(), this.el);
    });
    this.observer.observe(el);
    this.create();
    if (sync) {
      if (!groups.has(sync)) groups.set(sync, new Set());
      this.group = groups.get(sync);
      this.group.add(this);
    } else {
      this.group = new Set([this]);
    }
  }

  size() {
    const width = Math.max(240, Math.floor(this.width));
    return { width, height: Math.round(Math.min(280, Math.max(180, width * 0.55))) };
  }

  /** The DOM: the canvas (handed to the chart worker), the hover layer and the legend. */
  create() {
    this.wrap = element('div', 'u-wrap', this.el);
    this.canvas = element('canvas', '', this.wrap);
    this.over = element('div', 'u-over', this.wrap);
    this.cursor = element('div', 'u-cursor-x', this.over);
    this.cursor.hidden = true;
    this.legend = element('table', 'u-legend', this.el);
    this.legendBody = element('tbody', '', this.legend);
    this.legendRows = [];
    this.setLegend();
    if (OFFSCREEN) {
      painter ??= new Worker(new URL('./chart-worker.js', import.meta.url), { type: 'module' });
      const offscreen = this.canvas.transferControlToOffscreen();
      painter.postMessage({ op: 'add', id: this.id, canvas: offscreen }, [offscreen]);
    }
    this.over.addEventListener('pointermove', (e) => {
      const box = this.box();
      const at = valueAt(e.offsetX / box.width, this.scaleX());
      for (const chart of this.group) chart.cursorAt(at);
    });
    this.over.addEventListener('pointerleave', () => {
      for (const chart of this.group) chart.cursorAt(null);
    });
    this.layout();
    this.el.dataset.empty = 'true';
  }

  /** Sizes the canvas and the hover layer to the chart's width, when that changed: every paint
   * checks, so the canvas on the page always has the size the worker draws at. */
  layout() {
    const { width, height } = this.size();
    if (this.laidOut === `${width}x${height}`) return;
    this.laidOut = `${width}x${height}`;
    this.wrap.style.width = `${width}px`;
    this.wrap.style.height = `${height}px`;
    const box = this.box();
    Object.assign(this.over.style, { left: `${box.left}px`, top: `${box.top}px`, width: `${box.width}px`, height: `${box.height}px` });
  }

  resize() {
    this.paint();
  }

  box() {
    const { width, height } = this.size();
    return plotBox(width, height, Boolean(this.right));
  }

  /** The y value formatter of the legend. */
  formatY(v) {
    if (this.y.percent) return v === null || v === undefined ? '—' : `${(v * 100).toFixed(2)} %`;
    return formatNumber(v);
  }

  formatX(v) {
    if (v === null || v === undefined) return '—';
    return this.x.log ? v.toExponential(0) : String(v);
  }

  /** The legend: the x axis' row, then one row per series (its colour, label and hover value). */
  setLegend() {
    const rows = [{ label: this.x.label }, ...this.series];
    this.legendRows = rows.map((s, i) => {
      const tr = element('tr', 'u-series');
      const th = element('th', '', tr);
      if (i > 0) {
        const marker = element('span', 'u-marker', th);
        const style = { ...styleOf(s.id), ...(s.style ?? {}) };
        marker.style.borderColor = style.stroke;
        marker.style.borderStyle = style.dash ? 'dashed' : 'solid';
      }
      const label = element('span', 'u-label', th);
      label.textContent = s.label;
      const value = element('td', 'u-value', tr);
      value.textContent = '—';
      return { tr, label, value };
    });
    this.legendBody.replaceChildren(...this.legendRows.map((r) => r.tr));
  }

  /** The x range: 0…max (or the data's end, if later) so an empty chart shows its real span. */
  xRange() {
    const xs = this.xs;
    if (this.x.max) return [this.x.min ?? 0, Math.max(this.x.max, xs.length ? xs[xs.length - 1] : 0)];
    if (xs.length === 0) return this.x.log ? [0.1, 10] : [0, 1];
    const [lo, hi] = [xs[0], xs[xs.length - 1]];
    if (this.x.log) return rangeLog(lo, hi);
    return hi > lo ? [lo, hi] : [lo - 1, hi + 1];
  }

  scaleX() {
    const [min, max] = this.xRange();
    return { min, max, log: Boolean(this.x.log), label: this.x.label, exp: Boolean(this.x.log), integer: !this.x.log };
  }

  /** Sets the x axis' end (e.g. the number of epochs). */
  setXMax(max) {
    this.x.max = max;
  }

  /** The chart's text alternative (assistive tools cannot read a canvas). */
  describe(text) {
    if (this.el.getAttribute('aria-label') !== text) {
      this.el.setAttribute('role', 'img');
      this.el.setAttribute('aria-label', text);
    }
  }

  /** Replaces the lines: `series` is [{ id, label, scale?, style? }]. Clears the data. */
  setSeries(series) {
    this.series = series.map((s) => ({ ...s, diverged: false, show: true }));
    this.xs = [];
    this.ys = [];
    this.setLegend();
    this.paint();
  }

  /** Sets x values and one y array per series (null for a gap), and draws them. */
  setData(xs, ys) {
    this.xs = xs;
    this.ys = ys;
    this.el.dataset.empty = String(xs.length === 0 || ys.length === 0);
    this.paint();
  }

  /**
   * The y range from the lines that did not diverge (all of them if every one did): a run that
   * blew up must not squash the others into a flat line at the bottom of the chart.
   */
  yRange() {
    let [min, max] = [Infinity, -Infinity];
    const all = this.series.every((s) => s.diverged || s.scale);
    const values = [];
    this.series.forEach((s, i) => {
      if ((s.diverged && !all) || s.scale) return;
      for (const v of this.ys[i] ?? []) {
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
    if (this.y.log) return rangeLog(Math.max(min, 1e-12), Math.max(max, 1e-12));
    return rangeNum(min, max);
  }

  /** Sends the chart's latest state to the chart worker, and its ranges to the DOM. */
  paint() {
    this.layout();
    const x = this.scaleX();
    const [ymin, ymax] = this.yRange();
    const y = { min: ymin, max: ymax, log: Boolean(this.y.log), percent: Boolean(this.y.percent), label: this.y.label };
    const data = this.el.dataset;
    const { width, height } = this.size();
    const attrs = { xMin: x.min, xMax: x.max, yMin: y.min, yMax: y.max, points: this.xs.length, size: `${width}x${height}` };
    for (const [k, v] of Object.entries(attrs)) if (data[k] !== String(v)) data[k] = String(v);
    const xs = Float64Array.from(this.xs);
    const lines = this.series.map((s, i) => {
      const style = { ...styleOf(s.id), ...(s.style ?? {}) };
      const from = this.ys[i] ?? [];
      const ys = new Float64Array(from.length);
      for (let k = 0; k < from.length; k++) ys[k] = from[k] ?? NaN;
      return { ys, stroke: style.stroke, width: style.width, dash: style.dash ?? null, right: s.scale === 'right', show: s.show };
    });
    const frame = {
      x, y, xs, lines, points: this.points, zero: this.zero,
      right: this.right ? { min: this.right.min, max: this.right.max, label: this.right.label } : null,
    };
    const msg = { op: 'draw', id: this.id, ...this.size(), dpr: globalThis.devicePixelRatio || 1, frame };
    if (OFFSCREEN) painter.postMessage(msg, [xs.buffer, ...lines.map((l) => l.ys.buffer)]);
    else draw(this.canvas, msg);
    this.cursorAt(this.hover ?? null);
  }

  /** Moves the hover cursor to the point nearest x value `at` (null: hides it) and shows the
   * values there in the legend. */
  cursorAt(at) {
    this.hover = at;
    const i = at === null ? -1 : nearest(this.xs, at);
    // Written only when it changes: every write is a DOM mutation, restyled in the next frame.
    if (this.cursor.hidden !== i < 0) this.cursor.hidden = i < 0;
    if (i >= 0) this.cursor.style.transform = `translateX(${(fraction(this.xs[i], this.scaleX()) * this.box().width).toFixed(1)}px)`;
    this.legendRows.forEach((r, k) => {
      const text = i < 0 ? '—' : k === 0 ? this.formatX(this.xs[i]) : this.formatY(this.ys[k - 1]?.[i] ?? null);
      if (r.value.textContent !== text) r.value.textContent = text;
    });
  }

  /** Shows or hides series `i` (drawn so with the next `setData`). */
  show(i, visible) {
    const s = this.series[i];
    if (!s || s.show === visible) return;
    s.show = visible;
    this.legendRows[i + 1].tr.classList.toggle('u-off', !visible);
  }

  /** Marks series `i` diverged (it no longer sets the y range). */
  setDiverged(i, diverged) {
    const s = this.series[i];
    if (s) s.diverged = diverged;
  }

  /** Renames series `i` (e.g. to mark it diverged). */
  setLabel(i, label) {
    const el = this.legendRows[i + 1]?.label;
    if (el && el.textContent !== label) el.textContent = label;
  }
}
