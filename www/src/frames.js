// Chart updates spread over animation frames, one chart per frame, and only for charts on
// screen: the page's share of a chart update (its ranges, the lines decimated and posted to the
// chart worker, the legend) stays small, and charts out of view (never yet seen, or scrolled
// away) cost nothing until they come into view. A job queued again before it ran replaces the
// older one: only the latest data of a chart is ever sent. `<html data-drawn>` is "true" when no
// chart on screen waits, and a chart's `data-stale` is set while its latest data is not sent,
// for tests and tools.

const queue = new Map();
/** Jobs of charts off screen: element → (key → job), run when it scrolls into view. */
const parked = new Map();
/** The element each keyed job of an element belongs to. */
const owners = new Map();
const visible = new WeakMap();
let pending = false;

const observer = new IntersectionObserver((entries) => {
  for (const e of entries) {
    visible.set(e.target, e.isIntersecting);
    const jobs = parked.get(e.target);
    if (e.isIntersecting && jobs) {
      parked.delete(e.target);
      for (const [key, job] of jobs) enqueue(key, job);
    }
  }
}, { rootMargin: '200px' });

/** True while a job of `el` is queued or parked. */
function waits(el) {
  if (parked.get(el)?.size) return true;
  for (const key of queue.keys()) if (owners.get(key) === el) return true;
  return false;
}

function run() {
  pending = false;
  const [key, job] = queue.entries().next().value ?? [];
  if (job) {
    queue.delete(key);
    job();
  }
  // A job that queued another (the redraw queues the charts') has requested the next frame
  // already: a second request would run two jobs in it.
  if (queue.size === 0) setDrawn('true');
  else if (!pending) request();
}

function request() {
  pending = true;
  requestAnimationFrame(run);
}

/** Sets `<html data-drawn>`, only when it changes: each write is a DOM mutation. */
function setDrawn(value) {
  if (document.documentElement.dataset.drawn !== value) document.documentElement.dataset.drawn = value;
}

function enqueue(key, job) {
  queue.set(key, job);
  setDrawn('false');
  if (!pending) request();
}

/**
 * Runs `job` in a coming animation frame, replacing any job queued under the same `key`. With
 * `el`, the job waits while `el` is off screen (the latest job of each key runs when it scrolls
 * into view).
 */
export function schedule(key, work, el = null) {
  let job = work;
  if (el) {
    owners.set(key, el);
    // `data-stale` marks a chart whose latest data is not drawn yet (tests wait for it to go).
    if (el.dataset.stale !== 'true') el.dataset.stale = 'true';
    job = () => {
      work();
      if (!waits(el)) delete el.dataset.stale;
    };
    if (!visible.has(el)) {
      // Not yet measured: the observer's first report (at the next frame) runs the job if the
      // element is on screen, and parks it otherwise.
      visible.set(el, false);
      observer.observe(el);
    }
    if (!visible.get(el)) {
      queue.delete(key);
      if (!parked.has(el)) parked.set(el, new Map());
      parked.get(el).set(key, job);
      return;
    }
    parked.get(el)?.delete(key);
  }
  enqueue(key, job);
}
