// Main-thread long tasks while the demo trains, for `cargo xtask demo --bench` and the e2e test
// that asserts there are none: a fresh page trains nine optimizers for five epochs with the CPU
// throttled 4× (Chrome DevTools protocol, a slow phone) and the training curves in view, and
// the browser's long-task API lists every main-thread task over 50 ms from the press of Train
// until a second after the run finished.
import { baseUrl } from './browser.mjs';

export const THROTTLE = 4;
export const NINE = 'sgd,sgd-hd,sgd-hdm,sgdn,sgdn-hd,sgdn-hdm,adam,adam-hd,adam-hdm';

/** The durations (ms, rounded) of the main-thread tasks over 50 ms while `opt` trains. */
export async function longTasksWhileTraining(browser, { opt = NINE, epochs = 5 } = {}) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  try {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: THROTTLE });
    await page.addInitScript(() => {
      window.longTasks = [];
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) window.longTasks.push({ start: e.startTime, duration: e.duration });
      }).observe({ type: 'longtask', buffered: true });
    });
    await page.goto(`${baseUrl()}?opt=${opt}&epochs=${epochs}`);
    // Polled once a second: Playwright's default polling (every animation frame, with its
    // role queries) would add main-thread work of its own.
    const poll = { polling: 1000, timeout: 600_000 };
    await page.waitForFunction(() => document.documentElement.dataset.ready === 'true', null, poll);
    await page.evaluate(() => document.getElementById('curves-title').scrollIntoView());
    await page.waitForTimeout(500);
    await page.evaluate(() => {
      performance.mark('hd-train');
      document.getElementById('start').click();
    });
    await page.waitForFunction(() => /finished/.test(document.getElementById('status').textContent), null, poll);
    await page.waitForTimeout(1000);
    return await page.evaluate(() => {
      const start = performance.getEntriesByName('hd-train')[0].startTime;
      return window.longTasks.filter((t) => t.start >= start).map((t) => Math.round(t.duration));
    });
  } finally {
    await page.close();
  }
}
