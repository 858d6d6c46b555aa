// End-to-end tests of the built demo in real headless Chromium: train from a link, check the
// results table, the charts, the weights, the drawing pad, the sweep and CSV export, and that
// bad settings are refused with a message. Screenshots go to $HD_ARTIFACTS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TIMEOUT, downloadCsv, drawnChart, finish, finished, open as openPage, ready, useBrowser } from '../pages.mjs';

const LN10 = Math.log(10); // loss of the untrained (zero) model on any digit: −ln(1/10)
const browser = useBrowser();
const open = (query) => openPage(browser(), query);

/** The results table as objects keyed by column header. */
async function table(page) {
  return page.$$eval('table#results', ([t]) => {
    const heads = [...t.tHead.rows[0].cells].map((c) => c.textContent.trim());
    return [...t.tBodies[0].rows].map((r) => Object.fromEntries([...r.cells].map((c, i) => [heads[i], c.textContent.trim()])));
  });
}

const number = (text) => Number(text.replace('%', '').trim());

test('a link with run=1 trains SGD and SGD-HD to above 85 % test accuracy', { timeout: TIMEOUT }, async () => {
  // Grey levels in [0, 1]: α0 = 0.05 is a good rate there (standardised inputs need a smaller one).
  const { page, problems } = await open('?opt=sgd,sgd-hd&alpha0=0.05&beta=0.001&batch=128&epochs=4&seed=1&inputs=unit&run=1');
  assert.equal(await page.locator('table#results caption').textContent(), 'Results');
  await finished(page);
  const readyAt = await page.evaluate(() => performance.getEntriesByName('hd-ready')[0]?.startTime);
  assert.ok(readyAt > 0, 'the page marks when it is ready');

  const rows = await table(page);
  assert.deepEqual(rows.map((r) => r.Optimizer), ['SGD', 'SGD-HD']);
  for (const r of rows) {
    assert.equal(r.Epoch, '4 / 4');
    assert.equal(r['α0'], '0.05');
    // The loss fell: below the untrained model's ln 10 ≈ 2.303, on train and test data.
    assert.ok(number(r['Train loss']) < LN10 * 0.25, `${r.Optimizer} train loss ${r['Train loss']}`);
    assert.ok(number(r['Test loss']) < LN10 * 0.25, `${r.Optimizer} test loss ${r['Test loss']}`);
    assert.ok(number(r['Test accuracy']) > 85, `${r.Optimizer} accuracy ${r['Test accuracy']}`);
  }
  const [sgd, hd] = rows;
  assert.equal(sgd['β'], '—');
  assert.equal(hd['β'], '0.001');
  // Plain SGD keeps α0 exactly; SGD-HD's α moved away from it.
  assert.equal(number(sgd['α']), 0.05);
  assert.ok(Math.abs(number(hd['α']) - 0.05) > 0.05 * 0.05, `SGD-HD α ${hd['α']} barely moved`);

  // Every chart drew both lines (once on screen), at the size its canvas has on the page (the
  // chart worker draws what it is told; a chart sized while off screen once kept its old box).
  for (const id of ['chart-loss', 'chart-alpha-sgd', 'chart-test-loss', 'chart-test-accuracy']) {
    await drawnChart(page, id);
    const legend = await page.locator(`#${id} .u-legend .u-series .u-label`).allTextContents();
    assert.deepEqual(legend.slice(1), ['SGD', 'SGD-HD'], id);
    const box = await page.locator(`#${id} canvas`).boundingBox();
    assert.equal(await page.locator(`#${id}`).getAttribute('data-size'), `${Math.round(box.width)}x${Math.round(box.height)}`, id);
  }
  // The weights are drawn once they are on screen.
  await page.locator('#weights').scrollIntoViewIfNeeded();
  await page.locator('#weights canvas').nth(9).waitFor();
  assert.equal(await page.locator('#weights canvas').count(), 10);

  // Draw a vertical stroke (a "1") and get a probability distribution back.
  await page.locator('#draw').scrollIntoViewIfNeeded();
  const box = await page.locator('#draw').boundingBox();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.15);
  await page.mouse.down();
  for (let i = 1; i <= 10; i++) await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * (0.15 + 0.07 * i));
  await page.mouse.up();
  await page.locator('#probs li.best').waitFor();
  const probs = await page.locator('#probs .p').allTextContents();
  const total = probs.reduce((s, t) => s + number(t), 0);
  assert.ok(Math.abs(total - 100) < 0.6, `probabilities sum to ${total} %`);
  // Centred and scaled as MNIST's digits were, the stroke reads as a 1 to the trained model.
  assert.equal((await page.locator('#probs li.best .digit').textContent()).trim(), '1');

  await finish(page, problems, 'trained.png');
});

