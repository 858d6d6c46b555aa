// The page's wiring: the training worker, the buttons and the status line, and start-up from
// the link. What each part shows lives in its own module: the settings form (form.js), the
// training curves and table (training.js), the α0 sweep (sweep.js), the model's insides
// (inspect.js) and the 2-D playground (playground.js). The maths runs in the worker (hd-wasm);
// this thread only draws, so it never blocks for long.
import { FIELDS, fromQuery, toCsv, toQuery } from './params.js';
import { describeInputs, publish, readForm, setError, wireForm, writeForm } from './form.js';
import { Runs, TrainingView } from './training.js';
import { SweepView } from './sweep.js';
import { Inspector } from './inspect.js';
import { PlaygroundView } from './playground.js';
import { schedule } from './frames.js';

const $ = (id) => document.getElementById(id);
const statusEl = $('status');
const buttons = { start: $('start'), stop: $('stop'), sweep: $('sweep'), betasweep: $('betasweep'), export: $('export'), sweepExport: $('sweep-export') };

/** Least time between two redraws: the charts need not follow every 25 ms slice, and on a slow
 * device every frame spent drawing is one the compositor and the visitor wait for. */
const REDRAW_MS = 500;

const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
let ready = false;
let busy = null; // 'train' | 'sweep' | 'betasweep' | null
let autoRun = false;

const train = new Runs('train');
const sweep = new Runs('sweep');
const betaSweep = new Runs('betasweep');
/** The runs of each mode. */
const modes = { train, sweep, betasweep: betaSweep };
const inspector = new Inspector((msg, transfer) => worker.postMessage(msg, transfer ?? []));
const view = new TrainingView({ onRuns: (runs) => inspector.setRuns(runs) });
const sweepView = new SweepView();
new PlaygroundView();

function setStatus(text) {
  statusEl.textContent = text;
}

// Train and the sweep stay enabled while settings are invalid: pressing them explains what to
// fix (a disabled button would not say why). A button that disables itself hands the focus on
// first, so keyboard users are never dropped to the top of the page.
function updateButtons() {
  const focused = document.activeElement;
  // Written only when it changes (each write is a DOM mutation): this runs with every redraw.
  const set = (button, disabled) => {
    if (button.disabled !== disabled) button.disabled = disabled;
  };
  set(buttons.start, !ready || busy !== null);
  set(buttons.sweep, !ready || busy !== null);
  set(buttons.betasweep, !ready || busy !== null);
  set(buttons.stop, busy === null);
  set(buttons.export, train.runs.length === 0);
  set(buttons.sweepExport, sweep.runs.length === 0);
  if (focused?.disabled) (busy ? buttons.stop : buttons.start).focus();
}

function onChange() {
  const settings = readForm();
  if (settings) publish(settings);
  // The charts and buttons for the chosen optimizers, built while nothing trains.
  if (settings && busy === null) view.prepare(settings.opt);
  updateButtons();
}

wireForm({ onChange, onTrain: () => start('train'), onSweep: () => start('sweep'), say: setStatus });

worker.onmessage = ({ data }) => {
  switch (data.type) {
    case 'loading':
      if (!ready && !statusEl.dataset.keep) setStatus(`Loading the digits: ${(data.received / 1e6).toFixed(1)}${data.total ? ` of ${(data.total / 1e6).toFixed(1)}` : ''} MB…`);
      break;
    case 'ready':
      ready = true;
      performance.mark('hd-ready');
      document.documentElement.dataset.ready = 'true';
      if (!statusEl.dataset.keep) setStatus(`Ready: ${data.digits.toLocaleString('en')} digits loaded. Choose settings and press Train.`);
      updateButtons();
      if (autoRun) start('train');
      break;
    case 'progress':
      modes[data.mode].receive(data);
      scheduleRender();
      break;
    case 'done': {
      // What arrived before the end is shown now, so nothing changes after "Stopped."
      const was = busy;
      busy = null;
      if (!data.stopped) modes[data.mode].finished = true;
      render();
      if (!data.stopped && data.mode === 'train') inspector.chooseBest(train.runs);
      const text = data.stopped ? (was ? `Stopped${was === 'train' ? '' : ' the sweep'}.` : null) : modes[data.mode].summary();
      // A job after those render() queued: the status says "finished" once the table does.
      if (text) schedule('status', () => busy === null && setStatus(text));
      for (const runs of [sweep, betaSweep]) if (runs.settings) sweepView.progress(runs, false);
      updateButtons();
      break;
    }
    case 'prediction':
      inspector.showProbabilities(data.probs);
      break;
    case 'weights':
      inspector.weights(data.weights);
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
  delete statusEl.dataset.keep;
  busy = mode;
  modes[mode].reset(settings);
  if (mode === 'train') {
    view.reset(settings);
    describeInputs(settings);
  }
  worker.postMessage({ type: mode, settings });
  setStatus(mode === 'train' ? 'Training…' : `Sweeping ${mode === 'sweep' ? 'α0' : 'β'} (progress in the sweep section)…`);
  updateButtons();
}

buttons.sweep.addEventListener('click', () => start('sweep'));
buttons.betasweep.addEventListener('click', () => start('betasweep'));
buttons.stop.addEventListener('click', () => worker.postMessage({ type: 'stop' }));

// ---------- redraws: at most one per REDRAW_MS, as one job of the frame queue ----------

let lastRender = 0;
let renderPending = false;

// The text (table, legend buttons, status) is one frame's job and each chart another's
// (frames.js): a frame never does both.
function scheduleRender() {
  if (renderPending) return;
  renderPending = true;
  const wait = Math.max(0, REDRAW_MS - (performance.now() - lastRender));
  setTimeout(() => schedule('render', () => {
    renderPending = false;
    render();
  }), wait);
}

function render() {
  lastRender = performance.now();
  if (train.dirty) {
    view.render(train);
    if (busy === 'train') {
      const total = train.settings.epochs;
      setStatus(`Training: epoch ${Math.min(train.epoch + 1, total)} of ${total}, iteration ${train.iteration.toLocaleString('en')}.`);
      inspector.request();
    }
  }
  if (sweep.dirty) {
    sweepView.render(sweep);
    sweepView.progress(sweep, busy === 'sweep');
  }
  if (betaSweep.dirty) {
    sweepView.renderBeta(betaSweep);
    sweepView.progress(betaSweep, busy === 'betasweep');
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

buttons.export.addEventListener('click', () => download('hd-runs.csv', toCsv(train.runs, train.settings)));
buttons.sweepExport.addEventListener('click', () => download('hd-alpha0-sweep.csv', toCsv(sweep.runs, sweep.settings)));

// ---------- start-up ----------

const initial = fromQuery(location.search);
writeForm(initial.settings);
const linkErrors = Object.keys(initial.errors);
if (linkErrors.length > 0) {
  const q = new URLSearchParams(location.search);
  // Keep the bad value visible next to its message instead of silently using the default.
  for (const key of linkErrors) {
    setError(key, `${initial.errors[key]} (from the link: ${q.get(key)})`);
    if (FIELDS[key]) $(key).value = q.get(key);
  }
  const names = linkErrors.join(', ');
  setStatus(`The link has invalid settings (${names}); fix them to train.${initial.run ? ' Its run=1 was not started.' : ''}`);
  statusEl.dataset.keep = 'true';
} else {
  autoRun = initial.run;
  $('permalink').href = `?${toQuery(initial.settings)}`;
}
describeInputs(initial.settings);
view.prepare(initial.settings.opt);
updateButtons();
window.addEventListener('error', (e) => setStatus(`Error: ${e.message}`));
