// Images in and out of the model: a hand-drawn digit prepared the way MNIST's were, and the
// learned weights drawn as ten 28×28 pictures.

const SIZE = 28;
/** MNIST digits were scaled to fit a 20×20 box, then centred by centre of mass in 28×28. */
const BOX = 20;

function canvas(w, h) {
  const c = new OffscreenCanvas(w, h);
  return [c, c.getContext('2d', { willReadFrequently: true })];
}

/**
 * Turns the drawing pad's pixels (white ink on black) into 784 grey levels in [0, 1] as MNIST
 * prepared its digits (LeCun et al.): the ink's bounding box scaled into a 20×20 box, then
 * shifted so its centre of mass sits at the centre of the 28×28 image. Null when there is no ink.
 */
export function preprocess(image) {
  const { width, height, data } = image;
  let [x0, y0, x1, y1] = [width, height, -1, -1];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (data[(y * width + x) * 4] > 32) {
        x0 = Math.min(x0, x);
        x1 = Math.max(x1, x);
        y0 = Math.min(y0, y);
        y1 = Math.max(y1, y);
      }
    }
  }
  if (x1 < 0) return null;
  const [w, h] = [x1 - x0 + 1, y1 - y0 + 1];
  const scale = BOX / Math.max(w, h);
  const [src, srcCtx] = canvas(width, height);
  srcCtx.putImageData(image, 0, 0);

  // Pass 1: scale into the box, centred by the bounding box, to find the centre of mass.
  const [small, smallCtx] = canvas(SIZE, SIZE);
  const place = (dx, dy) => {
    smallCtx.fillStyle = '#000';
    smallCtx.fillRect(0, 0, SIZE, SIZE);
    smallCtx.imageSmoothingQuality = 'high';
    smallCtx.drawImage(src, x0, y0, w, h, dx + (SIZE - w * scale) / 2, dy + (SIZE - h * scale) / 2, w * scale, h * scale);
    return smallCtx.getImageData(0, 0, SIZE, SIZE).data;
  };
  let px = place(0, 0);
  let [mass, mx, my] = [0, 0, 0];
  for (let i = 0; i < SIZE * SIZE; i++) {
    const v = px[i * 4];
    mass += v;
    mx += v * (i % SIZE);
    my += v * Math.floor(i / SIZE);
  }
  // Pass 2: shift so the centre of mass lands on the image centre.
  if (mass > 0) px = place((SIZE - 1) / 2 - mx / mass, (SIZE - 1) / 2 - my / mass);
  const out = new Float32Array(SIZE * SIZE);
  for (let i = 0; i < out.length; i++) out[i] = px[i * 4] / 255;
  return out;
}

/** One image buffer for the ten weight images, reused by every redraw. */
let weightImage = null;

/**
 * Draws 10 rows of 784 weights as ten small images in `container`: red positive, blue
 * negative, each digit scaled by its own largest |w| so every template is visible.
 */
export function drawWeights(container, weights) {
  if (container.children.length !== 10) {
    container.replaceChildren(
      ...Array.from({ length: 10 }, (_, k) => {
        const fig = document.createElement('div');
        const c = document.createElement('canvas');
        c.width = SIZE;
        c.height = SIZE;
        c.setAttribute('aria-label', `weights of digit ${k}`);
        const label = document.createElement('span');
        label.textContent = String(k);
        fig.append(c, label);
        return fig;
      }),
    );
  }
  weightImage ??= new ImageData(SIZE, SIZE);
  const img = weightImage;
  [...container.children].forEach((fig, k) => {
    const row = weights.subarray(k * SIZE * SIZE, (k + 1) * SIZE * SIZE);
    let max = 0;
    for (const w of row) if (Number.isFinite(w)) max = Math.max(max, Math.abs(w));
    const ctx = fig.firstChild.getContext('2d');
    for (let i = 0; i < row.length; i++) {
      const t = max > 0 && Number.isFinite(row[i]) ? row[i] / max : 0;
      // White at 0, towards red (positive) or blue (negative).
      const fade = Math.round(255 * (1 - Math.abs(t)));
      img.data[i * 4] = t >= 0 ? 255 : fade;
      img.data[i * 4 + 1] = fade;
      img.data[i * 4 + 2] = t <= 0 ? 255 : fade;
      img.data[i * 4 + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  });
}
