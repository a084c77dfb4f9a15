// Drives bench/web/ in headless Chromium (playwright-core, Debian's chromium) and prints a
// markdown table of the medians over the rounds. scripts/bench-web.sh starts the server and
// calls this.
//
//   node scripts/bench-web.mjs BASE_URL ROUNDS
//     REALM_CHROMIUM   the browser (default /usr/bin/chromium)
//     BENCH_ONLY       run some configs only, e.g. realm-1,wllama-1
//     BENCH_JSON       also write every page's result to this file

import { execFileSync } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { chromiumArgs, executablePath, webgpuArg } from '../tests/e2e/chromium.mjs';

const base = process.argv[2] ?? 'http://127.0.0.1:8174/';
const rounds = Number(process.argv[3] ?? 3);
const dist = new URL('../npm/realm-web/dist/', import.meta.url).pathname;

/** One page load each, in this order every round (interleaved, so drift hits all alike). */
let configs = [
  { key: 'realm-1', label: 'realm-web wasm', engine: 'realm', threads: 1 },
  { key: 'wllama-1', label: 'wllama 3.13.0', engine: 'wllama', threads: 1 },
  { key: 'realm-2', label: 'realm-web wasm', engine: 'realm', threads: 2 },
  { key: 'wllama-2', label: 'wllama 3.13.0', engine: 'wllama', threads: 2 },
  { key: 'realm-webgpu', label: 'realm-web WebGPU', engine: 'realm', threads: 1, device: 'webgpu' },
].filter((c) => !process.env.BENCH_ONLY || process.env.BENCH_ONLY.split(',').includes(c.key));

