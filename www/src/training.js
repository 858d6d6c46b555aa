// The training view: the runs as the worker reports them, the training curves, α and its
// hypergradient per family (one scale each, cursors in step), the toggles that show or hide a
// run everywhere, and the results table.
import { FAMILIES, familyOf, labelOf } from './params.js';
import { LineChart } from './charts.js';
import { styleOf } from './palette.js';
import { MAX_POINTS, decimate, movingMean } from './series.js';
import { schedule } from './frames.js';

const $ = (id) => document.getElementById(id);

/** Iterations averaged by the loss chart's "Smooth" option. */
const SMOOTH = 25;

/** The runs of one training or sweep, as the worker reports them. */
export class Runs {
  constructor(mode) {
    this.mode = mode;
    this.runs = [];
    this.settings = null;
    this.finished = false;
    this.iteration = 0;
    this.epoch = 0;
    this.iterationsPerEpoch = 0;
    this.dirty = false;
  }

  reset(settings) {
    this.settings = settings;
    this.runs = [];
    this.finished = false;
    this.iteration = 0;
    this.epoch = 0;
    this.dirty = true;
  }

  receive(msg) {
    this.iteration = msg.iteration;
    this.epoch = msg.epoch;
    this.iterationsPerEpoch = msg.iterationsPerEpoch;
    msg.runs.forEach((r, i) => {
      let run = this.runs[i];
      if (!run) {
        run = { id: r.id, label: labelOf(r.id), alpha0: r.alpha0, beta: r.beta, loss: [], alpha: [], signal: [] };
        this.runs[i] = run;
      }
      run.status = r.status;
      run.divergedAt = r.divergedAt;
      run.alphaNow = r.alphaNow;
      // The worker sent every number as its shortest decimal already (`decimal`, params.js).
      run.trainLoss = Array.from(r.trainLoss, nullIfNaN);
      run.testLoss = Array.from(r.testLoss, nullIfNaN);
      run.testAccuracy = Array.from(r.testAccuracy, nullIfNaN);
      for (const v of r.loss) run.loss.push(nullIfNaN(v));
      for (const v of r.alpha) {
        if (run.negativeAt === undefined && v < 0) run.negativeAt = run.alpha.length + 1;
        run.alpha.push(nullIfNaN(v));
      }
      for (const v of r.signal) run.signal.push(nullIfNaN(v));
    });
    this.dirty = true;
  }

  summary() {
    const diverged = this.runs.filter((r) => r.status === 'diverged').length;
    const what = { train: 'Training finished', sweep: 'Sweep finished', betasweep: 'β sweep finished' }[this.mode];
    const tail = diverged > 0 ? `, ${diverged} diverged` : '';
    const epochs = this.mode === 'train' ? this.settings.epochs : this.settings.sweep_epochs;
    return `${what}: ${this.runs.length} run${this.runs.length === 1 ? '' : 's'}, ${epochs} epoch${epochs === 1 ? '' : 's'}${tail}.`;
  }
}

function nullIfNaN(v) {
  return Number.isFinite(v) ? v : null;
}

/** A loss: fixed decimals, or scientific for a run far off the scale. */
export function fmt(v, digits = 4) {
  if (v === null || v === undefined) return '—';
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e4) ? v.toExponential(digits - 1) : v.toFixed(digits);
}

/** A hyperparameter or α, as short as its value allows: 0.01, 0.0549, 1e-7. */
export function short(v, digits = 3) {
  if (v === null || v === undefined) return '—';
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-4 || a >= 1e5)) return v.toExponential(digits - 1).replace(/\.?0+e/, 'e');
  return String(Number(v.toPrecision(digits)));
}

const last = (a) => (a && a.length > 0 ? a[a.length - 1] : null);
const runLabel = (r) => (r.status === 'diverged' ? `${r.label} (diverged)` : r.label);

