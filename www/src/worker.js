// The training worker: loads hd-wasm and the digits, then trains in slices of about 25 ms,
// posting what changed after each slice, so the page never waits on a long computation.
//
// Messages in:  {type: 'train' | 'sweep' | 'betasweep', settings}, {type: 'stop'}, {type: 'predict', run, pixels},
//               {type: 'weights', run}, {type: 'bench', seconds}
// Messages out: {type: 'loading', received, total}, {type: 'ready', ids, digits}, {type: 'progress', ...}, {type: 'done', stopped},
//               {type: 'prediction', run, probs}, {type: 'weights', run, weights},
//               {type: 'bench', ...}, {type: 'error', message}
import init, { Digits, Session, optimizerIds, optimizerLabel } from '../pkg/hd_wasm.js';
import { BETA_FACTORS, OPTIMIZERS, SWEEP_ALPHAS } from './params.js';

const wasmUrl = new URL('../pkg/hd_wasm_bg.wasm', import.meta.url);
const digitsUrl = new URL('../pkg/mnist-10k.bin.gz', import.meta.url);

/** Target wall time of one training slice: short enough to react to "stop" at once. */
const SLICE_MS = 25;

let digits = null;
/** The latest session of each mode; the training one answers predictions and weights. */
const sessions = { train: null, sweep: null, betasweep: null, bench: null };
let job = 0; // incremented on every start or stop; a running loop exits when it changes
let sent = []; // per run of the running session: how many iterations the page already has

const ready = (async () => {
  const [, bytes] = await Promise.all([init({ module_or_path: wasmUrl }), loadDigits()]);
  digits = new Digits(bytes);
  const ids = optimizerIds();
  const theirs = ids.map((id) => `${id}=${optimizerLabel(id)}`).join(', ');
  const ours = OPTIMIZERS.map((o) => `${o.id}=${o.label}`).join(', ');
  if (theirs !== ours) throw new Error(`hd-core names the optimizers ${theirs}; the page lists ${ours}`);
  postMessage({ type: 'ready', ids, digits: digits.length });
})().catch((e) => postMessage({ type: 'error', message: `could not load the demo: ${e.message ?? e}` }));

async function loadDigits() {
  const response = await fetch(digitsUrl);
  if (!response.ok) throw new Error(`${digitsUrl}: HTTP ${response.status}`);
  // Gzipped by the build; DecompressionStream keeps the download at 1.6 MB instead of 7.9 MB
  // without relying on the server to compress.
  // Counted on the way through, so the page can show the download's progress.
  const total = Number(response.headers.get('Content-Length')) || 0;
  let received = 0;
  let posted = 0;
  const counter = new TransformStream({
    transform(chunk, controller) {
      received += chunk.byteLength;
      if (received - posted > 64 * 1024 || received === total) {
        posted = received;
        postMessage({ type: 'loading', received, total });
      }
      controller.enqueue(chunk);
    },
  });
  const stream = response.body.pipeThrough(counter).pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Yields to the event loop (to receive "stop") without setTimeout's 4 ms clamp. */
function yieldToEvents() {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

/** Replaces the session of `mode`, freeing the old one's wasm memory. */
function replaceSession(mode, make) {
  sessions[mode]?.free();
  sessions[mode] = null;
  sessions[mode] = make();
  return sessions[mode];
}

function snapshot(mode, session) {
  const runs = [];
  for (let i = 0; i < session.runCount; i++) {
    const from = sent[i];
    const loss = session.iterationLoss(i, from);
    const alpha = session.iterationAlpha(i, from);
    const signal = session.iterationSignal(i, from);
    sent[i] = from + loss.length;
    runs.push({
      index: i,
      id: session.runId(i),
      alpha0: session.alpha0(i),
      beta: session.beta(i) ?? null,
      status: session.runStatus(i),
      divergedAt: session.divergedAt(i) ?? null,
      alphaNow: session.alpha(i),
      from,
      loss,
      alpha,
      signal,
      trainLoss: session.epochTrainLoss(i),
      testLoss: session.epochTestLoss(i),
      testAccuracy: session.epochTestAccuracy(i),
    });
  }
  const transfer = runs.flatMap((r) => [r.loss.buffer, r.alpha.buffer, r.signal.buffer]);
  postMessage(
    {
      type: 'progress',
      mode,
      iteration: session.iteration,
      epoch: session.epoch,
      iterationsPerEpoch: session.iterationsPerEpoch,
      runs,
    },
    transfer,
  );
}

async function train(mode, settings) {
  await ready;
  const me = ++job;
  const epochs = mode === 'train' ? settings.epochs : settings.sweep_epochs;
  // One settings object, read by name in hd-wasm (`Settings::from_fields`).
  const session = replaceSession(mode, () => new Session(digits, { ...settings, epochs }));
  if (mode === 'sweep') {
    for (const id of settings.opt) for (const a of SWEEP_ALPHAS) session.addRun(id, a);
  } else if (mode === 'betasweep') {
    const hd = settings.opt.filter((id) => id.includes('-hd'));
    for (const id of hd) for (const f of BETA_FACTORS) session.addRunScaled(id, settings.alpha0, f);
  } else {
    for (const id of settings.opt) session.addRun(id, settings.alpha0);
  }
  sent = new Array(session.runCount).fill(0);
  snapshot(mode, session);
  let chunk = 1;
  while (job === me && !session.finished) {
    const t0 = performance.now();
    const done = session.step(chunk);
    const ms = performance.now() - t0;
    // Aim each slice at SLICE_MS whatever the batch size and the number of runs.
    if (done === chunk) chunk = Math.max(1, Math.min(chunk * 4, Math.round((chunk * SLICE_MS) / Math.max(ms, 0.1))));
    snapshot(mode, session);
    await yieldToEvents();
  }
  if (job === me) postMessage({ type: 'done', mode, stopped: false });
}

async function bench(seconds) {
  await ready;
  const me = ++job;
  const session = replaceSession('bench', () => Session.benchmark(digits));
  session.step(session.iterationsPerEpoch); // warm-up epoch, as natively
  const startSamples = session.samplesDone;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000 && job === me) session.step(16);
  const elapsed = (performance.now() - t0) / 1000;
  const samples = session.samplesDone - startSamples;
  postMessage({ type: 'bench', samples, seconds: elapsed, samplesPerSecond: samples / elapsed });
}

function guard(promise) {
  promise.catch((e) => postMessage({ type: 'error', message: e.message ?? String(e) }));
}

onmessage = ({ data }) => {
  switch (data.type) {
    case 'train':
    case 'sweep':
    case 'betasweep':
      guard(train(data.type, data.settings));
      break;
    case 'stop':
      job++;
      postMessage({ type: 'done', stopped: true });
      break;
    case 'predict': {
      const session = sessions.train;
      if (session && data.run < session.runCount) {
        postMessage({ type: 'prediction', run: data.run, probs: session.predict(data.run, data.pixels) });
      }
      break;
    }
    case 'weights': {
      const session = sessions.train;
      if (session && data.run < session.runCount) {
        postMessage({ type: 'weights', run: data.run, weights: session.weights(data.run) });
      }
      break;
    }
    case 'bench':
      guard(bench(data.seconds));
      break;
    default:
      postMessage({ type: 'error', message: `unknown message ${data.type}` });
  }
};
