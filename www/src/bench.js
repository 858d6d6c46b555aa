// The throughput benchmark page: times the demo's training loop in the demo's own worker and
// shows the result. `window.runBenchmark(seconds)` runs it again (`cargo xtask demo --bench`
// alternates it with the native run, so both see the same machine load).
const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
const status = document.getElementById('status');
const ready = new Promise((resolve, reject) => {
  worker.addEventListener('message', ({ data }) => {
    if (data.type === 'ready') resolve();
    if (data.type === 'error') reject(new Error(data.message));
  });
});

window.runBenchmark = async (seconds) => {
  await ready;
  status.textContent = 'Running…';
  const result = await new Promise((resolve, reject) => {
    const onMessage = ({ data }) => {
      if (data.type === 'bench' || data.type === 'error') {
        worker.removeEventListener('message', onMessage);
        if (data.type === 'error') reject(new Error(data.message));
        else resolve({ samples: data.samples, seconds: data.seconds, samples_per_s: data.samplesPerSecond });
      }
    };
    worker.addEventListener('message', onMessage);
    worker.postMessage({ type: 'bench', seconds });
  });
  document.getElementById('result').textContent = JSON.stringify(result, null, 2);
  status.textContent = `Done: ${Math.round(result.samples_per_s).toLocaleString('en')} samples per second.`;
  return result;
};

const query = new URLSearchParams(location.search);
if (query.get('manual') !== '1') {
  const seconds = Number(query.get('seconds') ?? 3);
  window.runBenchmark(Number.isFinite(seconds) && seconds > 0 ? seconds : 3).catch((e) => {
    status.textContent = `Error: ${e.message}`;
    console.error(e.message);
  });
}
