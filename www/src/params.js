// The demo's settings: their ranges, parsing and validation from form fields or the URL, and
// the URL that reproduces them. Pure functions, no DOM, so node's test runner checks them.

/** Optimizer ids and display names, in display order. The page needs them before the wasm
 * module has loaded; the worker checks them against hd-core's list (`Variant`, through hd-wasm's
 * `optimizerIds()`) when it starts, so the two cannot drift apart silently. */
export const OPTIMIZERS = [
  { id: 'sgd', label: 'SGD' },
  { id: 'sgd-hd', label: 'SGD-HD' },
  { id: 'sgd-hdm', label: 'SGD-HDM' },
  { id: 'sgdn', label: 'SGDN' },
  { id: 'sgdn-hd', label: 'SGDN-HD' },
  { id: 'sgdn-hdm', label: 'SGDN-HDM' },
  { id: 'adam', label: 'Adam' },
  { id: 'adam-hd', label: 'Adam-HD' },
  { id: 'adam-hdm', label: 'Adam-HDM' },
];

export const OPTIMIZER_IDS = OPTIMIZERS.map((o) => o.id);

/** The learning-rate-free peers HD is compared with in the α0 sweep, in display order, each with
 * the one knob the sweep sets in α0's place (Prodigy's initial estimate d0, its lr staying 1 as
 * the package's default; Schedule-Free's learning rate). The worker checks them against hd-core's
 * through hd-wasm (`peerIds()`, `optimizerLabel`, `optimizerKnob`), as it does the optimizers. */
export const PEERS = [
  { id: 'prodigy', label: 'Prodigy', knob: 'd0' },
  { id: 'sf-sgd', label: 'Schedule-Free SGD', knob: 'lr' },
  { id: 'sf-adamw', label: 'Schedule-Free AdamW', knob: 'lr' },
];

export const PEER_IDS = PEERS.map((p) => p.id);

/** The optimizer families, each a base rule with its HD and HDM variants, in display order. */
export const FAMILIES = [
  { id: 'sgd', label: 'SGD' },
  { id: 'sgdn', label: 'SGDN' },
  { id: 'adam', label: 'Adam' },
];

/** The family (base rule) of an optimizer id: `sgdn-hd` → `sgdn`. */
export function familyOf(id) {
  return id.split('-')[0];
}

/** Display name of an optimizer or peer id. */
export function labelOf(id) {
  return [...OPTIMIZERS, ...PEERS].find((o) => o.id === id)?.label ?? id;
}

/** The name of the value the α0 sweep sets for an optimizer or peer id: α0, or the peer's knob. */
export function knobOf(id) {
  return PEERS.find((p) => p.id === id)?.knob ?? 'α0';
}

/** True for a peer's id (no β, no hypergradient, its own knob). */
export function isPeer(id) {
  return PEER_IDS.includes(id);
}

/** The α0 values of the sweep: 1e-6 … 1e-1, one per decade (the paper's α0 study); the peers'
 * knobs take the same values. */
export const SWEEP_ALPHAS = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1];

/** The β sweep's factors on each HD optimizer's own β (β′ for HDM): 1/100 … 100×. */
export const BETA_FACTORS = [0.01, 0.1, 1, 10, 100];

/** Training images (the other 2,000 of the 10,000 digits are the test set). */
export const TRAIN_SIZE = 8000;

/**
 * Every numeric setting: its URL key, kind, range and default. `max` is exclusive when
 * `maxOpen` is set (μ must stay below 1 for momentum to converge).
 */
export const FIELDS = {
  alpha0: { kind: 'real', min: 1e-6, max: 1e-1, default: 1e-3, label: 'α0' },
  beta: { kind: 'real', min: 0, max: 1, default: 1e-3, label: 'β (SGD-HD, SGDN-HD)' },
  beta_adam: { kind: 'real', min: 0, max: 1, default: 1e-7, label: 'β (Adam-HD)' },
  beta_mult: { kind: 'real', min: 0, max: 1, default: 0.02, label: 'β′ (HDM)' },
  mu: { kind: 'real', min: 0, max: 1, maxOpen: true, default: 0.9, label: 'μ' },
  l2: { kind: 'real', min: 0, max: 0.1, default: 1e-4, label: 'L2 λ' },
  batch: { kind: 'int', min: 1, max: TRAIN_SIZE, default: 128, label: 'Batch size' },
  epochs: { kind: 'int', min: 1, max: 100, default: 10, label: 'Epochs' },
  seed: { kind: 'int', min: 0, max: 4294967295, default: 1, label: 'Seed' },
  sweep_epochs: { kind: 'int', min: 1, max: 20, default: 3, label: 'Sweep epochs' },
  inputs: { kind: 'choice', options: ['standardised', 'unit'], default: 'standardised', label: 'Inputs' },
};

