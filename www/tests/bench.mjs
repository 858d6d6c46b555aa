// Browser half of `cargo xtask demo --bench`. Measures, in one run:
// - training throughput of the same loop in Chromium's wasm and natively: the two alternate for
//   several rounds (so both see the same load on a busy machine) and the best round of each
//   counts, the usual estimate of what the code can do;
// - the wasm module's gzipped size;
// - time to interactive: navigation start to the demo being ready to train, median of 5 cold loads;
// - responsiveness: main-thread tasks over 50 ms while nine optimizers train at 4× CPU
//   throttling (tests/longtasks.mjs; the page's goal is none), by the wall clock and by the
//   main thread's CPU time in the same runs; the best of three runs by the wall clock counts,
//   and every run's figures are printed.
// Prints one JSON object. Needs HD_DEMO_URL, HD_DIST (the built site) and HD_NATIVE (the native
// `throughput` example) with HD_DIGITS (the digits file it reads).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { baseUrl, foreground, launch } from './browser.mjs';
import { longTasksWhileTraining } from './longtasks.mjs';

const ROUNDS = Number(process.env.HD_BENCH_ROUNDS ?? 8);
const SECONDS = Number(process.env.HD_BENCH_SECONDS ?? 1.5);
const dist = process.env.HD_DIST ?? 'dist';
const TASK_RUNS = Number(process.env.HD_BENCH_TASK_RUNS ?? 3);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const foregrounded = foreground();
const browser = await launch();
try {
  const assets = join(dist, 'assets');
  const wasm = readdirSync(assets).find((f) => f.endsWith('.wasm'));
  const bytes = readFileSync(join(assets, wasm));

  const tti = [];
  for (let i = 0; i < 5; i++) {
    const context = await browser.newContext(); // a fresh cache each time
    const page = await context.newPage();
    await page.goto(baseUrl());
    await page.locator('html[data-ready="true"]').waitFor({ timeout: 30_000 });
    tti.push(await page.evaluate(() => performance.getEntriesByName('hd-ready')[0].startTime));
    await context.close();
  }

  // Time to interactive on a throttled connection (Chrome's "Fast 3G"-like: 1.6 Mbit/s down,
  // 150 ms latency), digits download included.
  const slow = await browser.newContext();
  const slowPage = await slow.newPage();
  const net = await slow.newCDPSession(slowPage);
  await net.send('Network.enable');
  await net.send('Network.emulateNetworkConditions', { offline: false, latency: 150, downloadThroughput: 200_000, uploadThroughput: 90_000 });
  await slowPage.goto(baseUrl());
  await slowPage.locator('html[data-ready="true"]').waitFor({ timeout: 120_000 });
  const ttiSlow = await slowPage.evaluate(() => performance.getEntriesByName('hd-ready')[0].startTime);
  await slow.close();

  // Main-thread tasks while nine optimizers train, with the CPU throttled 4× (a slow phone)
  // (tests/longtasks.mjs): every run's long tasks are reported, by the wall clock and by CPU
  // time, and the best run (fewest by the wall clock) counts.
  const taskRuns = [];
  for (let i = 0; i < TASK_RUNS; i++) taskRuns.push(await longTasksWhileTraining(browser));
  const best = taskRuns.reduce((a, b) => (b.wall.length < a.wall.length ? b : a));
  const busiest = Math.max(...taskRuns.map((r) => r.longestBusy));

  const page = await browser.newPage();
  await page.goto(`${baseUrl()}bench.html?manual=1`);
  const wasmRates = [];
  const nativeRates = [];
  for (let round = 0; round < ROUNDS; round++) {
    const native = JSON.parse(execFileSync(process.env.HD_NATIVE, [process.env.HD_DIGITS, String(SECONDS)], { encoding: 'utf8' }));
    nativeRates.push(native.samples_per_s);
    const inBrowser = await page.evaluate((s) => window.runBenchmark(s), SECONDS);
    wasmRates.push(inBrowser.samples_per_s);
  }
  console.log(JSON.stringify({
    native_samples_per_s: Math.max(...nativeRates),
    wasm_samples_per_s: Math.max(...wasmRates),
    native_rounds: nativeRates.map(Math.round),
    wasm_rounds: wasmRates.map(Math.round),
    wasm_bytes: bytes.length,
    wasm_gzip_bytes: gzipSync(bytes, { level: 9 }).length,
    tti_ms: tti.map(Math.round),
    tti_ms_median: median(tti),
    tti_slow_network_ms: Math.round(ttiSlow),
    longest_task_while_training_ms: Math.max(0, ...best.wall),
    tasks_over_50ms_while_training: best.wall.length,
    long_tasks_per_run: taskRuns.map((r) => r.wall),
    busy_tasks_over_50ms: taskRuns.reduce((n, r) => n + r.busy.length, 0),
    busy_tasks_over_50ms_per_run: taskRuns.map((r) => r.busy.length),
    busiest_task_ms: busiest,
    busy_tasks_per_run: taskRuns.map((r) => r.busy),
    browser_ahead_of_background_work: foregrounded,
    chromium: browser.version(),
  }));
} finally {
  await browser.close();
}
