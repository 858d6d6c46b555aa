// Inside the model: the chosen run's weights as ten images, and the drawing pad whose digit
// that run classifies. It opens on the best run (highest test accuracy) until the visitor
// picks one. The pad works with a mouse, a finger or the keyboard (arrows move the pen, Space
// lifts or lowers it).
import { preprocess, drawWeights } from './digits.js';
import { schedule } from './frames.js';

const $ = (id) => document.getElementById(id);

export class Inspector {
  /** `post(message, transfer)` sends to the worker. */
  constructor(post) {
    this.post = post;
    this.select = $('inspect-run');
    this.picked = false;
    this.lastWeights = 0;
    this.select.addEventListener('change', () => {
      this.picked = true;
      this.request(true);
    });
    this.probs = $('probs');
    for (let k = 0; k < 10; k++) {
      const li = document.createElement('li');
      li.innerHTML = `<span class="digit">${k}</span><span class="bar"><span></span></span><span class="p">—</span>`;
      this.probs.append(li);
    }
    this.pad = $('draw');
    this.ctx = this.pad.getContext('2d', { willReadFrequently: true });
    this.inked = false;
    this.clear();
    this.wirePad();
    $('clear').addEventListener('click', () => this.clear());
  }

  /** New runs: list them; keep the visitor's pick only if they made one. */
  setRuns(runs) {
    this.runs = runs;
    this.picked = false;
    this.select.replaceChildren(...runs.map((r, i) => new Option(r.label, String(i))));
    this.select.disabled = runs.length === 0;
  }

  /** After training: select the best run unless the visitor chose one, and say which. */
  chooseBest(runs) {
    if (this.picked || runs.length === 0) return;
    let best = 0;
    runs.forEach((r, i) => {
      const acc = (r.testAccuracy ?? []).at(-1) ?? -1;
      if (acc > ((runs[best].testAccuracy ?? []).at(-1) ?? -1)) best = i;
    });
    this.select.value = String(best);
    const acc = runs[best].testAccuracy?.at(-1);
    $('inspect-note').textContent = `Showing ${runs[best].label}, the best run by test accuracy${acc ? ` (${(acc * 100).toFixed(2)} %)` : ''}; pick another above.`;
    this.request(true);
  }

  request(force = false) {
    if (this.select.disabled) return;
    const now = performance.now();
    if (!force && now - this.lastWeights < 500) return;
    this.lastWeights = now;
    this.post({ type: 'weights', run: Number(this.select.value) });
    this.predict();
  }

  /** Draws the weights in a frame of their own, and only once they are on screen (frames.js). */
  weights(w) {
    const el = $('weights');
    schedule('weights', () => drawWeights(el, w), el);
  }

  showProbabilities(probs) {
    const best = probs ? probs.indexOf(Math.max(...probs)) : -1;
    [...this.probs.children].forEach((li, k) => {
      const p = probs ? probs[k] : 0;
      li.querySelector('.bar span').style.width = `${(p * 100).toFixed(1)}%`;
      li.querySelector('.p').textContent = probs ? `${(p * 100).toFixed(1)} %` : '—';
      li.classList.toggle('best', k === best);
    });
  }

  clear() {
    this.ctx.fillStyle = '#000';
    this.ctx.fillRect(0, 0, this.pad.width, this.pad.height);
    this.inked = false;
    this.showProbabilities(null);
  }

  stroke(from, to) {
    const c = this.ctx;
    c.strokeStyle = '#fff';
    c.lineWidth = 22;
    c.lineCap = 'round';
    c.lineJoin = 'round';
    c.beginPath();
    c.moveTo(...from);
    c.lineTo(...to);
    c.stroke();
    this.inked = true;
  }

  wirePad() {
    const pad = this.pad;
    let last = null;
    const point = (e) => {
      const rect = pad.getBoundingClientRect();
      return [((e.clientX - rect.left) * pad.width) / rect.width, ((e.clientY - rect.top) * pad.height) / rect.height];
    };
    pad.addEventListener('pointerdown', (e) => {
      pad.setPointerCapture(e.pointerId);
      last = point(e);
    });
    pad.addEventListener('pointermove', (e) => {
      if (!last) return;
      const p = point(e);
      this.stroke(last, p);
      last = p;
    });
    pad.addEventListener('pointerup', () => {
      last = null;
      this.predict();
    });
    // Keyboard: a pen at the centre; arrows move it 14 px (drawing while down), Space toggles.
    let pen = [pad.width / 2, pad.height / 2];
    let down = false;
    const moves = { ArrowUp: [0, -14], ArrowDown: [0, 14], ArrowLeft: [-14, 0], ArrowRight: [14, 0] };
    pad.addEventListener('keydown', (e) => {
      if (e.key === ' ') {
        down = !down;
        if (down) this.stroke(pen, pen);
        else this.predict();
      } else if (moves[e.key]) {
        const next = [Math.min(pad.width, Math.max(0, pen[0] + moves[e.key][0])), Math.min(pad.height, Math.max(0, pen[1] + moves[e.key][1]))];
        if (down) this.stroke(pen, next);
        pen = next;
      } else {
        return;
      }
      e.preventDefault();
    });
  }

  predict() {
    if (!this.inked || this.select.disabled) return;
    const pixels = preprocess(this.ctx.getImageData(0, 0, this.pad.width, this.pad.height));
    if (pixels) this.post({ type: 'predict', run: Number(this.select.value), pixels }, [pixels.buffer]);
  }
}
