// The page: settings (validated, mirrored in the URL), the training worker, live charts, the
// results table, the α0 sweep, the weight images and the drawing pad. The maths runs in the
// worker (hd-wasm); this thread only draws, so it never blocks for long.
import {
  FIELDS, OPTIMIZERS, PAPER, SWEEP_ALPHAS, fromQuery, labelOf, parseField, parseOptimizers, toCsv, toQuery,
} from './params.js';
import { LineChart } from './charts.js';
import { decimate } from './series.js';
import { preprocess, drawWeights } from './digits.js';

const $ = (id) => document.getElementById(id);
const form = $('settings');
const statusEl = $('status');
const buttons = { start: $('start'), stop: $('stop'), sweep: $('sweep'), export: $('export'), sweepExport: $('sweep-export') };

/** Most points per line a chart draws (see `decimate`). */
const MAX_POINTS = 1500;
/** Least time between two redraws: the charts need not follow every 25 ms slice. */
const REDRAW_MS = 120;

// ---------- settings form ----------

const optimizerList = $('optimizer-list');
for (const o of OPTIMIZERS) {
  const label = document.createElement('label');
  const box = document.createElement('input');
  box.type = 'checkbox';
  box.name = 'opt';
  box.value = o.id;
  label.append(box, ` ${o.label}`);
  optimizerList.append(label);
}
const optBoxes = [...optimizerList.querySelectorAll('input')];

function setError(key, message) {
  const err = $(`${key}-error`);
  if (err) err.textContent = message ?? '';
  const input = key === 'opt' ? null : $(key);
  if (input) input.setAttribute('aria-invalid', message ? 'true' : 'false');
}

function formatValue(v) {
  return String(v);
}

function writeForm(settings) {
  for (const key of Object.keys(FIELDS)) $(key).value = formatValue(settings[key]);
  for (const box of optBoxes) box.checked = settings.opt.includes(box.value);
  syncSlider();
}

/** Validates every field; shows each message inline. Returns settings, or null when invalid. */
function readForm() {
  const settings = {};
  let ok = true;
  for (const key of Object.keys(FIELDS)) {
    const r = parseField(key, $(key).value);
    setError(key, r.error);
    if ('error' in r) ok = false;
    else settings[key] = r.value;
  }
  const r = parseOptimizers(optBoxes.filter((b) => b.checked).map((b) => b.value).join(','));
  setError('opt', r.error);
  if ('error' in r) ok = false;
  else settings.opt = r.value;
  return ok ? settings : null;
}

function syncSlider() {
  const r = parseField('alpha0', $('alpha0').value);
  if ('value' in r) $('alpha0-slider').value = String(Math.log10(r.value));
}

$('alpha0-slider').addEventListener('input', (e) => {
  // Two significant digits are plenty on a log scale and keep the URL short.
  $('alpha0').value = String(Number((10 ** Number(e.target.value)).toPrecision(2)));
  onFormChange();
});

function onFormChange() {
  const settings = readForm();
  if (settings) {
    const query = toQuery(settings);
    $('permalink').href = `?${query}`;
    history.replaceState(null, '', `?${query}`);
  }
  if (document.activeElement?.id === 'alpha0') syncSlider();
  updateButtons();
}

form.addEventListener('input', (e) => {
  if (e.target.id !== 'alpha0-slider') onFormChange();
});
// The sweep's own field sits outside the form (Enter there runs the sweep, not training).
$('sweep_epochs').addEventListener('input', onFormChange);
$('sweep_epochs').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') start('sweep');
});

$('paper').addEventListener('click', () => {
  for (const [key, v] of Object.entries(PAPER)) $(key).value = formatValue(v);
  syncSlider();
  onFormChange();
});

// ---------- worker ----------

const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
let ready = false;
let busy = null; // 'train' | 'sweep' | null
let autoRun = false;

// Train and the sweep stay enabled while settings are invalid: pressing them explains what to
// fix (a disabled button would not say why).
function updateButtons() {
  buttons.start.disabled = !ready || busy !== null;
  buttons.sweep.disabled = !ready || busy !== null;
  buttons.stop.disabled = busy === null;
  buttons.export.disabled = train.runs.length === 0;
  buttons.sweepExport.disabled = sweep.runs.length === 0;
}

function setStatus(text) {
  statusEl.textContent = text;
}

