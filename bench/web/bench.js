// The browser benchmark: one engine in one configuration per page load (query parameters, see
// index.html); scripts/bench-web.sh drives it in headless Chromium and reads
// `window.benchResult`. Every time is measured here with performance.now(), the same way for
// both engines:
//  - prompt: a completion of the fixed passage below with max_tokens 1; prompt tok/s = the
//    prompt tokens the engine reports / the time from the request to its first streamed token
//    (so it includes tokenizing, the one sampled token and the message to the page: a little
//    slower than the prefill alone). Median of `reps` runs, after one warm-up request. Each run
//    starts the passage at another word, so no engine can reuse the previous run's KV entries
//    (realm keeps the last request's; wllama is asked not to, cache_prompt false); prompt
//    tokens an engine still reports as cached are left out of the rate and shown.
//  - gen: greedy generation of `gen` tokens after a short prompt; tok/s = (tokens - 1) / (time
//    of the last streamed token - time of the first). wllama ignores EOS; realm has no such
//    option, so its count and finish reason are reported (the prompt keeps it talking).
//  - ttft (realm): unload, then a second createEngine on the same URL (the model now in Cache
//    Storage) until the first streamed token of a short chat request.

import { createEngine } from '/realm-web/index.js';
import { Wllama } from '/wllama/index.js';

const q = new URLSearchParams(location.search);
const cfg = {
  engine: q.get('engine') ?? 'realm',
  threads: Number(q.get('threads') ?? 1),
  device: q.get('device') ?? 'wasm',
  model: q.get('model') ?? '/models/SmolLM2-135M-Instruct.Q4_1.gguf',
  prompt: Number(q.get('prompt') ?? 128),
  gen: Number(q.get('gen') ?? 128),
  reps: Number(q.get('reps') ?? 3),
  ttft: q.get('ttft') !== '0',
};

// The prompt of run `rep`: words of this passage from word 11 * rep on (wrapping round), about
// WORDS_PER_TOKEN words per requested token with SmolLM2's tokenizer.
const PASSAGE = `Before the age of satellites, a lighthouse keeper lived by the rhythm of the lamp.
Each evening he climbed the spiral stairs, trimmed the wick, polished the great lens and wound
the clockwork that turned it through the night. Ships far out at sea counted the flashes to know
which headland they were passing, since every station had its own pattern of light and dark. In
winter storms the keeper might not sleep at all, watching for wrecks, writing the weather in his
log every four hours and ringing the fog bell by hand when the mist rolled in from the water.
Supplies came by boat once a month, if the sea allowed it, and many keepers kept goats, grew
potatoes in sheltered corners and taught their children at the kitchen table.`;
const WORDS_PER_TOKEN = 0.89;
const GEN_PROMPT = 'Here is a long story about a dragon who learns to bake bread. Chapter 1.';
const CHAT = [{ role: 'user', content: 'Hi! What can you do?' }];

const status = (s) => (document.getElementById('status').textContent = s);
const now = () => performance.now();
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2 : null;
};
const round = (x, d = 2) => (x === null || x === undefined ? null : Number(x.toFixed(d)));

function promptText(tokens, rep) {
  const words = PASSAGE.split(/\s+/);
  const n = Math.max(1, Math.round(tokens * WORDS_PER_TOKEN));
  return Array.from({ length: n }, (_, i) => words[(i + 11 * rep) % words.length]).join(' ');
}

/** One streamed completion: when it was asked for, when each token arrived, its text and its
 * last chunk. `start()` opens the engine's stream; `tokensOf(chunk)`: the tokens a chunk carries. */
async function timed(start, tokensOf) {
  const t0 = now();
  const stream = await start();
  const arrivals = [];
  let last = null;
  let text = '';
  for await (const c of stream) {
    const n = tokensOf(c);
    if (n > 0) arrivals.push({ t: now(), n });
    text += c.choices[0]?.text ?? '';
    last = c;
  }
  return { t0, arrivals, last, text };
}

/** The two engines behind one shape: `run(prompt, maxTokens)` -> { t0, arrivals, promptTokens,
 * cachedTokens, completionTokens, finish, text, last, self }. */
async function openRealm(report) {
  const load0 = now();
  const phases = [];
  let engine;
  try {
    engine = await createEngine({
      model: cfg.model,
      device: cfg.device,
      threads: cfg.threads,
      onProgress: (p) => phases.includes(p.phase) || phases.push(p.phase),
    });
  } catch (e) {
    return { na: `n/a (${e.code ?? e.name}: ${e.message})` };
  }
  report.load = { ms: round(now() - load0, 0), phases };
  const info = await engine.info();
  report.info = info;
  if (cfg.threads > 1 && !info.engine?.build?.threads) return { na: 'n/a (no threads build)', engine };
  if (cfg.device === 'webgpu' && info.backend !== 'webgpu') return { na: `n/a (backend ${info.backend})`, engine };
  const run = async (prompt, maxTokens) => {
    const r = await timed(
      () => engine.completions.create({ prompt, max_tokens: maxTokens, temperature: 0, stream: true }),
      (c) => c.choices[0].token_ids.length,
    );
    return {
      ...r,
      promptTokens: r.last?.usage?.prompt_tokens,
      cachedTokens: r.last?.usage?.prompt_tokens_details?.cached_tokens ?? 0,
      completionTokens: r.last?.usage?.completion_tokens,
      finish: r.last?.choices[0].finish_reason,
    };
  };
  return { engine, run, close: () => engine.unload() };
}

