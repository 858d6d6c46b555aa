// Series preparation for the charts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decimate } from '../../src/series.js';

test('decimate keeps short series and averages long ones into at most max points', () => {
  const short = decimate([[1, 2, 3]], 5);
  assert.deepEqual(short, { xs: [1, 2, 3], ys: [[1, 2, 3]] });
  // 10 points into buckets of 4, 4, 2: means 2.5, 6.5, 9.5 at x = mid-bucket (1-based).
  const ys = [Array.from({ length: 10 }, (_, i) => i + 1), [null, null, null, null, 5, null, 7, 8, null, null]];
  const d = decimate(ys, 3);
  assert.deepEqual(d.xs, [2.5, 6.5, 9.5]);
  assert.deepEqual(d.ys[0], [2.5, 6.5, 9.5]);
  // An all-null bucket stays a gap; nulls do not drag a bucket's mean down.
  assert.deepEqual(d.ys[1], [null, (5 + 7 + 8) / 3, null]);
  assert.deepEqual(decimate([], 3), { xs: [], ys: [] });
});

test('movingMean averages the last `window` values and keeps gaps', async () => {
  const { movingMean } = await import('../../src/series.js');
  // By hand: window 2 over [1, 3, 5, null, 7] → 1, (1+3)/2, (3+5)/2, gap, (null+7)/1.
  assert.deepEqual(movingMean([1, 3, 5, null, 7], 2), [1, 2, 4, null, 7]);
  assert.deepEqual(movingMean([4, 4, 4], 25), [4, 4, 4]);
});