worker.onmessage = ({ data }) => {
  switch (data.type) {
    case 'ready':
      ready = true;
      performance.mark('hd-ready');
      document.documentElement.dataset.ready = 'true';
      setStatus(`Ready: ${data.digits.toLocaleString('en')} digits loaded. Choose settings and press Train.`);
      updateButtons();
      if (autoRun) start('train');
      break;
    case 'progress':
      (data.mode === 'sweep' ? sweep : train).receive(data);
      scheduleRender();
      break;
    case 'done':
      if (data.stopped) {
        if (busy) setStatus(`Stopped${busy === 'sweep' ? ' the sweep' : ''}.`);
      } else {
        (data.mode === 'sweep' ? sweep : train).finished = true;
        render();
        if (data.mode === 'train') requestWeights(true); // the final weights, not a throttled earlier copy
        setStatus(data.mode === 'sweep' ? sweep.summary() : train.summary());
      }
      busy = null;
      updateButtons();
      break;
    case 'prediction':
      showProbabilities(data.probs);
      break;
    case 'weights':
      drawWeights($('weights'), data.weights);
      break;
    case 'error':
      console.error(`hd demo: ${data.message}`);
      setStatus(`Error: ${data.message}`);
      busy = null;
      updateButtons();
      break;
    default:
      break;
  }
};

function start(mode) {
  const settings = readForm();
  if (!settings) {
    setStatus('Fix the highlighted settings first.');
    updateButtons();
    return;
  }
  if (!ready || busy) return;
  busy = mode;
  (mode === 'sweep' ? sweep : train).reset(settings);
  worker.postMessage({ type: mode, settings });
  setStatus(mode === 'sweep' ? 'Sweeping α0…' : 'Training…');
  updateButtons();
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  start('train');
});
buttons.sweep.addEventListener('click', () => start('sweep'));
buttons.stop.addEventListener('click', () => worker.postMessage({ type: 'stop' }));

// ---------- training state ----------

class Runs {
  constructor(mode) {
    this.mode = mode;
    this.runs = [];
    this.settings = null;
    this.finished = false;
    this.iteration = 0;
    this.epoch = 0;
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
    msg.runs.forEach((r, i) => {
      let run = this.runs[i];
      if (!run) {
        run = { id: r.id, label: labelOf(r.id), alpha0: decimal(r.alpha0), beta: r.beta === null ? null : decimal(r.beta), loss: [], alpha: [] };
        this.runs[i] = run;
      }
      run.status = r.status;
      run.divergedAt = r.divergedAt;
      run.alphaNow = r.alphaNow;
      run.trainLoss = Array.from(r.trainLoss, (v) => decimal(nullIfNaN(v)));
      run.testLoss = Array.from(r.testLoss, (v) => decimal(nullIfNaN(v)));
      run.testAccuracy = Array.from(r.testAccuracy, (v) => decimal(nullIfNaN(v)));
      for (const v of r.loss) run.loss.push(decimal(nullIfNaN(v)));
      for (const v of r.alpha) run.alpha.push(decimal(nullIfNaN(v)));
    });
    this.dirty = true;
  }

  summary() {
    const diverged = this.runs.filter((r) => r.status === 'diverged').length;
    const what = this.mode === 'sweep' ? 'Sweep finished' : 'Training finished';
    const tail = diverged > 0 ? `, ${diverged} diverged` : '';
    const epochs = this.mode === 'sweep' ? this.settings.sweep_epochs : this.settings.epochs;
    return `${what}: ${this.runs.length} run${this.runs.length === 1 ? '' : 's'}, ${epochs} epoch${epochs === 1 ? '' : 's'}${tail}.`;
  }
}

function nullIfNaN(v) {
  return Number.isFinite(v) ? v : null;
}

/** The shortest decimal that reads back as the same f32 (7 significant digits suffice):
 * the α0 a user typed as 0.001 comes back from wasm as 0.0010000000474974513. */
function decimal(v) {
  return v === null ? null : Number(v.toPrecision(7));
}

const train = new Runs('train');
const sweep = new Runs('sweep');

// ---------- charts and table ----------

const charts = {
  loss: new LineChart($('chart-loss'), { x: { label: 'iteration' }, y: { label: 'loss', log: true } }),
  alpha: new LineChart($('chart-alpha'), { x: { label: 'iteration' }, y: { label: 'α' } }),
  testLoss: new LineChart($('chart-test-loss'), { x: { label: 'epoch' }, y: { label: 'loss', log: true }, points: true }),
  testAccuracy: new LineChart($('chart-test-accuracy'), { x: { label: 'epoch' }, y: { label: 'accuracy', percent: true }, points: true }),
  sweep: new LineChart($('chart-sweep'), { x: { label: 'α0', log: true }, y: { label: 'training loss', log: true }, points: true }),
};
let seriesKey = '';
let sweepKey = '';
let lastRender = 0;
let renderPending = false;

