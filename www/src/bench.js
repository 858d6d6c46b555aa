// Runs the throughput benchmark in the demo's worker and shows the result (also as JSON for
// `cargo xtask demo --bench`).
const seconds = Number(new URLSearchParams(location.search).get('seconds') ?? 3);
const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
const status = document.getElementById('status');
worker.onmessage = ({ data }) => {
  if (data.type === 'ready') {
    worker.postMessage({ type: 'bench', seconds: Number.isFinite(seconds) && seconds > 0 ? seconds : 3 });
  } else if (data.type === 'bench') {
    document.getElementById('result').textContent = JSON.stringify(
      { samples: data.samples, seconds: data.seconds, samples_per_s: data.samplesPerSecond },
      null,
      2,
    );
    status.textContent = `Done: ${Math.round(data.samplesPerSecond).toLocaleString('en')} samples per second.`;
  } else if (data.type === 'error') {
    status.textContent = `Error: ${data.message}`;
    console.error(data.message);
  }
};