async function openWllama(report) {
  const fetch0 = now();
  const blob = await (await fetch(cfg.model)).blob();
  const load0 = now();
  const w = new Wllama({ default: '/wllama/wasm/wllama.wasm' }, { suppressNativeLog: true });
  // n_gpu_layers 0: the CPU (wasm) engine, not WebGPU (SwiftShader here).
  await w.loadModel([blob], { n_threads: cfg.threads, n_ctx: 1024, n_gpu_layers: 0 });
  report.load = { ms: round(now() - load0, 0), fetchMs: round(load0 - fetch0, 0) };
  report.info = {
    version: Wllama.getLibllamaVersion?.(),
    multithread: w.isMultithread(),
    threads: w.getNumThreads(),
    crossOriginIsolated: globalThis.crossOriginIsolated,
  };
  if (cfg.threads > 1 && !w.isMultithread()) return { na: 'n/a (wllama fell back to one thread)', close: () => w.exit() };
  const run = async (prompt, maxTokens) => {
    const r = await timed(
      () =>
        w.createCompletion({
          prompt,
          max_tokens: maxTokens,
          temperature: 0,
          ignore_eos: true,
          cache_prompt: false,
          stream: true,
        }),
      // llama-server streams one token per chunk; the last chunk carries only the summary.
      (c) => (c.choices[0]?.text ? 1 : 0),
    );
    const t = r.last?.timings;
    return {
      ...r,
      promptTokens: r.last?.usage?.prompt_tokens ?? t?.prompt_n,
      cachedTokens: t?.cache_n ?? r.last?.usage?.prompt_tokens_details?.cached_tokens ?? 0,
      completionTokens: r.last?.usage?.completion_tokens ?? t?.predicted_n,
      finish: r.last?.choices[0]?.finish_reason,
      self: t && {
        cache_n: t.cache_n,
        prompt_n: t.prompt_n,
        prompt_per_second: round(t.prompt_per_second),
        predicted_n: t.predicted_n,
        predicted_per_second: round(t.predicted_per_second),
      },
    };
  };
  return { run, close: () => w.exit() };
}

async function bench() {
  const report = {
    config: cfg,
    userAgent: navigator.userAgent,
    hardwareConcurrency: navigator.hardwareConcurrency,
    crossOriginIsolated: globalThis.crossOriginIsolated,
  };
  status(`loading ${cfg.engine}`);
  const e = cfg.engine === 'wllama' ? await openWllama(report) : await openRealm(report);
  if (e.na) {
    await (e.close ?? (() => e.engine?.unload()))();
    return { ...report, ok: true, na: e.na };
  }

  status('warm-up');
  await e.run('Hello', 4);

  status('prompt');
  const runs = [];
  for (let i = 0; i < cfg.reps; i++) {
    const r = await e.run(promptText(cfg.prompt, i), 1);
    const ms = (r.arrivals[0]?.t ?? now()) - r.t0;
    const computed = r.promptTokens - r.cachedTokens;
    runs.push({ ms: round(ms, 1), tokens: r.promptTokens, cached: r.cachedTokens, tokPerS: round((computed / ms) * 1000), self: r.self });
  }
  report.prompt = {
    tokens: runs[0].tokens,
    cached: Math.max(...runs.map((r) => r.cached)),
    tokPerS: round(median(runs.map((r) => r.tokPerS))),
    runs,
  };

  status('generation');
  const g = await e.run(GEN_PROMPT, cfg.gen);
  const first = g.arrivals[0];
  const last = g.arrivals[g.arrivals.length - 1];
  const streamed = g.arrivals.reduce((s, a) => s + a.n, 0);
  report.gen = {
    requested: cfg.gen,
    tokens: g.completionTokens,
    streamed,
    finish: g.finish,
    stoppedEarly: g.completionTokens < cfg.gen,
    tokPerS: last && last !== first ? round(((streamed - first.n) / (last.t - first.t)) * 1000) : null,
    promptTokens: g.promptTokens,
    cachedTokens: g.cachedTokens,
    firstTokenMs: first ? round(first.t - g.t0, 1) : null,
    text: g.text.slice(0, 200),
    self: g.self,
  };

  await e.close();

  if (cfg.engine === 'realm' && cfg.ttft) {
    status('time to first token from cache');
    const phases = [];
    const t0 = now();
    const engine = await createEngine({
      model: cfg.model,
      device: cfg.device,
      threads: cfg.threads,
      onProgress: (p) => phases.includes(p.phase) || phases.push(p.phase),
    });
    const loaded = now();
    const stream = await engine.chat.completions.create({ messages: CHAT, max_tokens: 8, temperature: 0, stream: true });
    let firstToken = null;
    for await (const c of stream) {
      if (c.choices[0].token_ids.length) {
        firstToken = now();
        break;
      }
    }
    report.ttftCache = {
      ms: firstToken === null ? null : round(firstToken - t0, 0),
      loadMs: round(loaded - t0, 0),
      fromCache: phases.includes('cache') && !phases.includes('download'),
      phases,
    };
    await engine.unload();
  }
  return { ...report, ok: true };
}

let result;
try {
  result = await bench();
} catch (e) {
  result = { config: cfg, ok: false, error: { name: e?.name, code: e?.code ?? e?.type, message: String(e?.message ?? e) } };
}
window.benchResult = result;
status(result.ok ? (result.na ?? 'done') : 'error');
document.getElementById('out').textContent = JSON.stringify(result, null, 2);