test('a diverging run is marked, stops, and leaves the charts readable', { timeout: TIMEOUT }, async () => {
  // Adam-HD with β = 1 (the largest the form allows): its first hypergradient step throws α to
  // about −36 (measured), the next loss is NaN. Adam beside it trains normally.
  const { page, problems } = await open('?opt=adam,adam-hd&alpha0=0.1&beta_adam=1&epochs=1&seed=1&inputs=unit&run=1');
  await finished(page);
  assert.match(await page.getByRole('status').textContent(), /1 diverged/);
  const [adam, adamHd] = await table(page);
  assert.equal(adam.Optimizer, 'Adam');
  assert.ok(number(adam['Test accuracy']) > 80, adam['Test accuracy']);
  assert.equal(adamHd.Optimizer, 'Adam-HD (diverged)');
  assert.equal(adamHd['α'], '—');
  assert.equal(await page.locator('table#results tbody tr[data-status="diverged"]').count(), 1);
  await drawnChart(page, 'chart-alpha-adam');
  const legend = await page.locator('#chart-alpha-adam .u-legend .u-series .u-label').allTextContents();
  assert.deepEqual(legend.slice(1), ['Adam', 'Adam-HD (diverged)']);
  // The α axis spans Adam's α = 0.1, not the diverged run's −36.
  const alpha = page.locator('#chart-alpha-adam');
  const [lo, hi] = [Number(await alpha.getAttribute('data-y-min')), Number(await alpha.getAttribute('data-y-max'))];
  assert.ok(lo > -1 && hi < 1 && lo < 0.1 && hi > 0.1, `α axis [${lo}, ${hi}]`);
  // Where α went negative, the page says so and why.
  assert.match(await page.locator('#alpha-note').textContent(), /Adam-HD's α went below zero at iteration \d+\. A negative α steps uphill/);
  await finish(page, problems, 'diverged.png');
});

test('Stop halts training and Train starts a fresh run', { timeout: TIMEOUT }, async () => {
  const { page, problems } = await open('?opt=sgd,adam&alpha0=0.01&batch=1&epochs=100');
  await ready(page);
  // Before any run the charts say they are empty rather than show an arbitrary range.
  assert.equal(await page.locator('#chart-test-loss').getAttribute('data-empty'), 'true');
  await page.locator('#start').click();
  await page.getByRole('status').filter({ hasText: 'Training: epoch' }).waitFor();
  // The axes span the whole run from the start: 100 epochs, 100 × 8,000 iterations of batch 1.
  await drawnChart(page, 'chart-test-loss');
  await drawnChart(page, 'chart-loss');
  assert.equal(await page.locator('#chart-test-loss').getAttribute('data-x-max'), '100');
  assert.equal(await page.locator('#chart-loss').getAttribute('data-x-max'), '800000');
  assert.equal(await page.locator('#chart-loss').getAttribute('data-empty'), 'false');
  await page.locator('#stop').click();
  await page.getByRole('status').filter({ hasText: 'Stopped.' }).waitFor();
  const stoppedAt = (await table(page)).map((r) => r.Epoch);
  await page.waitForTimeout(500);
  assert.deepEqual((await table(page)).map((r) => r.Epoch), stoppedAt, 'nothing trains after Stop');
  assert.equal(await page.locator('#start').isEnabled(), true);
  assert.equal(await page.locator('#stop').isDisabled(), true);
  // A fresh run replaces the stopped one.
  await page.locator('#epochs').fill('1');
  await page.locator('#batch').fill('256');
  await page.locator('#start').click();
  await page.getByRole('status').filter({ hasText: 'Training finished: 2 runs, 1 epoch.' }).waitFor({ timeout: TIMEOUT });
  assert.deepEqual((await table(page)).map((r) => r.Epoch), ['1 / 1', '1 / 1']);
  // The narrow (phone) layout, for review.
  await page.setViewportSize({ width: 390, height: 844 });
  await finish(page, problems, 'narrow.png');
});

test('bad settings get inline messages and never start a run', { timeout: TIMEOUT }, async () => {
  const { page, problems } = await open('?opt=sgd');
  await ready(page);
  const train = page.locator('#start');
  assert.equal(await train.isEnabled(), true);
  let attempts = 0;

  const cases = [
    ['alpha0', '', 'Enter a value'],
    ['alpha0', 'abc', 'Not a number'],
    ['alpha0', '0.5', 'Must be at least 1e−6 and at most 0.1'],
    ['alpha0', '1e-9', 'Must be at least 1e−6'],
    ['beta', '-1', 'Must be at least 0'],
    ['mu', '1', 'below 1'],
    ['batch', '0', 'Must be at least 1 and at most 8000'],
    ['batch', '12.5', 'Enter a whole number'],
    ['epochs', ' ', 'Enter a value'],
    ['seed', 'x1', 'Not a number'],
  ];
  for (const [field, value, message] of cases) {
    const input = page.locator(`#${field}`);
    const good = await input.inputValue();
    await input.fill(value);
    await page.locator(`#${field}-error`).filter({ hasText: message }).waitFor();
    assert.equal(await input.getAttribute('aria-invalid'), 'true', `${field}=${value}`);
    // Pressing Train (or Enter in the field) is refused with a message.
    await (attempts++ % 2 === 0 ? train.click() : input.press('Enter'));
    await page.getByRole('status').filter({ hasText: 'Fix the highlighted settings' }).waitFor();
    await page.locator('#paper').focus(); // the next case must see the status change again
    await page.evaluate(() => { document.getElementById('status').textContent = ''; });
    await input.fill(good);
    await page.locator(`#${field}-error`).filter({ hasText: /^$/ }).waitFor();
  }
  // The α0 box and its log slider follow each other, and the slider says its value in words.
  await page.locator('#alpha0').fill('0.01');
  assert.equal(await page.locator('#alpha0-slider').inputValue(), '-2');
  assert.equal(await page.locator('#alpha0-slider').getAttribute('aria-valuetext'), 'α0 = 0.01');
  await page.locator('#alpha0-slider').fill('-4');
  assert.equal(await page.locator('#alpha0').inputValue(), '0.0001');
  assert.equal(await page.locator('#alpha0-slider').getAttribute('aria-valuetext'), 'α0 = 0.0001');
  await page.locator('#alpha0').fill('abc');
  assert.equal(await page.locator('#alpha0-slider').getAttribute('aria-valuetext'), 'α0 is not a valid number (see the box)');
  await page.locator('#alpha0').fill('0.001');
  await page.locator('input[name="opt"][value="sgd"]').uncheck();
  await page.locator('#opt-error').filter({ hasText: 'Choose at least one optimizer' }).waitFor();
  await train.click();
  await page.getByRole('status').filter({ hasText: 'Fix the highlighted settings' }).waitFor();
  assert.equal(await page.locator('table#results tbody tr').count(), 0, 'nothing ran');
  await finish(page, problems, 'invalid-settings.png');
});

test('bad values in a link are shown, and run=1 does not start', { timeout: TIMEOUT }, async () => {
  const { page, problems } = await open('?opt=sgd,warp&alpha0=NaN&batch=99999&peers=prodigy,lion&run=1');
  await ready(page);
  await page.locator('#alpha0-error').filter({ hasText: 'Not a number' }).waitFor();
  await page.locator('#batch-error').filter({ hasText: 'at most 8000' }).waitFor();
  await page.locator('#opt-error').filter({ hasText: 'Unknown optimizer “warp”' }).waitFor();
  await page.locator('#peers-error').filter({ hasText: 'Unknown peer “lion”; expected prodigy, sf-sgd, sf-adamw (from the link: prodigy,lion)' }).waitFor();
  assert.equal(await page.locator('#alpha0').inputValue(), 'NaN');
  // The status keeps saying what is wrong, and that the link's run=1 was not started.
  await page.getByRole('status').filter({ hasText: 'Its run=1 was not started' }).waitFor();
  assert.match(await page.getByRole('status').textContent(), /invalid settings \(alpha0, batch, opt, peers\)/);
  await page.waitForTimeout(1000);
  assert.equal(await page.locator('table#results tbody tr').count(), 0, 'nothing ran');
  await finish(page, problems);
});

test('paper preset, α0 sweep and CSV export', { timeout: TIMEOUT }, async () => {
  const { page, problems } = await open('?opt=sgd,sgd-hd&epochs=1&sweep_epochs=1&alpha0=0.05&batch=500');
  await ready(page);
  await page.locator('#paper').click();
  const values = {};
  for (const k of ['alpha0', 'beta', 'beta_adam', 'beta_mult', 'mu', 'l2', 'batch', 'inputs']) values[k] = await page.locator(`#${k}`).inputValue();
  assert.deepEqual(values, { alpha0: '0.001', beta: '0.001', beta_adam: '1e-7', beta_mult: '0.02', mu: '0.9', l2: '0.0001', batch: '128', inputs: 'standardised' });
  // Visible feedback, and the paper's six optimizers selected.
  await page.getByRole('status').filter({ hasText: 'Paper settings applied' }).waitFor();
  const checked = await page.locator('input[name="opt"]:checked').evaluateAll((els) => els.map((e) => e.value));
  assert.deepEqual(checked, ['sgd', 'sgd-hd', 'sgdn', 'sgdn-hd', 'adam', 'adam-hd']);
  // A quick sweep of two of them, with the three learning-rate-free peers (ticked by default).
  for (const id of ['sgdn', 'sgdn-hd', 'adam', 'adam-hd']) await page.locator(`input[name="opt"][value="${id}"]`).uncheck();
  assert.match(page.url(), /alpha0=0\.001&beta=0\.001&beta_adam=1e-7&beta_mult=0\.02&mu=0\.9&l2=0\.0001&batch=128/);
  const peers = await page.locator('input[name="peer"]:checked').evaluateAll((els) => els.map((e) => e.value));
  assert.deepEqual(peers, ['prodigy', 'sf-sgd', 'sf-adamw']);
  assert.match(page.url(), /peers=prodigy%2Csf-sgd%2Csf-adamw/);

  // Progress shows inside the sweep's own section while it runs: record every text it shows.
  await page.evaluate(() => {
    window.sweepTexts = [];
    const el = document.getElementById('sweep-status');
    new MutationObserver(() => window.sweepTexts.push(el.textContent)).observe(el, { childList: true, characterData: true, subtree: true });
  });
  await page.locator('#sweep').click();
  // 2 optimizers and 3 peers, 6 values each.
  await page.getByRole('status').filter({ hasText: 'Sweep finished: 30 runs' }).waitFor({ timeout: TIMEOUT });
  const shown = await page.evaluate(() => window.sweepTexts);
  assert.ok(shown.some((t) => /^Sweeping α0: epoch 1 of 1, 30 runs side by side \(\d+ %\)\.$/.test(t)), shown.join(' | '));
  // α over time for every α0, and the conclusion as the numbers show it.
  const alphaLegend = await page.locator('#chart-sweep-alpha .u-legend .u-series .u-label').allTextContents();
  assert.deepEqual(alphaLegend.slice(1), ['α0 = 1e-6', 'α0 = 1e-5', 'α0 = 1e-4', 'α0 = 1e-3', 'α0 = 1e-2', 'α0 = 1e-1']);
  assert.match(await page.locator('#sweep-conclusion').textContent(), /SGD-HD depends (less|no less) on α0 than SGD/);
  assert.match(await page.locator('#sweep-conclusion').textContent(), /SGD tuned \(its best α0, 1e-\d\) reaches/);
  const legend = await page.locator('#chart-sweep .u-legend .u-series .u-label').allTextContents();
  assert.ok(legend[1].startsWith('SGD') && legend[2].startsWith('SGD-HD'), legend.join());
  // The peers are drawn with the others, each named with the knob its x is.
  ['Prodigy (d0)', 'Schedule-Free SGD (lr)', 'Schedule-Free AdamW (lr)'].forEach((name, k) => assert.ok(legend[3 + k].startsWith(name), legend.join()));
  const described = await page.locator('#chart-sweep').getAttribute('aria-label');
  for (const name of ['Prodigy \\(d0\\)', 'Schedule-Free SGD \\(lr\\)', 'Schedule-Free AdamW \\(lr\\)']) {
    assert.match(described, new RegExp(`${name}: 1e-6 → \\S+, 1e-5 → \\S+, 1e-4 → \\S+, 1e-3 → \\S+, 1e-2 → \\S+, 1e-1 → `), name);
  }
  const conclusion = await page.locator('#sweep-conclusion').textContent();
  assert.match(conclusion, /The learning-rate-free peers: Prodigy across its d0 [\d.]+–[\d.]+ \(×[\d.]+\), at its best d0 \(1e-\d\) [\d.]+; Schedule-Free SGD across its lr /);
  // Every swept method ranked by its spread, HD among the peers (in whatever order the numbers say).
  const ranking = conclusion.split('From least to most sensitive to its knob (highest over lowest final loss): ')[1];
  for (const name of ['SGD', 'SGD-HD', 'Prodigy', 'Schedule-Free SGD', 'Schedule-Free AdamW']) assert.match(ranking, new RegExp(`(^|, )${name} ×[\\d.]+(,|\\.$)`), name);
  const csv = await downloadCsv(page, '#sweep-export');
  assert.equal(csv[0], 'optimizer,alpha0,beta,mu,l2,batch,seed,status,record,index,train_loss,test_loss,test_accuracy,alpha');
  // 30 runs × (63 minibatches of 128 in 8,000 images + epochs 0 and 1).
  assert.equal(csv.length, 1 + 30 * (63 + 2));
  const alphas = new Set(csv.slice(1).map((l) => Number(l.split(',')[1])));
  assert.deepEqual([...alphas].sort((a, b) => a - b), [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1]);
  const rows = (id) => csv.filter((l) => l.startsWith(`${id},`)).map((l) => l.split(','));
  for (const id of ['prodigy', 'sf-sgd', 'sf-adamw']) {
    assert.equal(rows(id).length, 6 * (63 + 2), id);
    // Each peer learned at some value of its knob: a final loss well below the untrained ln 10.
    const finals = rows(id).filter((r) => r[8] === 'epoch' && r[9] === '1').map((r) => Number(r[10]));
    assert.ok(Math.min(...finals) < LN10 / 2, `${id}: ${finals}`);
  }
  // Schedule-Free's step size is its lr, always; Prodigy's d·lr grew from d0 = 1e-6 and never
  // falls below its d0.
  for (const r of rows('sf-sgd').filter((r) => r[8] === 'iteration' && r[13] !== '')) assert.equal(Number(r[13]), Number(r[1]));
  const prodigyLast = (d0) => Number(rows('prodigy').filter((r) => Number(r[1]) === d0 && r[8] === 'iteration').at(-1)[13]);
  assert.ok(prodigyLast(1e-6) > 1e-5, `Prodigy from d0 = 1e-6 ends at d·lr = ${prodigyLast(1e-6)}`);
  for (const d0 of [1e-6, 1e-5, 1e-4, 1e-3]) assert.ok(prodigyLast(d0) >= d0, `d0 ${d0}: ${prodigyLast(d0)}`);
  // Its d·lr over time, one line per d0, in the α chart.
  assert.deepEqual(await page.locator('#sweep-alpha-run option').allTextContents(), ['SGD-HD', 'Prodigy (d·lr)']);
  await page.locator('#sweep-alpha-run').selectOption('prodigy');
  await page.locator('#chart-sweep-alpha').filter({ has: page.locator('.u-legend .u-label', { hasText: 'd0 = 1e-6' }) }).waitFor();
  const prodigyLegend = await page.locator('#chart-sweep-alpha .u-legend .u-series .u-label').allTextContents();
  assert.deepEqual(prodigyLegend.slice(1), ['d0 = 1e-6', 'd0 = 1e-5', 'd0 = 1e-4', 'd0 = 1e-3', 'd0 = 1e-2', 'd0 = 1e-1']);
  assert.match(await page.locator('#chart-sweep-alpha').getAttribute('aria-label'), /^Prodigy's step size d·lr over time for each d0: d0 1e-6 → /);

  // The sweep's point: at the smallest α0, HD ends with a lower loss than plain SGD.
  const final = (id, a) => {
    const rows = csv.filter((l) => l.startsWith(`${id},`) && Number(l.split(',')[1]) === a && l.includes(',epoch,1,'));
    return Number(rows[0].split(',')[10]);
  };
  assert.ok(final('sgd-hd', 1e-4) < final('sgd', 1e-4), 'HD makes up for a small α0');

  // The β sweep: SGD-HD (the only HD optimizer selected) at 1/100 … 100 times its β.
  await page.locator('#betasweep').click();
  await page.getByRole('status').filter({ hasText: 'β sweep finished: 5 runs' }).waitFor({ timeout: TIMEOUT });
  const betaLegend = await page.locator('#chart-sweep-beta .u-legend .u-series .u-label').allTextContents();
  assert.deepEqual(betaLegend.slice(1), ['SGD-HD']);
  assert.match(await page.locator('#sweep-beta-conclusion').textContent(), /^β sweep at α0 = 0\.001, final training loss: SGD-HD: 0\.01× → [\d.]+, 0\.1× → [\d.]+, 1× → [\d.]+, 10× → [\d.]+, 100× → /);
  await finish(page, problems, 'sweep.png');
});
