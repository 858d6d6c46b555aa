// Settings parsing, validation, URLs and CSV: the rules the page applies before anything runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FIELDS, OPTIMIZER_IDS, PEER_IDS, csvField, defaults, f32Decimal, fromQuery, isPeer, knobOf, labelOf, paperMessage, paperPreset, parseField, parseOptimizers, parsePeers,
  toCsv, toQuery,
} from '../../src/params.js';

test('numbers in decimal or scientific form parse; junk does not', () => {
  assert.deepEqual(parseField('alpha0', '0.001'), { value: 0.001 });
  assert.deepEqual(parseField('alpha0', ' 1e-3 '), { value: 0.001 });
  assert.deepEqual(parseField('alpha0', '1E-6'), { value: 1e-6 });
  assert.deepEqual(parseField('beta', '0'), { value: 0 });
  for (const junk of ['abc', '0x10', '1e', '--1', 'Infinity', 'NaN', '1,5', '1e-3e2']) {
    assert.match(parseField('alpha0', junk).error, /^Not a number/, junk);
  }
});

test('empty fields ask for a value', () => {
  for (const empty of ['', '   ', null, undefined]) assert.equal(parseField('batch', empty).error, 'Enter a value');
});

test('ranges: α0 in [1e-6, 1e-1], μ in [0, 1), whole numbers for counts', () => {
  assert.deepEqual(parseField('alpha0', '1e-1'), { value: 0.1 });
  assert.match(parseField('alpha0', '0.2').error, /Must be at least 1e−6 and at most 0.1/);
  assert.match(parseField('alpha0', '1e-7').error, /Must be at least/);
  assert.match(parseField('alpha0', '-0.001').error, /Must be at least/);
  assert.deepEqual(parseField('mu', '0.99'), { value: 0.99 });
  assert.match(parseField('mu', '1').error, /below 1/);
  assert.equal(parseField('batch', '12.5').error, 'Enter a whole number');
  assert.match(parseField('batch', '0').error, /at least 1 and at most 8000/);
  assert.match(parseField('batch', '8001').error, /at most 8000/);
  assert.match(parseField('epochs', '101').error, /at most 100/);
  assert.deepEqual(parseField('seed', '4294967295'), { value: 4294967295 });
  assert.match(parseField('seed', '4294967296').error, /at most/);
  assert.match(parseField('nope', '1').error, /Unknown setting/);
});

test('every default is valid', () => {
  for (const [key, f] of Object.entries(FIELDS)) assert.deepEqual(parseField(key, String(f.default)), { value: f.default }, key);
});

test('optimizer lists: known ids, display order, no repeats', () => {
  assert.deepEqual(parseOptimizers('adam-hd,sgd,sgd'), { value: ['sgd', 'adam-hd'] });
  assert.equal(parseOptimizers('').error, 'Choose at least one optimizer');
  assert.equal(parseOptimizers(' , ').error, 'Choose at least one optimizer');
  assert.match(parseOptimizers('sgd,rmsprop').error, /Unknown optimizer “rmsprop”/);
  assert.equal(OPTIMIZER_IDS.length, 9);
});

test('peer lists: known ids, display order, no repeats, none allowed', () => {
  assert.deepEqual(PEER_IDS, ['prodigy', 'sf-sgd', 'sf-adamw']);
  assert.deepEqual(parsePeers('sf-adamw, prodigy,prodigy'), { value: ['prodigy', 'sf-adamw'] });
  assert.deepEqual(parsePeers(''), { value: [] });
  assert.equal(parsePeers('prodigy,adam').error, 'Unknown peer “adam”; expected prodigy, sf-sgd, sf-adamw');
  assert.deepEqual(defaults().peers, PEER_IDS);
  // A peer is labelled with the knob the sweep sets in α0's place; an optimizer's is α0.
  assert.deepEqual(PEER_IDS.map((id) => [labelOf(id), knobOf(id), isPeer(id)]), [
    ['Prodigy', 'd0', true], ['Schedule-Free SGD', 'lr', true], ['Schedule-Free AdamW', 'lr', true],
  ]);
  assert.deepEqual([knobOf('sgd-hd'), isPeer('sgd-hd')], ['α0', false]);
});

test('a URL round-trips every setting', () => {
  const s = { ...defaults(), opt: ['sgdn', 'adam-hdm'], peers: ['sf-sgd'], inputs: 'unit', alpha0: 0.01, beta: 0.002, beta_adam: 3e-7, beta_mult: 0.05, mu: 0.5, l2: 0, batch: 64, epochs: 3, seed: 9, sweep_epochs: 2 };
  const back = fromQuery(`?${toQuery(s, { run: true })}`);
  assert.deepEqual(back.errors, {});
  assert.deepEqual(back.settings, s);
  assert.equal(back.run, true);
  assert.equal(fromQuery(`?${toQuery(s)}`).run, false);
  // No peers at all is a setting of its own, not a fall-back to the default.
  assert.deepEqual(fromQuery(`?${toQuery({ ...s, peers: [] })}`).settings.peers, []);
});

