// Browser half of `cargo xtask demo --bench`. Measures, in one run:
// - training throughput of the same loop in Chromium's wasm and natively: the two alternate for
//   several rounds (so both see the same load on a busy machine) and the best round of each
//   counts, the usual estimate of what the code can do;
// - the wasm module's gzipped size;
// - time to interactive: navigation start to the demo being ready to train, median of 5 cold loads;
// - responsiveness: the longest main-thread task while four optimizers train (the page's goal is
//   none over 50 ms; the work runs in a worker).
// Prints one JSON object. Needs HD_DEMO_URL, HD_DIST (the built site) and HD_NATIVE (the native
// `throughput` example) with HD_DIGITS (the digits file it reads).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { baseUrl, launch } from './browser.mjs';

const ROUNDS = Number(process.env.HD_BENCH_ROUNDS ?? 8);
const SECONDS = Number(process.env.HD_BENCH_SECONDS ?? 1.5);
const dist = process.env.HD_DIST ?? 'dist';
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

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

  // Main-thread tasks while nine optimizers train, with the CPU throttled 4× (a slow phone).
  const training = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const cdp = await training.context().newCDPSession(training);
  await cdp.send('Emulation.setCPUThrottlingRate', { rate: 4 });
  await training.addInitScript(() => {
    window.longTasks = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.longTasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
  });
  await training.goto(`${baseUrl()}?opt=sgd,sgd-hd,sgd-hdm,sgdn,sgdn-hd,sgdn-hdm,adam,adam-hd,adam-hdm&epochs=5&run=1`);
  await training.getByRole('status').filter({ hasText: 'finished' }).waitFor({ timeout: 300_000 });
  const longTasks = await training.evaluate(() => {
    const ready = performance.getEntriesByName('hd-ready')[0].startTime;
    return window.longTasks.filter((t) => t.start >= ready).map((t) => Math.round(t.duration));
  });
  await training.close();

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
    longest_task_while_training_ms: Math.max(0, ...longTasks),
    tasks_over_50ms_while_training: longTasks.filter((d) => d > 50).length,
    chromium: browser.version(),
  }));
} finally {
  await browser.close();
}