/** One row per family: α on its own scale, and the hypergradient signal beside it. */
function makePanels() {
  const host = $('alpha-panels');
  const panels = {};
  for (const f of FAMILIES) {
    const row = document.createElement('div');
    row.className = 'panel-row';
    row.dataset.family = f.id;
    row.hidden = true;
    row.innerHTML = `<h3>${f.label} family</h3>
      <figure><figcaption>α per iteration (${f.label}, ${f.label}-HD, ${f.label}-HDM)</figcaption><div id="chart-alpha-${f.id}" class="chart"></div></figure>
      <figure><figcaption>Hypergradient signal: g·d (HD, left) and cos (HDM, right)</figcaption><div id="chart-signal-${f.id}" class="chart"></div></figure>`;
    host.append(row);
    panels[f.id] = {
      row,
      alpha: new LineChart(row.querySelector(`#chart-alpha-${f.id}`), { x: { label: 'iteration', max: 1 }, y: { label: 'α' }, sync: 'iteration', zero: false }),
      signal: new LineChart(row.querySelector(`#chart-signal-${f.id}`), {
        x: { label: 'iteration', max: 1 }, y: { label: 'g·d', robust: true }, right: { label: 'cos', min: -1, max: 1 }, sync: 'iteration', zero: true,
      }),
    };
  }
  return panels;
}

/** The training view. `onRuns(runs)` is told when the set of runs changes. */
export class TrainingView {
  constructor({ onRuns }) {
    this.onRuns = onRuns;
    this.charts = {
      loss: new LineChart($('chart-loss'), { x: { label: 'iteration', max: 1 }, y: { label: 'loss', log: true }, sync: 'iteration' }),
      testLoss: new LineChart($('chart-test-loss'), { x: { label: 'epoch', max: 1 }, y: { label: 'loss', log: true }, points: true }),
      testAccuracy: new LineChart($('chart-test-accuracy'), { x: { label: 'epoch', max: 1 }, y: { label: 'accuracy', percent: true }, points: true }),
    };
    this.panels = makePanels();
    this.key = '';
    this.hidden = new Set();
    $('smooth').addEventListener('change', () => this.render(this.train, true));
  }

  /** Every chart with the runs it shows: [chart, [run index, …]]. */
  layout(runs) {
    const all = runs.map((_, i) => i);
    const out = [[this.charts.loss, all], [this.charts.testLoss, all], [this.charts.testAccuracy, all]];
    for (const f of FAMILIES) {
      const mine = all.filter((i) => familyOf(runs[i].id) === f.id);
      const hd = mine.filter((i) => runs[i].id.includes('-hd'));
      out.push([this.panels[f.id].alpha, mine], [this.panels[f.id].signal, hd]);
    }
    return out;
  }

  /** Called when a new training starts. */
  reset(settings) {
    const epochs = settings.epochs;
    for (const c of [this.charts.testLoss, this.charts.testAccuracy]) c.setXMax(epochs);
  }

  /**
   * Sets the view up for runs of the optimizers `ids` (in order) before they train: the family
   * rows, the run buttons and each chart's lines and legend, each a frame job of its own
   * (frames.js). The page calls it whenever the selection changes, so pressing Train finds it
   * all built and its first frames only fill in numbers.
   */
  prepare(ids) {
    const key = ids.join();
    if (key === this.prepared) return;
    this.prepared = key;
    const runs = ids.map((id) => ({ id, label: labelOf(id) }));
    this.hidden.clear();
    this.layoutNow = this.layout(runs);
    // Lines are set up in a chart's own job, or in its first drawing job if that comes first.
    this.fresh = new Set(this.layoutNow.map(([chart]) => chart));
    this.setUp = (chart, idx) => {
      if (!this.fresh.delete(chart)) return;
      chart.setSeries(idx.map((i) => ({ id: runs[i].id, label: runs[i].label, scale: chart.right && runs[i].id.endsWith('-hdm') ? 'right' : undefined })));
    };
    schedule('train-rows', () => {
      for (const f of FAMILIES) this.panels[f.id].row.hidden = !runs.some((r) => familyOf(r.id) === f.id);
    });
    schedule('train-toggles', () => this.makeToggles(runs));
    this.layoutNow.forEach(([chart, idx], n) => {
      if (idx.length > 0) schedule(`train-${n}`, () => this.setUp(chart, idx), chart.el);
    });
  }