test('bad URL values are reported and replaced by defaults', () => {
  const { settings, errors, run } = fromQuery('?opt=sgd,bogus&alpha0=5&batch=&epochs=two&peers=prodigy,lion&run=1');
  assert.match(errors.opt, /bogus/);
  assert.match(errors.peers, /Unknown peer “lion”/);
  assert.deepEqual(settings.peers, defaults().peers);
  assert.match(errors.alpha0, /at most 0.1/);
  assert.equal(errors.batch, 'Enter a value');
  assert.match(errors.epochs, /Not a number/);
  assert.equal(settings.alpha0, FIELDS.alpha0.default);
  assert.deepEqual(settings.opt, defaults().opt);
  assert.equal(run, true);
});

// The preset's values are hd-core's, through hd-wasm's paperSettings() (hd-wasm's test
// the_paper_preset_is_the_papers_logistic_regression checks them against the paper); here, that
// the page accepts each and says what it applied.
const PAPER = { inputs: 'standardised', alpha0: 1e-3, beta: 1e-3, beta_adam: 1e-7, beta_mult: 0.02, mu: 0.9, l2: 1e-4, batch: 128 };

test('hd-wasm\'s f32 values become the paper\'s decimals', () => {
  // What paperSettings() hands over: each f32 widened exactly (Math.fround is that widening).
  const raw = Object.fromEntries(Object.entries(PAPER).map(([k, v]) => [k, typeof v === 'number' ? Math.fround(v) : v]));
  assert.notEqual(raw.beta_adam, 1e-7); // 1.0000000116860974e-7 as handed over
  assert.deepEqual(paperPreset(raw), PAPER);
  // Digits as few as the f32 needs: 0.1 + 0.2 is the f32 nearest 0.3; a third needs eight.
  assert.equal(f32Decimal(0.1 + 0.2), 0.3);
  assert.equal(f32Decimal(Math.fround(1 / 3)), 0.33333334);
  assert.equal(f32Decimal(128), 128);
});

test('the paper preset matches Baydin et al. 2018 §4', () => {
  for (const [key, v] of Object.entries(PAPER)) assert.deepEqual(parseField(key, String(v)), { value: v }, key);
  assert.equal(paperMessage(PAPER), 'Paper settings applied: α0 = 0.001, β = 0.001 (SGD-HD, SGDN-HD), β = 1e-7 (Adam-HD), μ = 0.9, L2 = 1e-4, batch 128, standardised inputs, and the paper\'s six optimizers. Press Train.');
});

test('CSV: quoting, blanks for NaN, one row per iteration and per epoch', () => {
  assert.equal(csvField('a,b'), '"a,b"');
  assert.equal(csvField('say "hi"'), '"say ""hi"""');
  assert.equal(csvField(Number.NaN), '');
  assert.equal(csvField(null), '');
  const settings = { ...defaults(), batch: 32 };
  const runs = [{
    id: 'sgd-hd', alpha0: 0.001, beta: 0.001, status: 'finished',
    loss: [2.3, 1.5], alpha: [0.001, 0.0012], trainLoss: [2.302, 1.9], testLoss: [2.302, 1.8], testAccuracy: [0.1, 0.7],
  }];
  const lines = toCsv(runs, settings).trimEnd().split('\n');
  assert.equal(lines.length, 1 + 2 + 2);
  assert.equal(lines[0], 'optimizer,alpha0,beta,mu,l2,batch,seed,status,record,index,train_loss,test_loss,test_accuracy,alpha');
  assert.equal(lines[2], 'sgd-hd,0.001,0.001,0.9,0.0001,32,1,finished,iteration,2,1.5,,,0.0012');
  assert.equal(lines[4], 'sgd-hd,0.001,0.001,0.9,0.0001,32,1,finished,epoch,1,1.9,1.8,0.7,');
});

test('inputs: the paper\'s standardisation by default, [0, 1] on request, nothing else', () => {
  assert.equal(defaults().inputs, 'standardised');
  assert.deepEqual(parseField('inputs', 'unit'), { value: 'unit' });
  assert.match(parseField('inputs', 'raw').error, /Choose one of standardised, unit/);
  assert.deepEqual(fromQuery('?inputs=bogus').errors, { inputs: 'Choose one of standardised, unit' });
});
