// The structure that keeps the page's main thread free on a slow device, checked without a
// clock (so a busy machine cannot fail it, nor a fast one hide a regression): the charts are
// drawn by a worker, never on the main thread; a chart update carries at most MAX_POINTS points
// per line; each animation frame updates at most one chart; and the training worker batches
// its results. (The main-thread long tasks themselves are measured, at 4× CPU throttling, by
// `cargo xtask demo --bench`: tests/longtasks.mjs.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_POINTS } from '../../src/series.js';
import { NINE } from '../longtasks.mjs';
import { TIMEOUT, drawnChart, finish, finished, open, useBrowser } from '../pages.mjs';

const browser = useBrowser();
/** The training worker's least spacing of progress messages (POST_MS in src/worker.js). */
const POST_MS = 200;

/** Before the page loads: records the training worker's progress timestamps, and which
 * animation frame each chart's latest data was handed over in. */
function record(page) {
  page.addInitScript(() => {
    window.progressAt = [];
    const Base = window.Worker;
    window.Worker = class extends Base {
      constructor(...args) {
        super(...args);
        this.addEventListener('message', (e) => {
          if (e.data?.type === 'progress') window.progressAt.push(e.data.at);
        });
      }
    };
    window.frame = 0;
    const tick = () => {
      window.frame++;
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    window.chartsInFrame = {};
    new MutationObserver((records) => {
      for (const r of records) {
        if (r.target.classList.contains('chart') && r.oldValue === 'true' && !r.target.hasAttribute('data-stale')) {
          window.chartsInFrame[window.frame] = (window.chartsInFrame[window.frame] ?? 0) + 1;
        }
      }
    }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-stale'], attributeOldValue: true });
  });
}

test('charts drawn off the main thread, bounded per frame; results batched', { timeout: TIMEOUT }, async () => {
  // Nine optimizers, 5 epochs of 63 minibatches: 315 iterations per line, more than MAX_POINTS.
  const { page, problems } = await open(browser(), `?opt=${NINE}&epochs=5&run=1`, undefined, record);
  await finished(page);
  await drawnChart(page, 'chart-loss');

  // Every chart's canvas was handed to the chart worker: the page cannot draw on it.
  const canvases = await page.locator('.chart canvas').evaluateAll((els) => els.map((c) => {
    try {
      c.getContext('2d');
      return `${c.closest('.chart').id}: drawable on the main thread`;
    } catch (e) {
      return e.name;
    }
  }));
  assert.ok(canvases.length >= 9, `${canvases.length} chart canvases`);
  assert.deepEqual(new Set(canvases), new Set(['InvalidStateError']));

  // The loss chart's lines: 315 iterations drawn as at most MAX_POINTS points each.
  const points = Number(await page.locator('#chart-loss').getAttribute('data-points'));
  assert.ok(points > 0 && points <= MAX_POINTS, `the loss chart draws ${points} points per line`);
  assert.ok(315 > MAX_POINTS, 'the run is long enough to need decimation');

  // At most one chart updated in any animation frame.
  const perFrame = await page.evaluate(() => window.chartsInFrame);
  assert.ok(Object.keys(perFrame).length >= 3, `charts updated in ${Object.keys(perFrame).length} frames`);
  assert.deepEqual(Object.entries(perFrame).filter(([, n]) => n > 1), []);

  // Progress messages: the first slice's results at once, then at least POST_MS apart by the
  // worker's clock; only the final results may come sooner.
  const at = await page.evaluate(() => window.progressAt);
  assert.ok(at.length >= 3, `${at.length} progress messages`);
  const gaps = at.slice(1).map((t, i) => t - at[i]);
  assert.deepEqual(gaps.slice(0, -1).filter((g) => g < POST_MS), [], `gaps between progress messages (ms): ${gaps.map(Math.round).join(', ')}`);
  await finish(page, problems);
});
