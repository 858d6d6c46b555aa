// Chart redraws spread over animation frames, one chart per frame, so no single task blocks the
// page for long even on a slow device (a chart with nine long lines can take tens of
// milliseconds to draw at 4× CPU throttling). One per frame rather than a time budget: uPlot
// redraws in a microtask after `setData` returns, so a job's cost cannot be measured inside the
// frame. A job queued again before it ran replaces the older one: only the latest data of a
// chart is ever drawn.
// `<html data-drawn>` is "true" when nothing is waiting, for tests and tools.

const queue = new Map();
let pending = false;

function run() {
  pending = false;
  const [key, job] = queue.entries().next().value ?? [];
  if (job) {
    queue.delete(key);
    job();
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
