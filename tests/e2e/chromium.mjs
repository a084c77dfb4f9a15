// How the browser tests (playwright.config.ts) and the browser benchmark (scripts/bench-web.mjs)
// launch Debian's chromium: no browser download, no background traffic, no QUIC.
export const executablePath = process.env.REALM_CHROMIUM ?? '/usr/bin/chromium';

export const chromiumArgs = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** Gives pages a WebGPU adapter (SwiftShader where there is no GPU). */
export const webgpuArg = '--enable-unsafe-webgpu';
