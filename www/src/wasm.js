// hd-wasm on the page's own thread (the training runs in the worker's copy): one
// initialisation shared by everything here, since initialising the module twice would give
// two instances whose objects must not mix.
import init from '../pkg/hd_wasm.js';

const wasmUrl = new URL('../pkg/hd_wasm_bg.wasm', import.meta.url);

/** Resolves once hd-wasm's functions and classes can be used on this thread. */
export const wasmReady = init({ module_or_path: wasmUrl });
