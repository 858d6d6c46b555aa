// Chart redraws spread over animation frames: each frame runs queued jobs until a time budget
// is spent, so no single task blocks the page for long even on a slow device (a chart with nine
// long lines can take tens of milliseconds to draw at 4× CPU throttling). A job queued again
// before it ran replaces the older one: only the latest data of a chart is ever drawn.
// `<html data-drawn>` is "true" when nothing is waiting, for tests and tools.

/** Milliseconds of drawing per frame before the rest waits for the next frame. */
const BUDGET_MS = 10;

const queue = new Map();
let pending = false;

function run() {
  pending = false;
  const start = performance.now();
  for (const [key, job] of queue) {
    queue.delete(key);
    job();
    if (performance.now() - start > BUDGET_MS) break;
  }
  if (queue.size > 0) request();
  else document.documentElement.dataset.drawn = 'true';
}

function request() {
  pending = true;
  requestAnimationFrame(run);
}

/** Runs `job` in a coming animation frame, replacing any job queued under the same `key`. */
export function schedule(key, job) {
  queue.set(key, job);
  document.documentElement.dataset.drawn = 'false';
  if (!pending) request();
}
