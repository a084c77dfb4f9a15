// realm-web on the WebGPU engine in headless Chromium (`--enable-unsafe-webgpu`: SwiftShader,
// no shader-f16, about 0.2 GFLOP/s, so prompts are short and answers a few tokens): the same
// public API, greedy SmolLM2 against llama.cpp's ids, the backend choice reported, abort.
import { expect, test, type Page } from '@playwright/test';
import { MODEL, byName, robustPrefix } from './oracle.js';

test.describe.configure({ mode: 'serial' });
let page: Page;

test.beforeAll(async ({ browser }) => {
  page = await browser.newPage();
  page.on('console', (m) => console.log(`[page] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
  await page.goto('/');
  await page.waitForFunction(() => window.realm !== undefined);
});

test.afterAll(async () => {
  await page.close();
});

test('auto picks WebGPU where the browser has an adapter, and says so', async () => {
  const t0 = Date.now();
  const got = await page.evaluate(async (url) => {
    const phases = new Set<string>();
    let uploaded = 0;
    window.engine = await window.realm.createEngine({
      model: url,
      device: 'auto',
      onProgress: (p) => {
        phases.add(p.phase);
        if (p.phase === 'upload') uploaded = Math.max(uploaded, p.loaded);
      },
    });
    return { info: await window.engine.info(), phases: [...phases], uploaded };
  }, MODEL);
  console.log(`webgpu load ${Date.now() - t0} ms: ${JSON.stringify(got)}`);
  expect(got.phases).toEqual(['compile', 'download', 'upload']);
  expect(got.uploaded).toBeGreaterThan(50_000_000);
  expect(got.info).toMatchObject({ backend: 'webgpu', requested: 'auto', abortMidAnswer: true });
  expect(got.info.reason).toContain('WebGPU adapter');
  expect(got.info.engine).toMatchObject({ backend: 'wgpu', architecture: 'llama', build: { target: 'wasm32' } });
  // SwiftShader has no shader-f16: the f32 path runs, and the report says why.
  const details = (got.info.engine.details as string[]).join('\n');
  expect(details).toContain('shader-f16');
});

test('greedy generation on the GPU matches llama.cpp over the robust prefix', async () => {
  // A one-token prompt (decode only) and the chat prompt (a 42-token prefill through the tiled
  // matmul and prefill attention).
  for (const name of ['empty_ish_single_space', 'chat_template']) {
    const p = byName(name);
    const want = robustPrefix(p);
    expect(want.length, name).toBeGreaterThan(0);
    const t0 = Date.now();
    const res = await page.evaluate(
      ([prompt, n]) => window.engine.completions.create({ prompt, temperature: 0, max_tokens: n }),
      [p.prompt_tokens, want.length + 1] as const,
    );
    console.log(`${name}: ${p.prompt_tokens.length} prompt tokens, ${Date.now() - t0} ms, ${JSON.stringify(res.choices[0].text)}`);
    expect(res.choices[0].token_ids.slice(0, want.length), name).toEqual(want);
    expect(res.usage.prompt_tokens).toBe(p.prompt_tokens.length);
  }
});

test("abort stops a GPU stream; device 'webgpu' loads; 'wasm' still gives the CPU engine", async () => {
  const aborted = await page.evaluate(async () => {
    const ac = new AbortController();
    const stream = await window.engine.completions.create({
      prompt: [1],
      stream: true,
      max_tokens: 200,
      temperature: 0,
      signal: ac.signal,
    });
    let chunks = 0;
    try {
      for await (const _ of stream) if (++chunks === 2) ac.abort();
      return { code: 'none', chunks };
    } catch (e) {
      return { code: (e as { code?: string }).code, chunks };
    }
  });
  expect(aborted).toEqual({ code: 'aborted', chunks: 2 });
  // The Worker sees the abort at its next readback, so at most the decode step in flight
  // finishes first: about 8 s on SwiftShader, 11.5 s seen on a busy CI machine. The 198 tokens
  // left would take half an hour, so a minute still proves the answer stopped mid-way.
  const t0 = Date.now();
  expect((await page.evaluate(() => window.engine.tokenize('still here'))).length).toBeGreaterThan(0);
  expect(Date.now() - t0).toBeLessThan(60_000);
  await page.evaluate(() => window.engine.unload());

  const explicit = await page.evaluate(async (url) => {
    const e = await window.realm.createEngine({ model: url, device: 'webgpu' });
    const info = await e.info();
    await e.unload();
    const cpu = await window.realm.createEngine({ model: url, device: 'wasm' });
    const cpuInfo = await cpu.info();
    await cpu.unload();
    return { gpu: [info.backend, info.reason], cpu: [cpuInfo.backend, cpuInfo.reason] };
  }, MODEL);
  expect(explicit).toEqual({
    gpu: ['webgpu', "device 'webgpu' was requested"],
    cpu: ['wasm', "device 'wasm' was requested"],
  });
});
