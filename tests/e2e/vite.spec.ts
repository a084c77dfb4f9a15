// realm-web as an npm user gets it: `npm pack`, installed into a plain Vite app (tests/vite-app),
// `vite build`, served at /vite-app/ (scripts/test-vite-app.sh builds it; beforeAll here runs
// it unless that script already did). The bundled app must load its own copies of the engine's
// Worker, wasm and thread Workers, and answer with llama.cpp's greedy tokens.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, test } from '@playwright/test';
import { MODEL, byName, robustPrefix } from './oracle.js';

interface AppResult {
  ok: boolean;
  ids?: number[];
  text?: string;
  promptTokens?: number;
  info?: { backend: string; variant: string };
  code?: string | null;
  message?: string;
}
declare global {
  interface Window {
    realmApp?: AppResult;
  }
}

test.describe.configure({ mode: 'serial' });

test.beforeAll(async () => {
  if (process.env.REALM_VITE_APP_BUILT === '1') return;
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const t0 = Date.now();
  const r = spawnSync('bash', ['scripts/test-vite-app.sh', '--build-only'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) {
    console.log(`${r.stdout ?? ''}${r.stderr ?? ''}`.slice(-6000));
    throw new Error(`scripts/test-vite-app.sh --build-only failed (${r.status ?? r.signal})`);
  }
  console.log(`vite app packed, installed and built in ${Date.now() - t0} ms`);
});

for (const threads of [1, 2]) {
  test(`the Vite-built app answers greedily as llama.cpp (${threads} thread${threads > 1 ? 's' : ''})`, async ({
    page,
    request,
  }) => {
    page.on('console', (m) => console.log(`[page] ${m.text()}`));
    page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
    const p = byName('chat_template');
    const want = robustPrefix(p);
    expect(want.length).toBeGreaterThan(3);
    const before = ((await (await request.get('/__requests')).json()) as unknown[]).length;

    const query = new URLSearchParams({
      model: MODEL,
      prompt: p.text,
      max_tokens: String(want.length + 2),
      threads: String(threads),
    });
    const t0 = Date.now();
    await page.goto(`/vite-app/?${query}`);
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    await page.waitForFunction(() => window.realmApp !== undefined, null, { timeout: 240_000 });
    const got = (await page.evaluate(() => window.realmApp)) as AppResult;
    console.log(`vite app, ${threads} thread(s): ${Date.now() - t0} ms, ${JSON.stringify(got.text)}; ${got.info?.variant}`);
    expect(got.ok, got.message).toBe(true);
    expect(got.ids?.slice(0, want.length)).toEqual(want);
    expect(got.promptTokens).toBe(p.prompt_tokens.length);
    expect(got.info?.backend).toBe('wasm');
    // No silent fallback: the threads build (its glue, its wasm, the thread Workers) ran.
    expect(got.info?.variant).toContain(threads > 1 ? `threads (${threads})` : '1 thread');

    // Everything the app ran came from its own build, none from the package the other specs use.
    const log = (await (await request.get('/__requests')).json()) as { path: string; status: number }[];
    const paths = log.slice(before).map((e) => e.path);
    expect(paths.filter((q) => q.startsWith('/realm-web/'))).toEqual([]);
    const mine = log.slice(before).filter((e) => /^\/(vite-app|models)\//.test(e.path));
    expect(mine.filter((e) => e.status >= 400)).toEqual([]);
    const assets = paths.filter((q) => q.startsWith('/vite-app/assets/'));
    expect(assets.some((q) => /\/worker-[\w-]+\.js$/.test(q)), assets.join(' ')).toBe(true);
    expect(assets.some((q) => /\/realm_wasm_bg-[\w-]+\.wasm$/.test(q)), assets.join(' ')).toBe(true);
    if (threads > 1) expect(assets.some((q) => /\/thread-[\w-]+\.js$/.test(q)), assets.join(' ')).toBe(true);
  });
}
