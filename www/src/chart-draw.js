// Drawing one line chart on a 2-D canvas: grid, tick labels, axis titles, lines and points.
// Used by the chart worker (chart-worker.js) on the canvases the page hands it.
import { fraction, formatNumber, plotBox, ticks } from './axes.js';

/** One font for all text: the canvas parses a font string only when it changes. */
const FONT = '12px system-ui, sans-serif';
const TEXT = '#1f2328';
const GRID = 'rgba(0, 0, 0, 0.08)';
const ZERO = '#57606a';

/** Tick label of value `v` on axis `axis` ({ log, percent, exp }): powers of ten on a log axis
 * as 1e-4 rather than 1.00e-4. */
function label(v, axis) {
  if (axis.percent) return `${Math.round(v * 100)} %`;
  if (axis.log && (axis.exp || Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5)) return v.toExponential(0);
  return formatNumber(v);
}

/**
 * Draws one chart. `frame`: { x, y, right, xs, lines, points, zero } with x and y scales
 * { min, max, log, label, percent?, exp?, integer? }, `right` an optional second y scale
 * { min, max, label }, `xs` the x values and `lines` [{ ys, stroke, width, dash, right, show }]
 * (NaN in `ys` is a gap).
 */
export function draw(canvas, { width, height, dpr, frame }) {
  const [w, h] = [Math.round(width * dpr), Math.round(height * dpr)];
  if (canvas.width !== w || canvas.height !== h) [canvas.width, canvas.height] = [w, h];
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  if (!frame) return;
  const { x, y, right } = frame;
  const box = plotBox(width, height, Boolean(right));
  const px = (v) => box.left + fraction(v, x) * box.width;
  const py = (v, scale) => box.top + (1 - fraction(v, scale)) * box.height;

  ctx.font = FONT;
  ctx.fillStyle = TEXT;
  ctx.lineWidth = 1;
  // The grid and the tick labels.
  ctx.strokeStyle = GRID;
  ctx.beginPath();
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (const v of ticks(x, box.width, 70)) {
    const p = Math.round(px(v)) + 0.5;
    ctx.moveTo(p, box.top);
    ctx.lineTo(p, box.top + box.height + 4);
    ctx.fillText(label(v, x), p, box.top + box.height + 7);
  }
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const v of ticks(y, box.height, 36)) {
    const p = Math.round(py(v, y)) + 0.5;
    ctx.moveTo(box.left - 4, p);
    ctx.lineTo(box.left + box.width, p);
    ctx.fillText(label(v, y), box.left - 7, p);
  }
  ctx.stroke();
  if (right) {
    ctx.textAlign = 'left';
    for (const v of ticks(right, box.height, 36)) ctx.fillText(label(v, right), box.left + box.width + 7, py(v, right));
  }
  // Axis titles.
  ctx.textAlign = 'center';
  ctx.textBaseline = 'bottom';
  ctx.fillText(x.label, box.left + box.width / 2, height - 4);
  const vertical = (text, at) => {
    ctx.save();
    ctx.translate(at, box.top + box.height / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = 'middle';
    ctx.fillText(text, 0, 0);
    ctx.restore();
  };
  vertical(y.label, 12);
  if (right) vertical(right.label, width - 10);

  ctx.save();
  ctx.beginPath();
  ctx.rect(box.left, box.top, box.width, box.height);
  ctx.clip();
  if (frame.zero) {
    const p = Math.round(py(0, y)) + 0.5;
    ctx.strokeStyle = ZERO;
    ctx.setLineDash([]);
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(box.left, p);
    ctx.lineTo(box.left + box.width, p);
    ctx.stroke();
  }
  ctx.lineJoin = 'round';
  const points = [];
  for (const line of frame.lines) {
    if (!line.show) continue;
    const scale = line.right ? right : y;
    ctx.strokeStyle = line.stroke;
    ctx.lineWidth = line.width;
    ctx.setLineDash(line.dash ?? []);
    ctx.beginPath();
    let pen = false;
    const dots = [];
    for (let i = 0; i < frame.xs.length; i++) {
      const [a, b] = [px(frame.xs[i]), py(line.ys[i], scale)];
      if (!Number.isFinite(a) || !Number.isFinite(b)) {
        pen = false; // a gap
        continue;
      }
      if (pen) ctx.lineTo(a, b);
      else ctx.moveTo(a, b);
      pen = true;
      if (frame.points) dots.push(a, b);
    }
    ctx.stroke();
    if (dots.length > 0) points.push({ stroke: line.stroke, dots });
  }
  ctx.restore();
  // Points unclipped: the first and last epoch lie on the plot's edges.
  ctx.setLineDash([]);
  ctx.fillStyle = '#fff';
  ctx.lineWidth = 1.5;
  for (const { stroke, dots } of points) {
    ctx.strokeStyle = stroke;
    for (let i = 0; i < dots.length; i += 2) {
      ctx.beginPath();
      ctx.arc(dots[i], dots[i + 1], 3, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
    }
  }
}
