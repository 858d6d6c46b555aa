// End-to-end tests of what the page teaches and who can use it: α readable for every family,
// the hypergradient beside α with one cursor, the paper's preprocessing, the 2-D playground
// (its path checked against the paper's rule computed here), keyboard-only use, the
// accessibility tree, and the phone layout. Screenshots go to $HD_ARTIFACTS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TIMEOUT, downloadCsv, drawnChart, finish, finished, open as openPage, ready, snapshot, useBrowser } from '../pages.mjs';

const browser = useBrowser();
const open = (query, viewport) => openPage(browser(), query, viewport);

const yRange = async (page, id) => {
  const el = page.locator(`#${id}`);
  return [Number(await el.getAttribute('data-y-min')), Number(await el.getAttribute('data-y-max'))];
};

test('Adam-HD\'s α is readable on its own scale, beside its hypergradient, with one cursor', { timeout: TIMEOUT }, async () => {
  // The paper's settings (the defaults): α0 = 0.001, β = 1e-7 for Adam-HD.
  const { page, problems } = await open('?opt=sgd-hd,adam,adam-hd&epochs=1&run=1');
  await finished(page);
  await drawnChart(page, 'chart-alpha-adam');
  await drawnChart(page, 'chart-signal-adam');
  const csv = await exportCsv(page, '#export');
  const alphas = csv.filter((r) => r.optimizer === 'adam-hd' && r.record === 'iteration').map((r) => Number(r.alpha));
  const [lo, hi] = [Math.min(...alphas), Math.max(...alphas)];
  assert.ok(hi - lo > 1e-5, `Adam-HD's α moved only ${hi - lo}`);
  // Adam's panel spans Adam-HD's own movement: it fills at least a fifth of the axis. (On one
  // shared axis with SGD-HD's α, tens of times larger, it would be a flat line.)
  const [ymin, ymax] = await yRange(page, 'chart-alpha-adam');
  assert.ok(ymin <= lo && ymax >= hi, `axis [${ymin}, ${ymax}] misses α in [${lo}, ${hi}]`);
  assert.ok((hi - lo) / (ymax - ymin) > 0.2, `α fills ${(hi - lo) / (ymax - ymin)} of [${ymin}, ${ymax}]`);
  assert.equal(await page.locator('.panel-row[data-family="sgdn"]').isHidden(), true, 'no SGDN panel without SGDN runs');
  // The hypergradient chart of the Adam family shows Adam-HD's g·d, and says its latest value.
  const legend = await page.locator('#chart-signal-adam .u-legend .u-series .u-label').allTextContents();
  assert.deepEqual(legend.slice(1), ['Adam-HD']);
  assert.match(await page.locator('#chart-signal-adam').getAttribute('aria-label'), /Hypergradient signal, Adam family\. Latest: Adam-HD -?\d/);
  // Hovering the α chart moves the cursor of the loss chart too.
  const cursor = () => page.locator('#chart-loss .u-cursor-x').evaluate((el) => el.style.transform || el.style.left);
  const before = await cursor();
  await page.locator('#chart-alpha-adam').scrollIntoViewIfNeeded();
  const over = await page.locator('#chart-alpha-adam .u-over').boundingBox();
  await page.mouse.move(over.x + over.width * 0.5, over.y + over.height * 0.5);
  await page.waitForFunction((b) => {
    const el = document.querySelector('#chart-loss .u-cursor-x');
    return (el.style.transform || el.style.left) !== b;
  }, before);
  assert.notEqual(await cursor(), before);
  await finish(page, problems, 'alpha-panels.png');
});

/** Clicks an export button and parses the CSV into objects. */
async function exportCsv(page, button) {
  const [head, ...lines] = await downloadCsv(page, button);
  const keys = head.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [keys[i], v])));
}

test('the paper\'s standardised inputs make SGD-HD\'s α peak early and decay, as in its Fig. 2', { timeout: TIMEOUT }, async () => {
  const peak = async (inputs) => {
    const { page, problems } = await open(`?opt=sgd-hd&epochs=2&inputs=${inputs}&run=1`);
    await finished(page);
    const note = await page.locator('#inputs-note').textContent();
    const alphas = (await exportCsv(page, '#export')).filter((r) => r.record === 'iteration').map((r) => Number(r.alpha));
    await finish(page, problems);
    const top = Math.max(...alphas);
    return { note, at: alphas.indexOf(top), top, end: alphas.at(-1), n: alphas.length };
  };
  const standard = await peak('standardised');
  const unit = await peak('unit');
  assert.match(standard.note, /standardised as in the paper, \(x − 0\.1307\) \/ 0\.3081/);
  assert.match(unit.note, /scaled to \[0, 1\]/);
  // Standardised: the peak comes within the first fifth of the run, and α falls after it.
  assert.ok(standard.at < standard.n / 5, `peak at ${standard.at} of ${standard.n}`);
  assert.ok(standard.end < 0.9 * standard.top, `α ends at ${standard.end}, peak ${standard.top}`);
  // Scaled to [0, 1]: α still climbs late in the run.
  assert.ok(unit.at > standard.at, `unit peak at ${unit.at}, standardised at ${standard.at}`);
});

