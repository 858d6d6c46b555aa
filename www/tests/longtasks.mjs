// Main-thread long tasks while the demo trains, for `cargo xtask demo --bench`: a fresh page
// trains nine optimizers for five epochs with the CPU throttled 4× (Chrome DevTools protocol, a
// slow phone) and the training curves in view, from the press of Train until a second after the
// run finished. Two measures of the same run, side by side:
// - wall: the browser's long-task API, every main-thread task over 50 ms of wall-clock time. On
//   a machine busy with other work this also counts the time the thread waited for a core.
// - busy: the same tasks' CPU time on the main thread (a Chrome trace's thread time), which
//   leaves out that waiting. DevTools' throttling keeps the thread busy for the slowed-down
//   share of each task, so this is the task's length on the emulated device itself.
import { baseUrl } from './browser.mjs';

export const THROTTLE = 4;
export const NINE = 'sgd,sgd-hd,sgd-hdm,sgdn,sgdn-hd,sgdn-hdm,adam,adam-hd,adam-hdm';
const LONG_MS = 50;

/** The main thread's top-level tasks in a trace after the `hd-train` mark: [{ wall, cpu }] ms. */
function mainThreadTasks(events) {
  const mark = events.find((e) => e.name === 'hd-train');
  if (!mark) throw new Error('the trace has no hd-train mark');
  const threads = events.filter((e) => e.ph === 'M' && e.name === 'thread_name' && e.args?.name === 'CrRendererMain');
  const main = threads.find((t) => t.pid === mark.pid) ?? threads[0];
  const tasks = events
    .filter((e) => e.pid === main.pid && e.tid === main.tid && e.ph === 'X' && e.name === 'ThreadControllerImpl::RunTask')
    .sort((a, b) => a.ts - b.ts);
  const out = [];
  let end = -Infinity;
  for (const t of tasks) {
    if (t.ts < end) continue; // nested in the previous one
    end = t.ts + t.dur;
    // From the first task after the mark, as the long-task API counts them (the task that
    // pressed Train is the harness's own).
    if (t.ts >= mark.ts) out.push({ wall: t.dur / 1000, cpu: (t.tdur ?? t.dur) / 1000 });
  }
  return out;
}

/**
 * The main-thread tasks over 50 ms while `opt` trains: `wall`, their wall-clock durations (the
 * long-task API), and `busy`, the CPU times over 50 ms of the same period's tasks, with
 * `longestBusy` the longest CPU time of any of them (ms, rounded).
 */
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
    const events = [];
    cdp.on('Tracing.dataCollected', (d) => events.push(...d.value));
    const complete = new Promise((resolve) => cdp.once('Tracing.tracingComplete', resolve));
    // Top-level tasks only (with their thread time) and the page's marks: little overhead.
    await cdp.send('Tracing.start', { categories: 'toplevel,blink.user_timing', transferMode: 'ReportEvents' });
    await page.evaluate(() => {
      performance.mark('hd-train');
      document.getElementById('start').click();
    });
    await page.waitForFunction(() => /finished/.test(document.getElementById('status').textContent), null, poll);
    await page.waitForTimeout(1000);
    await cdp.send('Tracing.end');
    await complete;
    const wall = await page.evaluate(() => {
      const start = performance.getEntriesByName('hd-train')[0].startTime;
      return window.longTasks.filter((t) => t.start >= start).map((t) => Math.round(t.duration));
    });
    const cpu = mainThreadTasks(events).map((t) => Math.round(t.cpu));
    return { wall, busy: cpu.filter((ms) => ms > LONG_MS), longestBusy: Math.max(0, ...cpu) };
  } finally {
    await page.close();
  }
}
