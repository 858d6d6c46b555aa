// The 2-D playground: plain SGD and SGD-HD from the same α0 on a small objective, stepped by
// hd-core's rules through hd-wasm (its own copy of the module on this thread: each step is a
// few dozen flops). The path is drawn on the objective's contours with SGD-HD's last two
// gradients as arrows, and the update rule is written out with the live numbers.
import { Playground } from '../pkg/hd_wasm.js';
import { wasmReady } from './wasm.js';

const $ = (id) => document.getElementById(id);

/** Starting α0 and β per objective (log10), chosen so that both walkers make visible progress
 * and SGD-HD's α visibly moves within a hundred steps. */
const DEFAULTS = { quadratic: [Math.log10(0.005), -4], rosenbrock: [Math.log10(5e-4), -7] };
/** Steps per second while playing, and where play stops. */
const RATE = 15;
const MAX_STEPS = 1000;
const COLOURS = { sgd: '#2f7ab9', hd: '#08306b', now: '#1b1f24', before: '#8c959f' };

/** A number to three significant digits, scientific when far from 1. */
function n3(v) {
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e4) ? v.toExponential(2) : String(Number(v.toPrecision(3)));
}

export class PlaygroundView {
  constructor() {
    this.canvas = $('pg-canvas');
    this.ctx = this.canvas.getContext('2d');
    this.objective = $('pg-objective');
    this.alpha0 = $('pg-alpha0');
    this.beta = $('pg-beta');
    this.play = $('pg-play');
    this.timer = null;
    this.ready = wasmReady.then(() => {
      this.setDefaults();
      this.restart();
    });
    this.objective.addEventListener('change', () => {
      this.setDefaults();
      this.restart();
    });
    for (const s of [this.alpha0, this.beta]) s.addEventListener('input', () => this.restart());
    this.play.addEventListener('click', () => (this.timer ? this.pause() : this.start()));
    $('pg-step').addEventListener('click', () => {
      this.pause();
      this.step();
    });
    $('pg-reset').addEventListener('click', () => this.restart());
    new ResizeObserver(() => requestAnimationFrame(() => this.draw())).observe(this.canvas);
  }

  setDefaults() {
    const [a, b] = DEFAULTS[this.objective.value];
    this.alpha0.value = String(a);
    this.beta.value = String(b);
  }

  /** The sliders' values: two significant digits, as the labels show them. */
  settings() {
    const round = (v) => Number((10 ** Number(v)).toPrecision(2));
    return { alpha0: round(this.alpha0.value), beta: round(this.beta.value) };
  }

  /** A fresh pair of walkers from the current settings, drawn at once. */
  restart() {
    const { alpha0, beta } = this.settings();
    $('pg-alpha0-value').textContent = String(alpha0);
    $('pg-beta-value').textContent = String(beta);
    this.alpha0.setAttribute('aria-valuetext', `α0 = ${alpha0}`);
    this.beta.setAttribute('aria-valuetext', `β = ${beta}`);
    this.pg?.free();
    this.pg = new Playground(this.objective.value, alpha0, beta);
    this.view = Array.from(this.pg.view());
    this.contours = null;
    this.draw();
  }

  start() {
    this.play.textContent = 'Pause';
    this.play.setAttribute('aria-pressed', 'true');
    let last = performance.now();
    const tick = (now) => {
      if (now - last >= 1000 / RATE) {
        last = now;
        if (!this.step()) return this.pause();
      }
      this.timer = requestAnimationFrame(tick);
      return undefined;
    };
    this.timer = requestAnimationFrame(tick);
  }

  pause() {
    if (this.timer) cancelAnimationFrame(this.timer);
    this.timer = null;
    this.play.textContent = 'Play';
    this.play.setAttribute('aria-pressed', 'false');
  }

  /** One step of both walkers; false when there is nothing left to do. */
  step() {
    if (!this.pg || this.pg.steps(1) >= MAX_STEPS || (this.pg.diverged(0) && this.pg.diverged(1))) return false;
    this.pg.step();
    this.draw();
    return true;
  }

  /** Plane → canvas pixels. */
  toPixel([x, y]) {
    const [x0, x1, y0, y1] = this.view;
    return [((x - x0) / (x1 - x0)) * this.canvas.width, ((y1 - y) / (y1 - y0)) * this.canvas.height];
  }

  /** Bands of log f, alternating shades: contour lines without tracing them. */
  drawContours() {
    const { width, height } = this.canvas;
    const [cols, rows] = [Math.round(width / 4), Math.round(height / 4)];
    if (!this.contours) {
      const f = this.pg.grid(cols, rows);
      const img = new ImageData(cols, rows);
      for (let i = 0; i < f.length; i++) {
        const band = Math.floor(Math.log10(f[i] + 1e-6) * 4);
        const level = Math.max(0, Math.min(1, (Math.log10(f[i] + 1e-6) + 2) / 6));
        const shade = 250 - level * 70 - (band % 2 === 0 ? 0 : 12);
        img.data.set([shade, shade + 3, 255 - level * 40, 255], i * 4);
      }
      const off = new OffscreenCanvas(cols, rows);
      off.getContext('2d').putImageData(img, 0, 0);
      this.contours = off;
    }
    this.ctx.imageSmoothingEnabled = true;
    this.ctx.drawImage(this.contours, 0, 0, width, height);
  }

