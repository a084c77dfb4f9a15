// Browser tests (scripts/test-web.sh runs them). Debian's chromium, driven by Playwright; no
// browser download. Projects: chromium-wasm (no WebGPU adapter: the CPU engine, and `auto`
// must fall back to it) and chromium-webgpu (`--enable-unsafe-webgpu`: SwiftShader's adapter,
// no shader-f16, 256 invocations per workgroup; slow, so its prompts are short), and
// chromium-remote (the demo's server mode: only where scripts/test-clients.sh has started a
// realm-server and set REALM_TEST_URL).
import { defineConfig } from '@playwright/test';
import { chromiumArgs, executablePath, webgpuArg } from './tests/e2e/chromium.mjs';

const port = Number(process.env.REALM_E2E_PORT ?? 8173);

export default defineConfig({
  testDir: 'tests/e2e',
  timeout: 300_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: true,
  reporter: [['list']],
  webServer: {
    command: `node tests/e2e/server.mjs ${port}`,
    url: `http://127.0.0.1:${port}/`,
    reuseExistingServer: false,
    stdout: 'pipe',
    timeout: 30_000,
  },
  use: {
    baseURL: `http://127.0.0.1:${port}/`,
    browserName: 'chromium',
  },
  projects: [
    {
      name: 'chromium-wasm',
      testIgnore: /(webgpu|remote)\.spec\.ts/,
      use: { launchOptions: { executablePath, args: chromiumArgs } },
    },
    {
      name: 'chromium-webgpu',
      testMatch: /webgpu\.spec\.ts/,
      use: { launchOptions: { executablePath, args: [...chromiumArgs, webgpuArg] } },
    },
    ...(process.env.REALM_TEST_URL
      ? [
          {
            name: 'chromium-remote',
            testMatch: /remote\.spec\.ts/,
            use: { launchOptions: { executablePath, args: chromiumArgs } },
          },
        ]
      : []),
  ],
});
