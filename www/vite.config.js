import { resolve } from 'node:path';
import { defineConfig } from 'vite';

// Relative asset paths, so the built site works from any directory of any static host.
export default defineConfig({
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // The wasm module and the digits are fetched, never inlined into JavaScript.
    assetsInlineLimit: 0,
    rollupOptions: {
      input: {
        main: resolve(import.meta.dirname, 'index.html'),
        bench: resolve(import.meta.dirname, 'bench.html'),
      },
    },
  },
  worker: { format: 'es' },
});