function scheduleRender() {
  if (renderPending) return;
  renderPending = true;
  const wait = Math.max(0, REDRAW_MS - (performance.now() - lastRender));
  setTimeout(() => requestAnimationFrame(() => {
    renderPending = false;
    render();
  }), wait);
}

function runLabel(r) {
  return r.status === 'diverged' ? `${r.label} (diverged)` : r.label;
}

function render() {
  lastRender = performance.now();
  if (train.dirty) renderTrain();
  if (sweep.dirty) renderSweep();
}

function renderTrain() {
  train.dirty = false;
  const runs = train.runs;
  const key = runs.map((r) => r.id).join();
  if (key !== seriesKey) {
    seriesKey = key;
    const series = runs.map((r) => ({ id: r.id, label: r.label }));
    for (const c of [charts.loss, charts.alpha, charts.testLoss, charts.testAccuracy]) c.setSeries(series);
    fillRunSelect(runs);
  }
  runs.forEach((r, i) => {
    for (const c of [charts.loss, charts.alpha, charts.testLoss, charts.testAccuracy]) {
      c.setLabel(i, runLabel(r));
      c.setDiverged(i, r.status === 'diverged');
    }
  });
  const loss = decimate(runs.map((r) => r.loss), MAX_POINTS);
  charts.loss.setData(loss.xs, loss.ys);
  const alpha = decimate(runs.map((r) => r.alpha), MAX_POINTS);
  charts.alpha.setData(alpha.xs, alpha.ys);
  const epochs = Math.max(0, ...runs.map((r) => r.testLoss?.length ?? 0));
  const ex = Array.from({ length: epochs }, (_, i) => i);
  charts.testLoss.setData(ex, runs.map((r) => r.testLoss ?? []));
  charts.testAccuracy.setData(ex, runs.map((r) => r.testAccuracy ?? []));

  renderTable();
  if (!train.finished && busy === 'train') {
    const total = train.settings.epochs;
    setStatus(`Training: epoch ${Math.min(train.epoch + 1, total)} of ${total}, iteration ${train.iteration.toLocaleString('en')}.`);
  }
  requestWeights();
}

/** A loss: fixed decimals, or scientific for a run far off the scale. */
function fmt(v, digits = 4) {
  if (v === null || v === undefined) return '—';
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e4) ? v.toExponential(digits - 1) : v.toFixed(digits);
}

/** A hyperparameter or α, as short as its value allows: 0.01, 0.0549, 1e-7. */
function short(v, digits = 3) {
  if (v === null || v === undefined) return '—';
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-4 || a >= 1e5)) return v.toExponential(digits - 1).replace(/\.?0+e/, 'e');
  return String(Number(v.toPrecision(digits)));
}

