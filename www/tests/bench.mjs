// Browser half of `cargo xtask demo --bench`: training throughput in Chromium's wasm (the same
// loop as hd-wasm's `throughput` example), the wasm module's gzipped size, and the page's time
// to interactive (navigation start to the demo being ready to train), median of 5 cold loads.
// Prints one JSON object.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { baseUrl, launch } from './browser.mjs';

const seconds = Number(process.env.HD_BENCH_SECONDS ?? 5);
const dist = process.env.HD_DIST ?? 'dist';
const browser = await launch();
try {
  const assets = join(dist, 'assets');
  const wasm = readdirSync(assets).find((f) => f.endsWith('.wasm'));
  const bytes = readFileSync(join(assets, wasm));

  const tti = [];
  for (let i = 0; i < 5; i++) {
    const context = await browser.newContext(); // fresh cache each time
    const page = await context.newPage();
    await page.goto(baseUrl());
    await page.locator('html[data-ready="true"]').waitFor({ timeout: 30_000 });
    tti.push(await page.evaluate(() => performance.getEntriesByName('hd-ready')[0].startTime));
    await context.close();
  }
  tti.sort((a, b) => a - b);

  const page = await browser.newPage();
  await page.goto(`${baseUrl()}bench.html?seconds=${seconds}`);
  await page.getByRole('status').filter({ hasText: /Done|Error/ }).waitFor({ timeout: (seconds + 60) * 1000 });
  const result = JSON.parse(await page.locator('#result').textContent());
  console.log(JSON.stringify({
    samples_per_s: result.samples_per_s,
    samples: result.samples,
    seconds: result.seconds,
    wasm_bytes: bytes.length,
    wasm_gzip_bytes: gzipSync(bytes, { level: 9 }).length,
    tti_ms: tti.map((t) => Math.round(t)),
    tti_ms_median: tti[2],
    chromium: browser.version(),
  }));
} finally {
  await browser.close();
}
