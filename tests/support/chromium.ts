import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { CHROMIUM_PATH } from './optional-backends.ts';

export { CHROMIUM_PATH };

/** Browser tests run in Debian's Chromium, never a downloaded one; without it they skip themselves. */
export const hasChromium = existsSync(CHROMIUM_PATH);

/**
 * Headless Chromium as this machine can run it: no sandbox (tests run as root), and nothing that
 * calls out to Google's hosts, which the closed network refuses many at a time.
 */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}
