// The chart painter: every line chart's canvas is handed to this worker
// (`transferControlToOffscreen`), which draws the axes, grid and lines there. The browser shows
// what it draws without the page's main thread: a redraw of nine long lines costs that thread
// nothing, however slow the device, and the page's own work (text, layout) stays short.
//
// Messages in: {op: 'add', id, canvas}, {op: 'draw', id, width, height, dpr, frame} (frame: see
// chart-draw.js). A chart's newer frame replaces one not yet drawn.
import { draw } from './chart-draw.js';

const canvases = new Map();
const waiting = new Map();
let requested = false;

const nextFrame = typeof requestAnimationFrame === 'function' ? requestAnimationFrame : (f) => setTimeout(f, 16);

onmessage = ({ data }) => {
  if (data.op === 'add') {
    canvases.set(data.id, data.canvas);
  } else if (data.op === 'draw') {
    waiting.set(data.id, data);
    if (!requested) {
      requested = true;
      nextFrame(flush);
    }
  }
};

function flush() {
  requested = false;
  for (const [id, msg] of waiting) {
    const canvas = canvases.get(id);
    if (canvas) draw(canvas, msg);
  }
  waiting.clear();
}