const loadavg = () => execFileSync('uptime', { encoding: 'utf8' }).trim().replace(/^.*load average:\s*/, '');
const median = (xs) => {
  const s = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  return s.length ? (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2 : null;
};
const span = (xs) => (Math.min(...xs) === Math.max(...xs) ? `${xs[0]}` : `${Math.min(...xs)}–${Math.max(...xs)}`);
const fmt = (x, d = 1) => (x === null || x === undefined ? '–' : x.toFixed(d));
/** The newest modification time under realm-web's dist/: a rebuild during the run shows. */
const distStamp = (dir = dist) =>
  Math.max(
    0,
    ...readdirSync(dir, { withFileTypes: true }).map((e) =>
      e.isDirectory() ? distStamp(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs,
    ),
  );

const loadBefore = loadavg();
const stampBefore = distStamp();
const browser = await chromium.launch({
  executablePath,
  args: [...chromiumArgs, webgpuArg],
});
const version = browser.version();

/** The WebGPU adapter this browser gives a page (SwiftShader here: a CPU emulation). */
async function probeGpu() {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(base);
  const gpu = await page.evaluate(async () => {
    const a = await navigator.gpu?.requestAdapter();
    if (!a) return null;
    const i = a.info ?? {};
    return { fallback: Boolean(i.isFallbackAdapter ?? a.isFallbackAdapter), name: [i.vendor, i.architecture, i.description].filter(Boolean).join(' ') };
  });
  await context.close();
  return gpu;
}

// On a fallback adapter a full run takes many minutes per page: one small run is enough to
// show where it stands, and the row says so.
const gpu = configs.some((c) => c.device === 'webgpu') ? await probeGpu() : null;
for (const c of configs) {
  if (c.device !== 'webgpu') continue;
  if (!gpu) c.na = 'n/a (no WebGPU adapter in this browser)';
  else if (gpu.fallback) {
    c.params = { prompt: '32', gen: '8', reps: '1', ttft: '0' };
    c.rounds = 1;
    c.label += ` on a fallback adapter (${gpu.name || 'software'}): prompt 32, gen 8, 1 round`;
  }
}

const results = Object.fromEntries(configs.map((c) => [c.key, []]));
for (let round = 1; round <= rounds; round++) {
  for (const c of configs) {
    if (c.na || round > (c.rounds ?? rounds)) continue;
    // A fresh context per page: empty Cache Storage, so the first realm load downloads.
    const context = await browser.newContext();
    const page = await context.newPage();
    const qs = new URLSearchParams({ engine: c.engine, threads: String(c.threads), device: c.device ?? 'wasm', ...c.params });
    const t0 = Date.now();
    let r;
    try {
      await page.goto(new URL(`bench/index.html?${qs}`, base).href);
      await page.waitForFunction(() => window.benchResult, null, { timeout: 600_000, polling: 500 });
      r = await page.evaluate(() => window.benchResult);
    } catch (e) {
      r = { ok: false, error: { message: String(e.message ?? e).split('\n')[0] } };
    }
    await context.close();
    results[c.key].push(r);
    const summary = !r.ok
      ? `error ${r.error?.code ?? ''} ${r.error?.message}`
      : (r.na ??
        `prompt ${r.prompt.tokPerS} tok/s (${r.prompt.tokens} tok), gen ${r.gen.tokPerS} tok/s (${r.gen.tokens} tok, ${r.gen.finish})` +
          (r.ttftCache ? `, ttft(cache) ${r.ttftCache.ms} ms` : ''));
    console.error(`bench-web: round ${round}/${rounds} ${c.key}: ${summary} [${((Date.now() - t0) / 1000).toFixed(0)} s]`);
  }
}
await browser.close();
const loadAfter = loadavg();
const rebuilt = distStamp() !== stampBefore;

/** Medians over the rounds of one config, or why there is no number. */
function summarize(c) {
  if (c.na) return { na: c.na };
  const rs = results[c.key];
  const ok = rs.filter((r) => r.ok && !r.na);
  if (!ok.length) {
    const na = rs.find((r) => r.na)?.na;
    const err = rs.find((r) => !r.ok)?.error;
    return { na: na ?? `error: ${err?.code ?? ''} ${err?.message ?? 'no result'}`.trim() };
  }
  return {
    prompt: median(ok.map((r) => r.prompt.tokPerS)),
    promptTokens: span(ok.flatMap((r) => r.prompt.runs.map((x) => x.tokens))),
    promptCached: Math.max(...ok.map((r) => r.prompt.cached ?? 0)),
    reps: ok[0].config.reps,
    gen: median(ok.map((r) => r.gen.tokPerS)),
    genTokens: Math.min(...ok.map((r) => r.gen.tokens)),
    genRequested: ok[0].gen.requested,
    genFinish: [...new Set(ok.map((r) => r.gen.finish))].join('/'),
    ttft: median(ok.map((r) => r.ttftCache?.ms)),
    ttftFromCache: ok.every((r) => !r.ttftCache || r.ttftCache.fromCache),
    promptRuns: ok.map((r) => r.prompt.tokPerS),
    genRuns: ok.map((r) => r.gen.tokPerS),
    ttftRuns: ok.map((r) => r.ttftCache?.ms).filter((x) => x !== undefined),
    // wllama's own timings (llama-server's), to check the page's clock against.
    selfPrompt: median(ok.map((r) => median(r.prompt.runs.map((x) => x.self?.prompt_per_second)))),
    selfGen: median(ok.map((r) => r.gen.self?.predicted_per_second)),
  };
}

const s = Object.fromEntries(configs.map((c) => [c.key, summarize(c)]));
const ratio = (a, b, f) => (s[a]?.[f] && s[b]?.[f] ? `${(s[a][f] / s[b][f]).toFixed(2)}×` : '–');
const rows = configs.map((c) => {
  const x = s[c.key];
  if (x.na) return `| ${c.label} | ${c.threads} | ${x.na} | | | | |`;
  const vs = c.engine === 'realm' && !c.device ? `wllama-${c.threads}` : null;
  const prompt = `${fmt(x.prompt)}${x.promptCached ? ` (${x.promptCached} cached tokens left out)` : ''}`;
  const gen = `${fmt(x.gen)}${x.genTokens < x.genRequested ? ` (stopped at ${x.genTokens}: ${x.genFinish})` : ''}`;
  const ttft = x.ttft === null ? '' : `${(x.ttft / 1000).toFixed(2)} s${x.ttftFromCache ? '' : ' (not from cache!)'}`;
  return `| ${c.label} | ${c.threads} | ${prompt} | ${gen} | ${vs ? ratio(c.key, vs, 'prompt') : ''} | ${vs ? ratio(c.key, vs, 'gen') : ''} | ${ttft} |`;
});
const perRound = configs
  .filter((c) => !s[c.key].na)
  .map((c) => {
    const x = s[c.key];
    const self = x.selfGen === null ? '' : ` (its own timings: prompt ${fmt(x.selfPrompt)}, gen ${fmt(x.selfGen)})`;
    const ttft = x.ttftRuns.length ? `; ttft ms ${x.ttftRuns.join(', ')}` : '';
    return `- ${c.key}: prompt ${x.promptRuns.join(', ')}; gen ${x.genRuns.join(', ')}${ttft}${self}`;
  });
const first = (key) => results[key]?.find((r) => r.ok && !r.na);
const r1 = s['realm-1'] ?? {};
console.log(
  [
    `Browser benchmark, SmolLM2-135M-Instruct Q4_1, ${new Date().toISOString()}, Chromium ${version} (headless), median of ${rounds} rounds.`,
    `Prompt: ${r1.promptTokens ?? '?'} tokens (realm) / ${s['wllama-1']?.promptTokens ?? '?'} (wllama); tok/s = tokens / time to the first streamed token of a 1-token completion, median of ${r1.reps ?? '?'} per round (each run starts the passage at another word: no KV reuse). ` +
      `Gen: ${r1.genRequested ?? '?'} greedy tokens, (n-1) / (t_last - t_first). TTFT from cache: a second createEngine on the same URL until the first token of a short chat answer.`,
    '',
    '| engine | threads | prompt tok/s | gen tok/s | realm/wllama prompt | realm/wllama gen | TTFT from cache |',
    '|---|---|---|---|---|---|---|',
    ...rows,
    '',
    'Per round (tok/s):',
    ...perRound,
    '',
    `Command: ${process.env.BENCH_CMD ?? `node scripts/bench-web.mjs ${base} ${rounds}`} (niceness ${getPriority()}).`,
    `Load average (1, 5, 15 min) before: ${loadBefore}; after: ${loadAfter}. CPUs: ${execFileSync('nproc', { encoding: 'utf8' }).trim()}.`,
    `realm build: ${JSON.stringify(first('realm-1')?.info?.engine?.build ?? null)}; wllama: ${JSON.stringify(first('wllama-1')?.info ?? null)}.`,
    `Greedy text, realm: ${JSON.stringify(first('realm-1')?.gen.text.slice(0, 80) ?? null)}`,
    `Greedy text, wllama: ${JSON.stringify(first('wllama-1')?.gen.text.slice(0, 80) ?? null)}`,
    ...(rebuilt ? ['', '**Warning: npm/realm-web/dist changed during the run: the realm numbers may mix builds.**'] : []),
  ].join('\n'),
);
if (process.env.BENCH_JSON) {
  writeFileSync(process.env.BENCH_JSON, JSON.stringify({ version, loadBefore, loadAfter, gpu, rebuilt, results }, null, 2));
}
