// Debian's Chromium under playwright-core: Playwright cannot download its own browsers here,
// and needs none. HD_CHROMIUM overrides the path.
import { setPriority } from 'node:os';
import { chromium } from 'playwright-core';

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launch() {
  return chromium.launch({
    executablePath: process.env.HD_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_FLAGS,
  });
}

/** The demo's base URL (served by `cargo xtask`), ending in a slash. */
export function baseUrl() {
  const url = process.env.HD_DEMO_URL;
  if (!url) throw new Error('set HD_DEMO_URL to the served demo (cargo xtask test does)');
  return url.endsWith('/') ? url : `${url}/`;
}

/**
 * Runs this process, and the browser it launches next, ahead of the machine's background work
 * (a nice value of −10, where the system permits it): timings then measure the page on the
 * emulated device rather than the other programs sharing the cores. Returns whether it could.
 */
export function foreground() {
  try {
    setPriority(-10);
    return true;
  } catch {
    return false;
  }
}
