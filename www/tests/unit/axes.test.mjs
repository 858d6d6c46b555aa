// The charts' geometry: plot area, scales, ranges and ticks (src/axes.js). Expected values are
// worked out by hand in the comments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MARGIN, fraction, nearest, niceStep, plotBox, rangeLog, rangeNum, ticks, valueAt } from '../../src/axes.js';

test('the plot area leaves the margins, wider on the right with a second axis', () => {
  assert.deepEqual(plotBox(600, 300), { left: 72, top: 10, width: 600 - 72 - 16, height: 300 - 10 - 46 });
  assert.equal(plotBox(600, 300, true).width, 600 - MARGIN.left - MARGIN.rightAxis);
});

test('fraction and valueAt map values to 0…1 and back, linearly or by decades', () => {
  const lin = { min: -1, max: 3 };
  assert.equal(fraction(1, lin), 0.5); // 2 of 4
  assert.equal(valueAt(0.25, lin), 0);
  const log = { min: 0.01, max: 100, log: true };
  assert.equal(fraction(1, log), 0.5); // decade 2 of 4
  assert.ok(Math.abs(valueAt(0.75, log) - 10) < 1e-12);
  assert.ok(Number.isNaN(fraction(0, log)), 'a log scale cannot show 0');
  assert.ok(Number.isNaN(fraction(-2, log)));
});

test('niceStep rounds up to 1, 2 or 5 times a power of ten', () => {
  assert.equal(niceStep(0.13), 0.2);
  assert.equal(niceStep(3), 5);
  assert.equal(niceStep(7), 10);
  assert.equal(niceStep(20), 20);
  assert.equal(niceStep(0.3, true), 1); // whole numbers only
  assert.equal(niceStep(0), 1);
});

test('rangeLog widens to whole decades, rangeNum pads a tenth and rounds', () => {
  assert.deepEqual(rangeLog(0.3, 2.5), [0.1, 10]);
  assert.deepEqual(rangeLog(1, 1), [1, 10]);
  // [0, 10]: pad 1 each side, but not below 0 (all data ≥ 0): [0, 11], step 2 (1.1 → 2): [0, 12].
  assert.deepEqual(rangeNum(0, 10), [0, 12]);
  // One value: ±10 % of it.
  assert.deepEqual(rangeNum(0.1, 0.1), [0.09, 0.11]);
  assert.deepEqual(rangeNum(0, 0), [-1, 1]);
  // Adam-HD's α from 0.001 to 0.00117: span 0.00017, padded to [0.000983, 0.001187], step
  // niceStep(0.0000204) = 0.00005: [0.00095, 0.0012]. The line fills 0.00017 / 0.00025 of it.
  assert.deepEqual(rangeNum(0.001, 0.00117), [0.00095, 0.0012]);
});

test('ticks: round steps that fit the length, or one per decade', () => {
  // 0…10 over 300 px at least 70 px apart: at most 4 ticks, step niceStep(2.5) = 5.
  assert.deepEqual(ticks({ min: 0, max: 10 }, 300, 70), [0, 5, 10]);
  // 0.05…0.31 over 200 px at least 40 apart: at most 5, step niceStep(0.052) = 0.1.
  assert.deepEqual(ticks({ min: 0.05, max: 0.31 }, 200, 40), [0.1, 0.2, 0.3]);
  assert.deepEqual(ticks({ min: 0.01, max: 10, log: true }, 300, 36), [0.01, 0.1, 1, 10]);
  // Nine powers of ten (1e-6…1e2) in 100 px, at most 2 ticks: every 5th.
  assert.deepEqual(ticks({ min: 1e-6, max: 100, log: true }, 100, 50), [1e-6, 0.1]);
  assert.deepEqual(ticks({ min: 0, max: 3, integer: true }, 600, 70), [0, 1, 2, 3]);
});

test('nearest finds the closest x by bisection', () => {
  const xs = [1, 2, 4, 8];
  assert.equal(nearest(xs, 0), 0);
  assert.equal(nearest(xs, 2.9), 1);
  assert.equal(nearest(xs, 3.1), 2);
  assert.equal(nearest(xs, 100), 3);
  assert.equal(nearest([], 1), -1);
});