  render(train, force = false) {
    if (!train || (!train.dirty && !force)) return;
    this.train = train;
    train.dirty = false;
    const runs = train.runs;
    const key = runs.map((r) => r.id).join();
    const total = train.settings.epochs * (train.iterationsPerEpoch || 1);
    this.prepare(runs.map((r) => r.id));
    if (key !== this.key) {
      this.key = key;
      this.onRuns(runs);
    }
    const setUp = this.setUp;
    for (const c of [this.charts.loss, ...FAMILIES.flatMap((f) => [this.panels[f.id].alpha, this.panels[f.id].signal])]) c.setXMax(total);
    const smooth = $('smooth').checked;
    const series = (idx, pick) => decimate(idx.map((i) => pick(runs[i])), MAX_POINTS);
    const epochs = Math.max(0, ...runs.map((r) => r.testLoss?.length ?? 0));
    const ex = Array.from({ length: epochs }, (_, i) => i);
    const hidden = [...this.hidden].join();
    this.layoutNow.forEach(([chart, idx], n) => {
      if (idx.length === 0) return;
      const epochly = chart === this.charts.testLoss || chart === this.charts.testAccuracy;
      // What the chart would show: unchanged (the epoch charts between epochs), it is not
      // redrawn.
      const shown = `${epochly ? epochs : runs[idx[0]].loss.length}/${total}/${smooth}/${hidden}/${idx.map((i) => runs[i].status).join()}`;
      if (chart.shown === shown && !this.fresh.has(chart)) return;
      chart.shown = shown;
      const pick = chart === this.charts.loss ? (r) => (smooth ? movingMean(r.loss, SMOOTH) : r.loss)
        : epochly ? (r) => (chart === this.charts.testLoss ? r.testLoss : r.testAccuracy) ?? []
          : Object.values(this.panels).some((p) => p.alpha === chart) ? (r) => r.alpha : (r) => r.signal;
      // Set up, decimated and drawn in a later frame, one chart per frame (see frames.js).
      schedule(`train-${n}`, () => {
        setUp(chart, idx);
        idx.forEach((i, k) => {
          chart.setLabel(k, runLabel(runs[i]));
          chart.setDiverged(k, runs[i].status === 'diverged');
        });
        this.applyHidden(chart, idx);
        if (epochly) {
          chart.setData(ex, idx.map((i) => pick(runs[i])));
        } else {
          const d = series(idx, pick);
          chart.setData(d.xs, d.ys);
        }
      }, chart.el);
    });
    // The text, in frames of its own (frames.js): the table, the buttons, then the charts'
    // text alternatives and the note on negative α.
    schedule('train-table', () => this.renderTable(train));
    schedule('train-toggles-text', () => this.updateToggles(runs));
    schedule('train-text', () => {
      this.describe(runs);
      this.explainNegative(runs);
    });
  }

  /** The text alternative of every chart: each run's final value. */
  describe(runs) {
    const list = (idx, value) => idx.map((i) => `${runLabel(runs[i])} ${value(runs[i])}`).join('; ') || 'no runs';
    const all = runs.map((_, i) => i);
    this.charts.loss.describe(`Training loss per iteration. Latest: ${list(all, (r) => fmt(last(r.loss)))}.`);
    this.charts.testLoss.describe(`Test loss per epoch. Latest: ${list(all, (r) => fmt(last(r.testLoss)))}.`);
    this.charts.testAccuracy.describe(`Test accuracy per epoch. Latest: ${list(all, (r) => { const a = last(r.testAccuracy); return a === null ? '—' : `${(a * 100).toFixed(2)} %`; })}.`);
    for (const f of FAMILIES) {
      const mine = all.filter((i) => familyOf(runs[i].id) === f.id);
      const p = this.panels[f.id];
      p.alpha.describe(`α per iteration, ${f.label} family. ${list(mine, (r) => `from ${short(r.alpha0)} to ${short(last(r.alpha), 4)}`)}.`);
      const hd = mine.filter((i) => runs[i].id.includes('-hd'));
      p.signal.describe(`Hypergradient signal, ${f.label} family. Latest: ${list(hd, (r) => short(last(r.signal), 3))}.`);
    }
  }

