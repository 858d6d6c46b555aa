// The settings form: one checkbox per optimizer, a validated field per setting, the α0 slider
// and its box kept in step, the paper preset, and the URL that reproduces the settings. The α0
// sweep's own settings (its epochs, which peers join it) sit in its section, outside the form.
import { paperSettings } from '../pkg/hd_wasm.js';
import {
  FIELDS, INPUTS, OPTIMIZERS, PAPER_OPTIMIZERS, PEERS, paperPreset, paperMessage, parseField, parseOptimizers, parsePeers, toQuery,
} from './params.js';
import { wasmReady } from './wasm.js';

const $ = (id) => document.getElementById(id);

/** The α0 slider's range in decades (its min and max attributes). */
const SLIDER = { min: -6, max: -1 };

/** One labelled checkbox named `name` per item of `items` in `host`; returns the boxes. */
function checkboxes(host, name, items, text) {
  for (const item of items) {
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.name = name;
    box.value = item.id;
    label.append(box, ` ${text(item)}`);
    host.append(label);
  }
  return [...host.querySelectorAll('input')];
}

const optBoxes = checkboxes($('optimizer-list'), 'opt', OPTIMIZERS, (o) => o.label);
// Each peer says which of its settings the sweep varies in α0's place.
const peerBoxes = checkboxes($('peer-list'), 'peer', PEERS, (p) => `${p.label} (its ${p.knob})`);

export function setError(key, message) {
  const err = $(`${key}-error`);
  if (err) err.textContent = message ?? '';
  const input = FIELDS[key] ? $(key) : null;
  if (input) input.setAttribute('aria-invalid', message ? 'true' : 'false');
}

export function writeForm(settings) {
  for (const key of Object.keys(FIELDS)) $(key).value = String(settings[key]);
  for (const box of optBoxes) box.checked = settings.opt.includes(box.value);
  for (const box of peerBoxes) box.checked = settings.peers.includes(box.value);
  syncSlider();
}

/** Validates every field; shows each message inline. Returns settings, or null when invalid. */
export function readForm() {
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
  // Checkboxes give known ids only; none ticked is a sweep without peers.
  settings.peers = parsePeers(peerBoxes.filter((b) => b.checked).map((b) => b.value).join(',')).value;
  setError('peers', null);
  return ok ? settings : null;
}

/** Puts the slider where the box's value is, and says in words what it is set to. A value
 * the slider cannot show (invalid, or outside its decades) leaves it at its nearest end and
 * says so, so the two never silently disagree. */
export function syncSlider() {
  const slider = $('alpha0-slider');
  const r = parseField('alpha0', $('alpha0').value);
  if ('value' in r) {
    slider.value = String(Math.min(SLIDER.max, Math.max(SLIDER.min, Math.log10(r.value))));
    slider.setAttribute('aria-valuetext', `α0 = ${r.value}`);
  } else {
    slider.setAttribute('aria-valuetext', 'α0 is not a valid number (see the box)');
  }
}

/** Shows which preprocessing a run uses, next to the charts. */
export function describeInputs(settings) {
  $('inputs-note').textContent = `Inputs: ${INPUTS[settings.inputs]}.`;
}

/**
 * Wires the form: `onChange()` after every edit, `onTrain()` on submit, `onSweep()` on Enter
 * in the sweep's field, `say(text)` for the status line.
 */
export function wireForm({ onChange, onTrain, onSweep, say }) {
  const form = $('settings');
  $('alpha0-slider').addEventListener('input', (e) => {
    // Two significant digits are plenty on a log scale and keep the URL short.
    $('alpha0').value = String(Number((10 ** Number(e.target.value)).toPrecision(2)));
    syncSlider();
    onChange();
  });
  form.addEventListener('input', (e) => {
    if (e.target.id === 'alpha0-slider') return;
    if (e.target.id === 'alpha0') syncSlider();
    onChange();
  });
  form.addEventListener('change', (e) => {
    if (e.target.tagName === 'SELECT') onChange();
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    onTrain();
  });
  // The sweep's own settings sit outside the form (Enter there runs the sweep, not training).
  $('sweep_epochs').addEventListener('input', onChange);
  $('peer-list').addEventListener('input', onChange);
  $('sweep_epochs').addEventListener('keydown', (e) => {
    if (e.key === 'Enter') onSweep();
  });
  // The paper's settings are hd-core's (through hd-wasm), so the page never restates them.
  const paper = wasmReady.then(() => paperPreset(paperSettings()));
  $('paper').addEventListener('click', async () => {
    const settings = await paper;
    for (const [key, v] of Object.entries(settings)) $(key).value = String(v);
    for (const box of optBoxes) box.checked = PAPER_OPTIMIZERS.includes(box.value);
    syncSlider();
    onChange();
    say(paperMessage(settings));
  });
}

/** Mirrors valid settings in the address bar and the permalink. */
export function publish(settings) {
  const query = toQuery(settings);
  $('permalink').href = `?${query}`;
  history.replaceState(null, '', `?${query}`);
}