/** SGD-HD by the paper's rule in f32 (Math.fround after every operation, as wasm computes):
 * α_t = α_{t−1} + β g_t·g_{t−1}, θ_t = θ_{t−1} − α_t g_t, on ½(x² + 20y²) from (−4.5, 1.2). */
function sgdHd(alpha0, beta, steps) {
  const f = Math.fround;
  let [x, y, a] = [f(-4.5), f(1.2), f(alpha0)];
  let [px, py] = [0, 0];
  const path = [x, y];
  for (let t = 0; t < steps; t++) {
    const [gx, gy] = [x, f(20 * y)];
    a = f(a + f(f(beta) * f(f(gx * px) + f(gy * py))));
    [x, y] = [f(x - f(a * gx)), f(y - f(a * gy))];
    [px, py] = [gx, gy];
    path.push(x, y);
  }
  return { path, alpha: a };
}

test('the 2-D playground steps hd-core\'s SGD-HD along the paper\'s path', { timeout: TIMEOUT }, async () => {
  const { page, problems } = await open('');
  const canvas = page.locator('#pg-canvas');
  await page.locator('#pg-canvas[data-steps="0"]').waitFor();
  assert.equal(await page.locator('#pg-alpha0-value').textContent(), '0.005');
  assert.equal(await page.locator('#pg-beta-value').textContent(), '0.0001');
  for (let i = 0; i < 6; i++) await page.locator('#pg-step').click();
  await page.locator('#pg-canvas[data-steps="6"]').waitFor();
  const shown = (await canvas.getAttribute('data-path-hd')).split(',').map(Number);
  const want = sgdHd(0.005, 1e-4, 6);
  assert.equal(shown.length, want.path.length);
  shown.forEach((v, i) => assert.ok(Math.abs(v - want.path[i]) <= 1e-5 * (1 + Math.abs(want.path[i])), `coordinate ${i}: ${v} vs ${want.path[i]}`));
  assert.equal(await page.locator('#pg-alpha').textContent(), String(Number(want.alpha.toPrecision(3))));
  // Plain SGD keeps α0: its path is the same rule with β = 0.
  const sgd = (await canvas.getAttribute('data-path-sgd')).split(',').map(Number);
  sgdHd(0.005, 0, 6).path.forEach((v, i) => assert.ok(Math.abs(sgd[i] - v) <= 1e-5 * (1 + Math.abs(v)), `SGD ${i}`));
  // A slider change restarts at once, from the keyboard too.
  await page.locator('#pg-beta').focus();
  await page.keyboard.press('ArrowRight');
  await page.locator('#pg-canvas[data-steps="0"]').waitFor();
  assert.match(await page.locator('#pg-beta').getAttribute('aria-valuetext'), /^β = /);
  // Play runs on its own; Pause stops it.
  await page.locator('#pg-play').click();
  await page.waitForFunction(() => Number(document.querySelector('#pg-canvas').dataset.steps) >= 4);
  await page.locator('#pg-play').click();
  const paused = await canvas.getAttribute('data-steps');
  await page.waitForTimeout(400);
  assert.equal(await canvas.getAttribute('data-steps'), paused);
  await page.locator('#pg-objective').selectOption('rosenbrock');
  await page.locator('#pg-canvas[data-steps="0"]').waitFor();
  await canvas.scrollIntoViewIfNeeded();
  await snapshot(page, 'playground.png');
  await finish(page, problems);
});

