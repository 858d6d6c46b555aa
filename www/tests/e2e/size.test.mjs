// The wasm module the page downloads stays within its budget: at most 60 KB gzipped (level 9,
// as `cargo xtask demo --bench` reports it), so the demo starts fast on a slow connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { finish, open, ready, useBrowser } from '../pages.mjs';

const BUDGET = 60_000;
const browser = useBrowser();

test('the wasm module is at most 60 KB gzipped', async () => {
  const modules = [];
  const { page, problems } = await open(browser(), '', undefined, (p) => p.on('response', (r) => {
    if (new URL(r.url()).pathname.endsWith('.wasm')) modules.push(r.body());
  }));
  await ready(page);
  const bodies = await Promise.all(modules);
  assert.ok(bodies.length >= 1, 'the page loaded no wasm module');
  for (const body of bodies) {
    const gz = gzipSync(body, { level: 9 }).length;
    assert.ok(gz <= BUDGET, `a ${body.length}-byte module is ${gz} bytes gzipped (budget ${BUDGET})`);
  }
  await finish(page, problems);
});
