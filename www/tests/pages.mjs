// What the e2e test files share: one Chromium per file, pages that record every problem, charts
// read only once drawn, and the checks and screenshots that end a test.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { baseUrl, launch } from './browser.mjs';

export const TIMEOUT = 180_000;
const artifacts = process.env.HD_ARTIFACTS ?? 'test-artifacts';
mkdirSync(artifacts, { recursive: true });

/** Launches Chromium before the file's tests and closes it after; returns a getter. */
export function useBrowser() {
  let browser;
  before(async () => {
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
  });
  return () => browser;
}

/** A page of the demo at `query` that records console errors, uncaught exceptions and failed
 * requests in `problems`; `prepare(page)` runs before it loads. */
export async function open(browser, query, viewport = { width: 1280, height: 900 }, prepare = () => {}) {
  const page = await browser.newPage({ viewport });
  prepare(page);
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console.error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  // Error events Playwright does not count as uncaught (e.g. a ResizeObserver loop).
  await page.addInitScript(() => window.addEventListener('error', (e) => console.error(`window error: ${e.message}`)));
  await page.goto(`${baseUrl()}${query}`);
  return { page, problems };
}

/** Waits until the run a page started (a link with `run=1`, or Train) has finished. */
export async function finished(page) {
  await page.getByRole('status').filter({ hasText: 'finished' }).waitFor({ timeout: TIMEOUT });
}

/** Clicks the CSV export `button` and returns the downloaded file's lines. */
export async function downloadCsv(page, button) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator(button).click()]);
  return readFileSync(await download.path(), 'utf8').trimEnd().split('\n');
}

/** Waits until the digits are loaded and Train works. */
export async function ready(page) {
  await page.locator('html[data-ready="true"]').waitFor({ timeout: TIMEOUT });
}

/** Scrolls chart `id` into view and waits until its latest data is drawn (charts off screen
 * are drawn when they come into view). */
export async function drawnChart(page, id) {
  await page.locator(`#${id}`).scrollIntoViewIfNeeded();
  await page.locator(`#${id}:not([data-stale])`).waitFor();
}

/** Ends a test: a full-page screenshot `name` in $HD_ARTIFACTS (if given; every visible chart
 * drawn first, as a visitor scrolling down sees them), no problems recorded, the page closed. */
export async function finish(page, problems, name = null) {
  if (name) {
    const charts = await page.locator('.chart').evaluateAll((els) => els.filter((e) => e.offsetParent).map((e) => e.id));
    for (const id of charts) await drawnChart(page, id);
    // Sections far from the viewport are not rendered (`content-visibility: auto`); a visitor
    // scrolling down sees them, so the full-page picture shows them too.
    await page.addStyleTag({ content: 'main > section, main > form { content-visibility: visible !important; }' });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(artifacts, name), fullPage: true });
  }
  assert.deepEqual(problems, []);
  await page.close();
}

/** Saves a screenshot of what is in view now as `name` in $HD_ARTIFACTS. */
export async function snapshot(target, name) {
  await target.screenshot({ path: join(artifacts, name) });
}