  explainNegative(runs) {
    const notes = runs.flatMap((r) => (r.negativeAt === undefined ? [] : [`${r.label}'s α went below zero at iteration ${r.negativeAt}`]));
    const text = notes.length === 0 ? '' : `${notes.join('; ')}. A negative α steps uphill: successive gradients kept disagreeing, so HD kept shrinking α past zero (the paper lets it; a bad β makes it likely). Plain rules never do this.`;
    // Written only when it changes: a write is a DOM mutation (and a live region's announcement).
    if ($('alpha-note').textContent !== text) $('alpha-note').textContent = text;
  }

  /** One button per run: shows or hides it in every chart (the shared legend). */
  makeToggles(runs) {
    const host = $('toggles');
    host.replaceChildren(...runs.map((r, i) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'toggle';
      b.dataset.index = String(i);
      b.setAttribute('aria-pressed', 'true');
      b.textContent = r.label;
      b.style.borderLeftColor = styleOf(r.id).stroke;
      b.addEventListener('click', () => {
        if (this.hidden.has(i)) this.hidden.delete(i);
        else this.hidden.add(i);
        b.setAttribute('aria-pressed', String(!this.hidden.has(i)));
        this.render(this.train, true);
      });
      return b;
    }));
    if (runs.length > 1) {
      const only = document.createElement('select');
      only.id = 'isolate';
      only.setAttribute('aria-label', 'Show only one family');
      only.append(new Option('All families', ''), ...FAMILIES.filter((f) => runs.some((r) => familyOf(r.id) === f.id)).map((f) => new Option(`Only ${f.label}`, f.id)));
      only.addEventListener('change', () => {
        this.hidden = new Set(runs.map((r, i) => (only.value && familyOf(r.id) !== only.value ? i : -1)).filter((i) => i >= 0));
        host.querySelectorAll('button.toggle').forEach((b) => b.setAttribute('aria-pressed', String(!this.hidden.has(Number(b.dataset.index)))));
        this.render(this.train, true);
      });
      host.append(only);
    }
  }

  updateToggles(runs) {
    $('toggles').querySelectorAll('button.toggle').forEach((b) => {
      const r = runs[Number(b.dataset.index)];
      if (!r) return; // buttons of another selection, about to be replaced
      const text = `${runLabel(r)} · loss ${fmt(last(r.trainLoss), 3)} · α ${r.status === 'diverged' ? '—' : short(r.alphaNow, 3)}`;
      if (b.textContent !== text) b.textContent = text;
    });
  }

  applyHidden(chart, idx) {
    idx.forEach((i, k) => chart.show(k, !this.hidden.has(i)));
  }

  renderTable(train) {
    const body = $('results').tBodies[0];
    const total = train.settings.epochs;
    const rows = train.runs.map((r) => {
      const done = Math.max(0, (r.testLoss?.length ?? 1) - 1);
      const acc = last(r.testAccuracy);
      return [
        runLabel(r),
        short(r.alpha0),
        r.beta === null ? '—' : short(r.beta),
        `${done} / ${total}`,
        fmt(last(r.trainLoss)),
        fmt(last(r.testLoss)),
        acc === null ? '—' : `${(acc * 100).toFixed(2)} %`,
        r.status === 'diverged' ? '—' : short(r.alphaNow, 4),
      ];
    });
    while (body.rows.length > rows.length) body.deleteRow(-1);
    const heads = [...$('results').tHead.rows[0].cells].map((c) => c.textContent);
    rows.forEach((cells, i) => {
      let row = body.rows[i];
      if (!row) {
        row = body.insertRow();
        // Stacked on a phone: each cell says which column it is.
        for (const label of heads) row.insertCell().dataset.label = label;
      }
      const { id, status } = train.runs[i];
      if (row.dataset.id !== id) row.dataset.id = id;
      if (row.dataset.status !== status) row.dataset.status = status;
      cells.forEach((text, j) => {
        const cell = row.cells[j];
        if (cell.textContent !== text) cell.textContent = text;
      });
    });
  }
}
