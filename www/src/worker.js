// The training worker: loads hd-wasm and the digits, then trains in slices of about 25 ms,
// posting what changed every POST_MS, so the page never waits on a long computation and gets
// few, batched messages.
//
// Messages in:  {type: 'train' | 'sweep' | 'betasweep', settings}, {type: 'stop'}, {type: 'predict', run, pixels},
//               {type: 'weights', run}, {type: 'bench', seconds}
// Messages out: {type: 'loading', received, total}, {type: 'ready', ids, digits}, {type: 'progress', at, ...}, {type: 'done', stopped},
//               {type: 'prediction', run, probs}, {type: 'weights', run, weights},
//               {type: 'bench', ...}, {type: 'error', message}
import init, { Digits, Session, optimizerIds, optimizerKnob, optimizerLabel, peerIds } from '../pkg/hd_wasm.js';
import { BETA_FACTORS, OPTIMIZERS, PEERS, SWEEP_ALPHAS, decimal } from './params.js';

const wasmUrl = new URL('../pkg/hd_wasm_bg.wasm', import.meta.url);
const digitsUrl = new URL('../pkg/mnist-10k.bin.gz', import.meta.url);

/** Target wall time of one training slice: short enough to react to "stop" at once. */
const SLICE_MS = 25;
/** Least time between two progress messages: each is a task on the page's main thread, and the
 * page redraws every 500 ms at most, so the slices' results go out in batches. */
const POST_MS = 200;

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
  const theirPeers = peerIds().map((id) => `${id}=${optimizerLabel(id)} (${optimizerKnob(id)})`).join(', ');
  const ourPeers = PEERS.map((p) => `${p.id}=${p.label} (${p.knob})`).join(', ');
  if (theirPeers !== ourPeers) throw new Error(`hd-wasm names the peers ${theirPeers}; the page lists ${ourPeers}`);
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

function decimals(values) {
  return Float64Array.from(values, decimal);
}

/** Posts what the page does not have yet of every run. */
function snapshot(mode, session) {
  const runs = [];
  for (let i = 0; i < session.runCount; i++) {
    const from = sent[i];
    // Losses and α as the page shows them (their shortest decimals), converted here rather than
    // on the page's main thread.
    const loss = decimals(session.iterationLoss(i, from));
    const alpha = decimals(session.iterationAlpha(i, from));
    const signal = Float64Array.from(session.iterationSignal(i, from));
    sent[i] = from + loss.length;
    const beta = session.beta(i);
    runs.push({
      index: i,
      id: session.runId(i),
      alpha0: decimal(session.alpha0(i)),
      beta: beta === undefined || beta === null ? null : decimal(beta),
      status: session.runStatus(i),
      divergedAt: session.divergedAt(i) ?? null,
      alphaNow: session.alpha(i),
      from,
      loss,
      alpha,
      signal,
      trainLoss: decimals(session.epochTrainLoss(i)),
      testLoss: decimals(session.epochTestLoss(i)),
      testAccuracy: decimals(session.epochTestAccuracy(i)),
    });
  }
  const transfer = runs.flatMap((r) => [r.loss.buffer, r.alpha.buffer, r.signal.buffer]);
  postMessage(
    {
      type: 'progress',
      mode,
      // When it was sent, by the worker's clock: its spacing is the batching (POST_MS).
      at: performance.now(),
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
    // The peers' one knob over the same decades (Prodigy's d0, its lr staying 1; Schedule-Free's
    // lr), on the same minibatches. Their training loss is at the point they take gradients
    // at (Schedule-Free's y), as for every run; hd-wasm evaluates the held-out loss in the CSV
    // at Schedule-Free's average x.
    for (const id of settings.peers) for (const a of SWEEP_ALPHAS) session.addRun(id, a);
  } else if (mode === 'betasweep') {
    const hd = settings.opt.filter((id) => id.includes('-hd'));
    for (const id of hd) for (const f of BETA_FACTORS) session.addRunScaled(id, settings.alpha0, f);
  } else {
    for (const id of settings.opt) session.addRun(id, settings.alpha0);
  }
  sent = new Array(session.runCount).fill(0);
  // The first slice's results go out at once, so the first message already carries every
  // run's first losses (the charts never start empty); then at most one every POST_MS.
  let posted = -Infinity;
  let chunk = 1;
  while (job === me && !session.finished) {
    const t0 = performance.now();
    const done = session.step(chunk);
    const ms = performance.now() - t0;
    // Aim each slice at SLICE_MS whatever the batch size and the number of runs.
    if (done === chunk) chunk = Math.max(1, Math.min(chunk * 4, Math.round((chunk * SLICE_MS) / Math.max(ms, 0.1))));
    if (session.finished || t0 + ms - posted >= POST_MS) {
      snapshot(mode, session);
      posted = performance.now();
    }
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
