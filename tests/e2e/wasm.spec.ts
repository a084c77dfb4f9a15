// realm-web on the WebAssembly engine in headless Chromium, through the package's public API:
// greedy SmolLM2 against llama.cpp's ids (tests/fixtures/oracle), typed errors, abort.
import { expect, test, type Page } from '@playwright/test';
import { MODEL, byName, prompts, robustPrefix } from './oracle.js';
import type { CreateEngineOptions } from '../../npm/realm-web/dist/index.js';

test.describe.configure({ mode: 'serial' });
let page: Page;

test.beforeAll(async ({ browser }) => {
  page = await browser.newPage();
  page.on('console', (m) => console.log(`[page] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
  await page.goto('/');
  await page.waitForFunction(() => window.realm !== undefined);
  expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
});

test.afterAll(async () => {
  await page.close();
});

test('a non-GGUF file is a RealmError invalid-model, and the page stays usable', async () => {
  const err = await page.evaluate(async () => {
    const bytes = new TextEncoder().encode('<!doctype html> this is not a model');
    try {
      await window.realm.createEngine({ model: new Blob([bytes]), device: 'wasm' });
      return null;
    } catch (e) {
      const r = e as InstanceType<typeof window.realm.RealmError>;
      return { realm: e instanceof window.realm.RealmError, name: r.name, code: r.code, message: r.message };
    }
  });
  expect(err).toMatchObject({ realm: true, name: 'RealmError', code: 'invalid-model' });
  console.log(`invalid model: ${err?.message}`);

  const missing = await page.evaluate(async () => {
    try {
      await window.realm.createEngine({ model: '/models/does-not-exist.gguf' });
      return null;
    } catch (e) {
      return (e as { code?: string }).code;
    }
  });
  expect(missing).toBe('network');

  // The same page then loads the real model.
  const t0 = Date.now();
  const info = await page.evaluate(async (url) => {
    const phases = new Set<string>();
    window.engine = await window.realm.createEngine({
      model: url,
      device: 'auto',
      onProgress: (p) => phases.add(p.phase),
    });
    return { info: await window.engine.info(), phases: [...phases] };
  }, MODEL);
  console.log(`model loaded in ${Date.now() - t0} ms: ${JSON.stringify(info)}`);
  expect(info.phases).toEqual(['compile', 'download', 'load']);
  expect(info.info.backend).toBe('wasm');
  expect(info.info.requested).toBe('auto');
  expect(info.info.reason).toContain('WebGPU');
  expect(info.info.abortMidAnswer).toBe(true);
  expect(info.info.engine).toMatchObject({ architecture: 'llama', build: { target: 'wasm32', simd128: true } });
});

test('tokenize matches llama.cpp on every oracle prompt; detokenize inverts it', async () => {
  for (const p of prompts) {
    const ids = await page.evaluate((text) => window.engine.tokenize(text, { special: true }), p.text);
    expect(ids, p.name).toEqual(p.prompt_tokens);
  }
  const p = byName('plain_english');
  const text = await page.evaluate((ids) => window.engine.detokenize(ids), p.prompt_tokens);
  expect(text).toBe(p.text);
});

test('greedy chat (stream) matches llama.cpp over the robust prefix', async () => {
  const p = byName('chat_template');
  const want = robustPrefix(p);
  expect(want.length).toBeGreaterThan(3);
  // The oracle's prompt is SmolLM2's template over this conversation.
  const system = 'You are a helpful AI assistant named SmolLM, trained by Hugging Face';
  const user = 'What is the capital of France? Answer in one sentence.';
  expect(p.text).toContain(system);
  const t0 = Date.now();
  const got = await page.evaluate(async ([system, user, n]) => {
    const stream = await window.engine.chat.completions.create({
      messages: [
        { role: 'system', content: system },
        { role: 'user', content: user },
      ],
      stream: true,
      temperature: 0,
      max_tokens: n,
    });
    const ids: number[] = [];
    let text = '';
    let last = null;
    for await (const chunk of stream) {
      ids.push(...chunk.choices[0].token_ids);
      text += chunk.choices[0].delta.content ?? '';
      last = chunk;
    }
    return { ids, text, last };
  }, [system, user, want.length + 2] as const);
  console.log(`chat: ${Date.now() - t0} ms, ${JSON.stringify(got.text)}`);
  expect(got.ids.slice(0, want.length)).toEqual(want);
  expect(got.last?.object).toBe('chat.completion.chunk');
  expect(got.last?.choices[0].finish_reason).not.toBeNull();
  expect(got.last?.usage?.prompt_tokens).toBe(p.prompt_tokens.length);
});

test("a conversation's next turn reuses the previous turn's KV cache (usage.prompt_tokens_details)", async () => {
  const got = await page.evaluate(async () => {
    const messages = [{ role: 'user', content: 'Name a color.' }];
    const first = await window.engine.chat.completions.create({ messages, temperature: 0, max_tokens: 8 });
    messages.push(first.choices[0].message, { role: 'user', content: 'And another one?' });
    const second = await window.engine.chat.completions.create({ messages, temperature: 0, max_tokens: 8 });
    return { first: first.usage, second: second.usage, text: second.choices[0].message.content };
  });
  console.log(`second turn: ${JSON.stringify(got)}`);
  // The first turn's prompt (and usually its answer) is in the cache when the second starts.
  expect(got.second.prompt_tokens_details.cached_tokens).toBeGreaterThanOrEqual(got.first.prompt_tokens - 1);
  expect(got.second.prompt_tokens_details.cached_tokens).toBeLessThan(got.second.prompt_tokens);
  expect(got.text.length).toBeGreaterThan(0);
});

test('greedy text completions match llama.cpp over the robust prefix', async () => {
  for (const name of ['empty_ish_single_space', 'long_paragraph']) {
    const p = byName(name);
    const want = robustPrefix(p);
    expect(want.length, name).toBeGreaterThan(0);
    const t0 = Date.now();
    const res = await page.evaluate(
      ([prompt, n]) => window.engine.completions.create({ prompt, temperature: 0, max_tokens: n }),
      [p.text, want.length + 2] as const,
    );
    console.log(`${name}: ${p.prompt_tokens.length} prompt tokens, ${Date.now() - t0} ms`);
    expect(res.choices[0].token_ids.slice(0, want.length), name).toEqual(want);
    expect(res.usage.prompt_tokens).toBe(p.prompt_tokens.length);
    expect(res.choices[0].finish_reason).toBe('length');
  }
});

test('non-streamed chat is one OpenAI-shaped response; abort ends a stream with RealmError aborted', async () => {
  const res = await page.evaluate(() =>
    window.engine.chat.completions.create({
      messages: [{ role: 'user', content: 'Say hi.' }],
      max_tokens: 4,
      temperature: 0.7,
      seed: 42,
    }),
  );
  expect(res.object).toBe('chat.completion');
  expect(res.choices[0].message.role).toBe('assistant');
  expect(res.usage.completion_tokens).toBeLessThanOrEqual(4);
  expect(res.usage.total_tokens).toBe(res.usage.prompt_tokens + res.usage.completion_tokens);

  const aborted = await page.evaluate(async () => {
    const ac = new AbortController();
    const stream = await window.engine.completions.create({
      prompt: 'Once upon a time',
      stream: true,
      max_tokens: 500,
      temperature: 0,
      signal: ac.signal,
    });
    let chunks = 0;
    const t0 = performance.now();
    try {
      for await (const _ of stream) {
        if (++chunks === 3) ac.abort();
      }
      return { code: 'none', chunks };
    } catch (e) {
      return { code: (e as { code?: string }).code, chunks, ms: performance.now() - t0 };
    }
  });
  expect(aborted.code).toBe('aborted');
  expect(aborted.chunks).toBe(3);

  // The engine answers again at once: the Worker stopped the aborted answer mid-way.
  const t0 = Date.now();
  const after = await page.evaluate(() => window.engine.tokenize('still here'));
  expect(after.length).toBeGreaterThan(0);
  expect(Date.now() - t0).toBeLessThan(5_000);

  // Leaving the loop early stops the answer too.
  const broke = await page.evaluate(async () => {
    const stream = await window.engine.completions.create({ prompt: 'Once upon a time', stream: true, max_tokens: 500 });
    let chunks = 0;
    for await (const _ of stream) if (++chunks === 2) break;
    const t0 = performance.now();
    await window.engine.tokenize('after break');
    return { chunks, ms: performance.now() - t0 };
  });
  expect(broke.chunks).toBe(2);
  expect(broke.ms).toBeLessThan(5_000);

  const bad = await page.evaluate(async () => {
    try {
      await window.engine.completions.create({ prompt: 'x', temperature: -1 });
      return null;
    } catch (e) {
      return (e as { code?: string }).code;
    }
  });
  expect(bad).toBe('invalid-argument');
});

/** The greedy answer to the chat_template oracle prompt (its robust-prefix length) from a
 * fresh engine created with `options`, with that engine's info; the engine is unloaded after. */
async function greedyOnFreshEngine(options: Omit<CreateEngineOptions, 'model'>) {
  const p = byName('chat_template');
  const want = robustPrefix(p);
  const got = await page.evaluate(
    async ([url, options, ids, n]) => {
      const e = await window.realm.createEngine({ model: url, ...options });
      try {
        const info = await e.info();
        const t0 = performance.now();
        const res = await e.completions.create({ prompt: ids, temperature: 0, max_tokens: n });
        return { info, ids: res.choices[0].token_ids, ms: performance.now() - t0 };
      } finally {
        await e.unload();
      }
    },
    [MODEL, options, p.prompt_tokens, want.length] as const,
  );
  return { ...got, want };
}

test('the threads build: 2 threads on Web Workers give the same greedy answer; 1 thread the baseline', async () => {
  for (const threads of [2, 1]) {
    const got = await greedyOnFreshEngine({ device: 'wasm', threads });
    console.log(`threads ${threads}: ${got.info.variant}`);
    expect(got.ids).toEqual(got.want);
    expect(got.info.engine.details).toContain(`threads: ${threads}`);
    expect(got.info.engine.build).toMatchObject({ threads: threads > 1 });
    expect(got.info.variant).toContain(threads > 1 ? 'relaxed-simd + threads (2)' : 'relaxed-simd, 1 thread');
  }
});

test('the Memory64 (wasm64) build gives the same greedy answer, and says why it was chosen', async () => {
  const got = await greedyOnFreshEngine({ device: 'auto', wasmBuild: 'memory64' });
  console.log(`memory64: ${got.info.variant}, ${Math.round(got.ms)} ms`);
  expect(got.ids).toEqual(got.want);
  expect(got.info.backend).toBe('wasm');
  expect(got.info.variant).toContain('wasm64 (Memory64), 1 thread: the Memory64 build was asked for');
  expect(got.info.engine.build).toMatchObject({ target: 'wasm64', threads: false });
});

test('the compat build (no relaxed SIMD, for browsers without it) gives the same greedy answer', async () => {
  const got = await greedyOnFreshEngine({ device: 'wasm', wasmBuild: 'compat' });
  expect(got.ids).toEqual(got.want);
  expect(got.info.variant).toBe('wasm32 simd128 (compat), 1 thread: the compat build was asked for');
});

test('speed (logged, not asserted): prefill and decode tokens per second', async () => {
  const r = await page.evaluate(async (ids) => {
    const t0 = performance.now();
    const prefill = await window.engine.completions.create({ prompt: ids, temperature: 0, max_tokens: 1 });
    const t1 = performance.now();
    const one = await window.engine.completions.create({ prompt: 'Once upon a time', temperature: 0, max_tokens: 1 });
    const t2 = performance.now();
    const many = await window.engine.completions.create({ prompt: 'Once upon a time', temperature: 0, max_tokens: 33 });
    const t3 = performance.now();
    return {
      prompt: prefill.usage.prompt_tokens,
      prefillMs: t1 - t0,
      decoded: many.usage.completion_tokens - one.usage.completion_tokens,
      decodeMs: t3 - t2 - (t2 - t1),
    };
  }, byName('long_paragraph').prompt_tokens);
  const pp = (r.prompt / r.prefillMs) * 1000;
  const tg = (r.decoded / r.decodeMs) * 1000;
  console.log(`wasm speed: prefill ${r.prompt} tokens ${pp.toFixed(1)} tok/s, decode ${r.decoded} tokens ${tg.toFixed(1)} tok/s`);
  expect(r.decoded).toBeGreaterThan(0);
});