function renderTable() {
  const body = $('results').tBodies[0];
  const total = train.settings.epochs;
  const rows = train.runs.map((r) => {
    const last = (a) => (a && a.length > 0 ? a[a.length - 1] : null);
    const done = Math.max(0, (r.testLoss?.length ?? 1) - 1);
    const acc = last(r.testAccuracy);
    return [
      r.label + (r.status === 'diverged' ? ' (diverged)' : ''),
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
  rows.forEach((cells, i) => {
    const row = body.rows[i] ?? body.insertRow();
    row.dataset.id = train.runs[i].id;
    row.dataset.status = train.runs[i].status;
    cells.forEach((text, j) => {
      const cell = row.cells[j] ?? row.insertCell();
      if (cell.textContent !== text) cell.textContent = text;
    });
  });
}

/** Final training loss per optimizer and α0: the last completed epoch's, null if diverged. */
function renderSweep() {
  sweep.dirty = false;
  const ids = sweep.settings.opt;
  const key = ids.join();
  if (key !== sweepKey) {
    sweepKey = key;
    charts.sweep.setSeries(ids.map((id) => ({ id, label: labelOf(id) })));
  }
  const ys = ids.map((id) => SWEEP_ALPHAS.map((a) => {
    const run = sweep.runs.find((r) => r.id === id && Math.abs(r.alpha0 - a) <= a * 1e-6);
    if (!run || run.status === 'diverged' || !run.trainLoss || run.trainLoss.length < 2) return null;
    return run.trainLoss[run.trainLoss.length - 1];
  }));
  charts.sweep.setData(SWEEP_ALPHAS, ys);
  ids.forEach((id, i) => {
    const diverged = sweep.runs.filter((r) => r.id === id && r.status === 'diverged').map((r) => r.alpha0.toExponential(0));
    charts.sweep.setLabel(i, diverged.length ? `${labelOf(id)} (diverged at α0 ${diverged.join(', ')})` : labelOf(id));
  });
  if (!sweep.finished && busy === 'sweep') {
    setStatus(`Sweeping α0: epoch ${Math.min(sweep.epoch + 1, sweep.settings.sweep_epochs)} of ${sweep.settings.sweep_epochs}, ${sweep.runs.length} runs side by side.`);
  }
  updateButtons();
}

// ---------- CSV export ----------

function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

buttons.export.addEventListener('click', () => {
  download('hd-runs.csv', toCsv(train.runs, train.settings));
});
buttons.sweepExport.addEventListener('click', () => download('hd-alpha0-sweep.csv', toCsv(sweep.runs, sweep.settings)));

// ---------- inspecting a run: weights and drawing ----------

const runSelect = $('inspect-run');
let lastWeights = 0;

function fillRunSelect(runs) {
  runSelect.replaceChildren(
    ...runs.map((r, i) => {
      const o = document.createElement('option');
      o.value = String(i);
      o.textContent = r.label;
      return o;
    }),
  );
  runSelect.disabled = runs.length === 0;
}

function requestWeights(force = false) {
  if (runSelect.disabled) return;
  const now = performance.now();
  if (!force && now - lastWeights < 500) return;
  lastWeights = now;
  worker.postMessage({ type: 'weights', run: Number(runSelect.value) });
  predictDrawing();
}

runSelect.addEventListener('change', () => requestWeights(true));

const probsEl = $('probs');
for (let k = 0; k < 10; k++) {
  const li = document.createElement('li');
  li.innerHTML = `<span class="digit">${k}</span><span class="bar"><span></span></span><span class="p">—</span>`;
  probsEl.append(li);
}

function showProbabilities(probs) {
  const best = probs ? probs.indexOf(Math.max(...probs)) : -1;
  [...probsEl.children].forEach((li, k) => {
    const p = probs ? probs[k] : 0;
    li.querySelector('.bar span').style.width = `${(p * 100).toFixed(1)}%`;
    li.querySelector('.p').textContent = probs ? `${(p * 100).toFixed(1)} %` : '—';
    li.classList.toggle('best', k === best);
  });
}

const pad = $('draw');
const padCtx = pad.getContext('2d', { willReadFrequently: true });
let drawing = false;
let inked = false;

function clearPad() {
  padCtx.fillStyle = '#000';
  padCtx.fillRect(0, 0, pad.width, pad.height);
  inked = false;
  showProbabilities(null);
}
clearPad();

function padPoint(e) {
  const rect = pad.getBoundingClientRect();
  return [((e.clientX - rect.left) * pad.width) / rect.width, ((e.clientY - rect.top) * pad.height) / rect.height];
}

pad.addEventListener('pointerdown', (e) => {
  drawing = true;
  pad.setPointerCapture(e.pointerId);
  const [x, y] = padPoint(e);
  padCtx.beginPath();
  padCtx.moveTo(x, y);
});
pad.addEventListener('pointermove', (e) => {
  if (!drawing) return;
  const [x, y] = padPoint(e);
  padCtx.strokeStyle = '#fff';
  padCtx.lineWidth = 22;
  padCtx.lineCap = 'round';
  padCtx.lineJoin = 'round';
  padCtx.lineTo(x, y);
  padCtx.stroke();
  inked = true;
});
pad.addEventListener('pointerup', () => {
  drawing = false;
  predictDrawing();
});
$('clear').addEventListener('click', clearPad);

function predictDrawing() {
  if (!inked || runSelect.disabled) return;
  const pixels = preprocess(padCtx.getImageData(0, 0, pad.width, pad.height));
  if (pixels) worker.postMessage({ type: 'predict', run: Number(runSelect.value), pixels }, [pixels.buffer]);
}

// ---------- start-up ----------

const initial = fromQuery(location.search);
writeForm(initial.settings);
for (const [key, message] of Object.entries(initial.errors)) {
  setError(key, `${message} (from the link: ${new URLSearchParams(location.search).get(key)})`);
  if (key !== 'opt') $(key).setAttribute('aria-invalid', 'true');
}
if (Object.keys(initial.errors).length > 0) {
  // Keep the bad value visible next to its message instead of silently using the default.
  for (const key of Object.keys(initial.errors)) if (key !== 'opt') $(key).value = new URLSearchParams(location.search).get(key);
  setStatus('Some settings in the link are invalid; fix them to train.');
} else {
  autoRun = initial.run;
  $('permalink').href = `?${toQuery(initial.settings)}`;
}
updateButtons();
window.addEventListener('error', (e) => setStatus(`Error: ${e.message}`));