  drawPath(path, colour, dash) {
    const c = this.ctx;
    c.save();
    c.strokeStyle = colour;
    c.lineWidth = 2;
    c.setLineDash(dash);
    c.beginPath();
    for (let i = 0; i < path.length; i += 2) {
      const [px, py] = this.toPixel([path[i], path[i + 1]]);
      if (i === 0) c.moveTo(px, py);
      else c.lineTo(px, py);
    }
    c.stroke();
    c.restore();
  }

  /** A filled circle with an outline. */
  dot(at, fill, line, radius) {
    const c = this.ctx;
    const [x, y] = this.toPixel(at);
    c.save();
    c.fillStyle = fill;
    c.strokeStyle = line;
    c.lineWidth = 2;
    c.beginPath();
    c.arc(x, y, radius, 0, 2 * Math.PI);
    c.fill();
    c.stroke();
    c.restore();
  }

  /** An arrow from `at` along −g (the way the step goes), scaled to a readable length. */
  arrow(at, g, colour, scale) {
    const len = Math.hypot(g[0], g[1]);
    if (len === 0) return;
    const c = this.ctx;
    const [ax, ay] = this.toPixel(at);
    const [dx, dy] = [(-g[0] / len) * scale * Math.min(1, 0.3 + len / (len + 10)), (g[1] / len) * scale * Math.min(1, 0.3 + len / (len + 10))];
    const [bx, by] = [ax + dx, ay + dy];
    c.save();
    c.strokeStyle = colour;
    c.fillStyle = colour;
    c.lineWidth = 2.5;
    c.beginPath();
    c.moveTo(ax, ay);
    c.lineTo(bx, by);
    c.stroke();
    const angle = Math.atan2(dy, dx);
    c.beginPath();
    c.moveTo(bx, by);
    c.lineTo(bx - 10 * Math.cos(angle - 0.4), by - 10 * Math.sin(angle - 0.4));
    c.lineTo(bx - 10 * Math.cos(angle + 0.4), by - 10 * Math.sin(angle + 0.4));
    c.closePath();
    c.fill();
    c.restore();
  }

  draw() {
    if (!this.pg) return;
    this.drawContours();
    const sgd = this.pg.path(0);
    const hd = this.pg.path(1);
    this.drawPath(sgd, COLOURS.sgd, [6, 4]);
    this.drawPath(hd, COLOURS.hd, []);
    const here = [hd[hd.length - 2], hd[hd.length - 1]];
    this.dot([hd[0], hd[1]], '#fff', COLOURS.now, 6);
    this.dot(Array.from(this.pg.minimum()), '#1a7f37', '#fff', 6);
    this.dot([sgd[sgd.length - 2], sgd[sgd.length - 1]], COLOURS.sgd, '#fff', 5);
    this.dot(here, COLOURS.hd, '#fff', 5);
    const g = this.pg.gradients(1);
    // The gradient the last step used (g_t) and the one before (g_{t−1}), from the point
    // the last step started at; drawn as the directions the steps went, −g.
    const from = hd.length >= 4 ? [hd[hd.length - 4], hd[hd.length - 3]] : here;
    const t = this.pg.steps(1);
    if (t >= 2) this.arrow(from, [g[2], g[3]], COLOURS.before, 60);
    if (t >= 1) this.arrow(from, [g[0], g[1]], COLOURS.now, 60);
    this.canvas.dataset.steps = String(t);
    this.canvas.dataset.pathHd = Array.from(hd, (v) => v.toPrecision(7)).join(',');
    this.canvas.dataset.pathSgd = Array.from(sgd, (v) => v.toPrecision(7)).join(',');
    this.canvas.setAttribute('aria-label', `Contours of the objective. After ${t} steps SGD-HD is at (${n3(here[0])}, ${n3(here[1])}) with f = ${n3(this.pg.value(1))}; SGD at (${n3(sgd[sgd.length - 2])}, ${n3(sgd[sgd.length - 1])}) with f = ${n3(this.pg.value(0))}.`);
    this.writeRule(t, g);
  }

  writeRule(t, g) {
    const { beta } = this.settings();
    const pg = this.pg;
    const rule = $('pg-rule');
    const hdState = pg.diverged(1) ? ' (diverged: it left the plane)' : '';
    const sgdState = pg.diverged(0) ? ' (diverged)' : '';
    rule.innerHTML = `<p><strong>Step t = <span id="pg-t">${t}</span></strong></p>
      <p>SGD-HD${hdState}: α<sub>t</sub> = α<sub>t−1</sub> + β g<sub>t</sub>·g<sub>t−1</sub><br>
      = ${n3(pg.previousAlpha(1))} + ${n3(beta)} × (${n3(pg.dot(1))})<br>
      = <strong id="pg-alpha">${n3(pg.alpha(1))}</strong></p>
      <p>g<sub>t</sub> = (${n3(g[0])}, ${n3(g[1])})<br>g<sub>t−1</sub> = (${n3(g[2])}, ${n3(g[3])})<br>
      θ<sub>t</sub> = θ<sub>t−1</sub> − α<sub>t</sub> g<sub>t</sub></p>
      <p>${pg.dot(1) > 0 ? 'The two gradients agree: α grows.' : pg.dot(1) < 0 ? 'The two gradients disagree: α shrinks.' : 'No previous gradient yet: α stays.'}</p>
      <p>f: SGD-HD <span id="pg-f-hd">${n3(pg.value(1))}</span> · SGD <span id="pg-f-sgd">${n3(pg.value(0))}</span>${sgdState} (α fixed at ${n3(pg.alpha(0))})</p>`;
  }
}