test('keyboard only: train, keep the focus, draw a digit; the accessibility tree names everything', { timeout: TIMEOUT }, async () => {
  const { page, problems } = await open('?opt=sgd,sgd-hd&epochs=40&batch=256&inputs=unit&alpha0=0.05');
  await ready(page);
  // Tab to Train from the top of the page.
  for (let i = 0; i < 40 && (await page.evaluate(() => document.activeElement?.id)) !== 'start'; i++) await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'start');
  await page.keyboard.press('Enter');
  // Train disabled itself: the focus moved to Stop, not to <body>.
  await page.waitForFunction(() => document.getElementById('start').disabled);
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'stop');
  // Stop from the keyboard: it disables itself and hands the focus back to Train.
  await page.keyboard.press('Enter');
  await page.getByRole('status').filter({ hasText: 'Stopped.' }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'start');
  // A short run to the end: the focus returns to Train when Stop disables itself.
  await page.locator('#epochs').fill('2');
  await page.locator('#start').focus();
  await page.keyboard.press('Enter');
  await finished(page);
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'start');
  // The slider says its value in words.
  assert.equal(await page.locator('#alpha0-slider').getAttribute('aria-valuetext'), 'α0 = 0.05');
  // A legend toggle from the keyboard hides SGD in every chart.
  await page.locator('#toggles button').first().focus();
  await page.keyboard.press('Enter');
  assert.equal(await page.locator('#toggles button').first().getAttribute('aria-pressed'), 'false');
  await drawnChart(page, 'chart-loss');
  assert.equal(await page.locator('#chart-loss .u-legend .u-series').nth(1).evaluate((el) => el.classList.contains('u-off')), true);
  await page.keyboard.press('Enter');
  // Draw a vertical stroke with the keyboard: Space lowers the pen, arrows move it.
  await page.locator('#draw').focus();
  for (let i = 0; i < 6; i++) await page.keyboard.press('ArrowUp');
  await page.keyboard.press('Space');
  for (let i = 0; i < 12; i++) await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Space');
  await page.locator('#probs li.best').waitFor();
  assert.match(await page.locator('#inspect-note').textContent(), /the best run by test accuracy/);
  // The accessibility tree: a heading per section, every chart an image with its final values.
  const tree = await page.locator('body').ariaSnapshot();
  for (const h of ['Settings', 'Training curves', 'How α moves', 'Results', 'Does α0 still matter?', 'The 2-D playground', 'Inside the model']) {
    assert.ok(tree.includes(`heading "${h}"`), `no heading ${h}`);
  }
  assert.match(tree, /img "Training loss per iteration\. Latest: SGD \d\.\d+; SGD-HD \d\.\d+\."/);
  assert.match(tree, /img "α per iteration, SGD family\. SGD from 0\.05 to 0\.05; SGD-HD from 0\.05 to [\d.]+\."/);
  assert.match(tree, /img "Test accuracy per epoch\. Latest: SGD \d+\.\d+ %; SGD-HD \d+\.\d+ %\."/);
  assert.match(tree, /slider "α0 on a log scale/);
  await finish(page, problems);
});

test('phone (390 × 844): Train in view, nothing overflows, the table and legends fit', { timeout: TIMEOUT }, async () => {
  const { page, problems } = await open('?opt=sgd,sgd-hd,adam,adam-hd&epochs=1&batch=512&run=1', { width: 390, height: 844 });
  await finished(page);
  await page.evaluate(() => window.scrollTo(0, 0));
  const train = await page.locator('#start').boundingBox();
  assert.ok(train.y + train.height <= 844, `Train ends at ${train.y + train.height}`);
  // No input, select or button wider than its form.
  const overflow = await page.evaluate(() => {
    const right = document.getElementById('settings').getBoundingClientRect().right;
    return [...document.querySelectorAll('#settings input, #settings select, #settings button')]
      .filter((el) => el.getBoundingClientRect().right > right + 0.5).map((el) => el.id || el.name);
  });
  assert.deepEqual(overflow, []);
  assert.equal(await page.evaluate(() => document.documentElement.scrollWidth), 390, 'the page scrolls sideways');
  // The results table: the α cell of every run lies within the screen.
  const alphaCells = await page.locator('#results tbody td:nth-child(8)').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().right));
  assert.equal(alphaCells.length, 4);
  for (const r of alphaCells) assert.ok(r <= 390, `α cell ends at ${r}`);
  // Legends no taller than their charts.
  for (const id of ['chart-loss', 'chart-test-loss', 'chart-test-accuracy', 'chart-alpha-sgd', 'chart-signal-sgd', 'chart-alpha-adam', 'chart-signal-adam']) await drawnChart(page, id);
  await page.evaluate(() => window.scrollTo(0, 0));
  const sizes = await page.locator('.chart').evaluateAll((els) => els.filter((e) => e.offsetParent).map((e) => ({
    id: e.id, legend: e.querySelector('.u-legend')?.getBoundingClientRect().height ?? 0, plot: e.querySelector('.u-wrap')?.getBoundingClientRect().height ?? 0,
  })));
  for (const s of sizes) assert.ok(s.legend <= s.plot, `${s.id}: legend ${s.legend} px, chart ${s.plot} px`);
  await snapshot(page, 'phone-top.png');
  for (const part of ['curves', 'alpha', 'results', 'playground']) await snapshot(page.locator(`section.${part}`), `phone-${part}.png`);
  await finish(page, problems, 'phone.png');
});