/** What each `inputs` choice means, for the page's wording. */
export const INPUTS = {
  standardised: 'standardised as in the paper, (x − 0.1307) / 0.3081',
  unit: 'grey levels scaled to [0, 1]',
};

export const DEFAULT_OPTIMIZERS = ['sgd', 'sgd-hd', 'adam', 'adam-hd'];

/** Every peer joins the α0 sweep unless the visitor unticks it: the comparison is the point. */
export const DEFAULT_PEERS = [...PEER_IDS];

/** A number as the paper writes it: 0.001, 0.9, 128, but 1e-7 and 1e-4. */
function paperNumber(v) {
  return v !== 0 && Math.abs(v) < 1e-3 ? v.toExponential() : String(v);
}

/** The shortest decimal that reads back as the same f32 as `v`: hd-wasm hands over f32 values
 * widened exactly (0.9 arrives as 0.8999999761581421), the page writes the number as typed. */
export function f32Decimal(v) {
  const f = Math.fround(v);
  for (let digits = 1; digits < 9; digits++) {
    const d = Number(f.toPrecision(digits));
    if (Math.fround(d) === f) return d;
  }
  return f;
}

/** A value from training (f32 widened to f64) as the shortest decimal that reads back as the
 * same f32 (7 significant digits suffice): the α0 typed as 0.001 comes back from wasm as
 * 0.0010000000474974513. Non-finite values stay as they are. */
export function decimal(v) {
  return Number.isFinite(v) ? Number(v.toPrecision(7)) : v;
}

/** hd-wasm's `paperSettings()` in the page's units: every number as its f32's shortest decimal. */
export function paperPreset(raw) {
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, typeof v === 'number' ? f32Decimal(v) : v]));
}

/** The page's note once the "Paper settings" preset is applied. `paper` is hd-wasm's
 * `paperSettings()`: the paper's logistic-regression settings (Baydin et al. 2018, §4) as hd-core
 * writes them down, in the page's settings fields. */
export function paperMessage(paper) {
  const n = (key) => paperNumber(paper[key]);
  return `Paper settings applied: α0 = ${n('alpha0')}, β = ${n('beta')} (SGD-HD, SGDN-HD), β = ${n('beta_adam')} (Adam-HD), μ = ${n('mu')}, L2 = ${n('l2')}, batch ${n('batch')}, ${paper.inputs} inputs, and the paper's six optimizers. Press Train.`;
}

/** The optimizers of the paper's logistic-regression figure (its Fig. 2). */
export const PAPER_OPTIMIZERS = ['sgd', 'sgd-hd', 'sgdn', 'sgdn-hd', 'adam', 'adam-hd'];

export function defaults() {
  const s = { opt: [...DEFAULT_OPTIMIZERS], peers: [...DEFAULT_PEERS] };
  for (const [key, f] of Object.entries(FIELDS)) s[key] = f.default;
  return s;
}

// A plain decimal or scientific number, nothing else: `Number()` alone would accept '', ' ',
// '0x10' and 'Infinity'.
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function formatBound(v) {
  return v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e6) ? v.toExponential().replace('e-', 'e−') : String(v);
}

/**
 * Parses one field's text. Returns `{ value }` or `{ error }` with a message for the page.
 */
export function parseField(key, text) {
  const f = FIELDS[key];
  if (!f) return { error: `Unknown setting ${key}` };
  const t = String(text ?? '').trim();
  if (t === '') return { error: 'Enter a value' };
  if (f.kind === 'choice') {
    return f.options.includes(t) ? { value: t } : { error: `Choose one of ${f.options.join(', ')}` };
  }
  if (!NUMBER.test(t)) return { error: `Not a number: “${t}”` };
  const value = Number(t);
  if (!Number.isFinite(value)) return { error: 'Not a finite number' };
  if (f.kind === 'int' && !Number.isInteger(value)) return { error: 'Enter a whole number' };
  const tooHigh = f.maxOpen ? value >= f.max : value > f.max;
  if (value < f.min || tooHigh) {
    const upper = f.maxOpen ? `below ${formatBound(f.max)}` : `at most ${formatBound(f.max)}`;
    return { error: `Must be at least ${formatBound(f.min)} and ${upper}` };
  }
  return { value };
}

/** Parses the optimizer list (`sgd,sgd-hd`). */
export function parseOptimizers(text) {
  const ids = String(text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (ids.length === 0) return { error: 'Choose at least one optimizer' };
  const unknown = ids.filter((id) => !OPTIMIZER_IDS.includes(id));
  if (unknown.length > 0) return { error: `Unknown optimizer ${unknown.map((u) => `“${u}”`).join(', ')}` };
  // Keep display order and drop repeats: a run list is a set.
  return { value: OPTIMIZER_IDS.filter((id) => ids.includes(id)) };
}

/** Parses the list of peers in the α0 sweep (`prodigy,sf-sgd`); empty means none. */
export function parsePeers(text) {
  const ids = String(text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const unknown = ids.filter((id) => !PEER_IDS.includes(id));
  if (unknown.length > 0) return { error: `Unknown peer ${unknown.map((u) => `“${u}”`).join(', ')}; expected ${PEER_IDS.join(', ')}` };
  return { value: PEER_IDS.filter((id) => ids.includes(id)) };
}

/**
 * Reads settings from URL search parameters. Missing keys take their defaults; every bad
 * value is reported in `errors` (key → message) and replaced by its default in `settings`.
 */
export function fromQuery(search) {
  const q = new URLSearchParams(search);
  const settings = defaults();
  const errors = {};
  for (const key of Object.keys(FIELDS)) {
    if (!q.has(key)) continue;
    const r = parseField(key, q.get(key));
    if ('error' in r) errors[key] = r.error;
    else settings[key] = r.value;
  }
  if (q.has('opt')) {
    const r = parseOptimizers(q.get('opt'));
    if ('error' in r) errors.opt = r.error;
    else settings.opt = r.value;
  }
  if (q.has('peers')) {
    const r = parsePeers(q.get('peers'));
    if ('error' in r) errors.peers = r.error;
    else settings.peers = r.value;
  }
  const run = q.get('run') === '1';
  return { settings, errors, run };
}

/** The query string that reproduces `settings` (without `run`). */
export function toQuery(settings, { run = false } = {}) {
  const q = new URLSearchParams();
  q.set('opt', settings.opt.join(','));
  for (const key of Object.keys(FIELDS)) q.set(key, String(settings[key]));
  q.set('peers', settings.peers.join(','));
  if (run) q.set('run', '1');
  return q.toString();
}

/** Quotes a CSV field when needed (RFC 4180). */
export function csvField(v) {
  const s = v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v)) ? '' : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/**
 * The runs as CSV, one row per iteration and one per epoch (`record` says which); blank
 * cells are values that do not apply, or a diverged run's missing values. A peer's row keeps
 * the columns: `alpha0` holds its knob (Prodigy's d0, Schedule-Free's lr) and `alpha` its step
 * size (Prodigy's d·lr, Schedule-Free's lr).
 */
export function toCsv(runs, settings) {
  const header = [
    'optimizer', 'alpha0', 'beta', 'mu', 'l2', 'batch', 'seed', 'status',
    'record', 'index', 'train_loss', 'test_loss', 'test_accuracy', 'alpha',
  ];
  const lines = [header.join(',')];
  for (const r of runs) {
    const fixed = [r.id, r.alpha0, r.beta ?? '', settings.mu, settings.l2, settings.batch, settings.seed, r.status];
    for (let i = 0; i < r.loss.length; i++) {
      lines.push([...fixed, 'iteration', i + 1, r.loss[i], '', '', r.alpha[i]].map(csvField).join(','));
    }
    for (let e = 0; e < r.testLoss.length; e++) {
      lines.push([...fixed, 'epoch', e, r.trainLoss[e], r.testLoss[e], r.testAccuracy[e], ''].map(csvField).join(','));
    }
  }
  return `${lines.join('\n')}\n`;
}
