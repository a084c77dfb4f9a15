#!/usr/bin/env node
// Client-overhead benchmark (issue 14) for the TypeScript client, realm-web's remote engine in
// Node, against a raw realm.v1 reader. A benchmark program, not a test (scripts/test.sh does not
// run it); scripts/bench-clients.sh --ts runs it.
//
// It starts one release realm-server on a free loopback port (or uses --url), waits for
// /health, then measures two ways of streaming the same request, one at a time:
//
//   raw-ws     the `ws` package: connect to /v1/ws (subprotocol realm.v1), send a `complete`
//              message, JSON.parse each message until `done`
//   client-ws  createEngine({ remote }) (the package's Node entry, which uses the same `ws`),
//              engine.completions.create({ ..., stream: true }), iterate its chunks
//
// Every request: a text completion, greedy (temperature 0), max_tokens OUT (64), of a prompt
// that counts ("NNNNN: 1, 2, 3, 4,"), so greedy decoding goes on counting for all OUT tokens
// without an end-of-generation token (the remote engine has no ignore_eos); NNNNN is a global
// counter, zero-padded, so that every prompt differs and has the same length (no method gets
// another's prompt from the prefix cache).
//
// Per round, both methods open their connection and send one unmeasured warm-up request; then
// N pairs of measured requests, one of each method, in alternating order (raw first in even
// pairs, the client first in odd ones), one request at a time; then both close. Interleaving
// pairs puts both methods in the same state of the shared machine (the engine's speed moves
// by tens of percent between seconds here), so the per-pair differences compare like with
// like. Measured
// per request: TTFT = just before the request is sent (the raw `send`, the client's
// `create()`) -> the first delta / chunk with a token; decode tok/s = (k - 1) / (t_last -
// t_first) over the k deltas with a token; the server's own timings of the request (ttft_ms,
// predicted_per_second) from `done` / the last chunk, so that "TTFT seen - server ttft_ms" (the
// transport + reader part) and the reader's pace (decode seen / server's decode) take the
// engine's own variation out; and this process's CPU time per request (process.cpuUsage()).
//
// Usage: node scripts/bench-clients-ts.mjs [--url http://127.0.0.1:PORT] [--server-bin PATH]
//          [--model PATH] [--threads 2] [--rounds 5] [--requests 20] [--out 64] [--json PATH]
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// The package by its path (its Node entry, as `import 'realm-web'` resolves in Node), and the
// `ws` package from the root node_modules (scripts/web-deps.sh installs both).
const { createEngine } = await import(pathToFileURL(join(ROOT, 'npm/realm-web/dist/node.js')).href);
const { WebSocket } = createRequire(join(ROOT, 'package.json'))('ws');

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const ROUNDS = Number(args.rounds ?? 5);
const N = Number(args.requests ?? 20);
const OUT = Number(args.out ?? 64);
const METHODS = ['raw-ws', 'client-ws'];

let counter = 0;
const prompt = () => `${String(++counter).padStart(5, '0')}: 1, 2, 3, 4,`;
const request = () => ({ prompt: prompt(), max_tokens: OUT, temperature: 0 });

const now = () => performance.now();
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

function freePort() {
  return new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

async function startServer() {
  if (args.url) return { url: args.url.replace(/\/+$/, ''), stop: async () => {} };
  const bin = args['server-bin'] ?? join(ROOT, 'target/release/realm-server');
  const model = args.model ?? join(process.env.REALM_CACHE_DIR ?? join(homedir(), '.cache/realm'), 'models/SmolLM2-135M-Instruct.Q4_1.gguf');
  const port = await freePort();
  const proc = spawn(bin, ['-m', model, '--host', '127.0.0.1', '--port', String(port), '-t', String(args.threads ?? 2)], {
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  const exited = new Promise((r) => proc.on('exit', r));
  const url = `http://127.0.0.1:${port}`;
  for (let t0 = Date.now(); ; ) {
    try {
      if ((await fetch(`${url}/health`)).status === 200) break;
    } catch {
      // not yet
    }
    if (Date.now() - t0 > 120_000 || proc.exitCode !== null) throw new Error('realm-server did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    stop: async () => {
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

/** The raw reader: one `ws` connection, messages parsed and routed by hand. */
async function rawMethod(ws) {
  const sock = new WebSocket(`${ws}/v1/ws`, ['realm.v1']);
  let onMsg = null;
  sock.on('message', (data) => onMsg?.(JSON.parse(String(data))));
  await new Promise((res, rej) => {
    sock.once('open', res);
    sock.once('error', rej);
  });
  let n = 0;
  return {
    run: () =>
      new Promise((res, rej) => {
        const id = `b${++n}`;
        const s = { ttft: null, times: [], server: null, cpu: cpuMs() };
        const t0 = now();
        onMsg = (m) => {
          if (m.id !== id) return;
          if (m.type === 'delta' && m.tokens.length) {
            const t = now();
            if (s.ttft === null) s.ttft = t - t0;
            s.times.push(t);
          } else if (m.type === 'done') {
            s.server = m.choices[0].timings;
            s.cpu = cpuMs() - s.cpu;
            res(s);
          } else if (m.type === 'error') rej(new Error(m.message));
        };
        sock.send(JSON.stringify({ type: 'complete', id, request: request() }));
      }),
    close: () => sock.close(),
  };
}

/** The client: the remote engine. */
async function clientMethod(ws) {
  const engine = await createEngine({ remote: ws });
  return {
    run: async () => {
      const s = { ttft: null, times: [], server: null, cpu: cpuMs() };
      const t0 = now();
      const stream = await engine.completions.create({ ...request(), stream: true });
      for await (const c of stream) {
        if (c.choices[0].token_ids.length) {
          const t = now();
          if (s.ttft === null) s.ttft = t - t0;
          s.times.push(t);
        }
        if (c.timings) s.server = c.timings;
      }
      s.cpu = cpuMs() - s.cpu;
      return s;
    },
    close: () => engine.unload(),
  };
}

const pct = (xs, p) => {
  const v = [...xs].sort((a, b) => a - b);
  if (!v.length) return NaN;
  const k = (v.length - 1) * p;
  const lo = Math.floor(k);
  return v[lo] + (v[Math.min(lo + 1, v.length - 1)] - v[lo]) * (k - lo);
};
const med = (xs) => pct(xs, 0.5);

const srv = await startServer();
const ws = srv.url.replace(/^http/, 'ws');
const load0 = loadavg()[0];
const started = new Date().toISOString();
const samples = { 'raw-ws': [], 'client-ws': [] };
const perRound = [];
try {
  for (let r = 0; r < ROUNDS; r++) {
    const h = { 'raw-ws': await rawMethod(ws), 'client-ws': await clientMethod(ws) };
    for (const m of METHODS) await h[m].run(); // warm-up
    const got = { 'raw-ws': [], 'client-ws': [] };
    for (let i = 0; i < N; i++) {
      const order = i % 2 === 0 ? METHODS : [...METHODS].reverse();
      for (const m of order) {
        const s = await h[m].run();
        if (s.times.length !== OUT) throw new Error(`${m}: ${s.times.length} tokens, expected ${OUT} (the prompt did not keep counting)`);
        const decode = ((s.times.length - 1) / (s.times.at(-1) - s.times[0])) * 1000;
        got[m].push({ round: r, pair: i, ttft: s.ttft, decode, server_ttft: s.server.ttft_ms, server_decode: s.server.predicted_per_second, cpu: s.cpu });
      }
    }
    for (const m of METHODS) {
      await h[m].close();
      samples[m].push(...got[m]);
    }
    const round = Object.fromEntries(METHODS.map((m) => [m, { ttft: med(got[m].map((g) => g.ttft)), decode: med(got[m].map((g) => g.decode)) }]));
    perRound.push(round);
    process.stderr.write(`round ${r + 1}/${ROUNDS}: ${METHODS.map((m) => `${m} ${round[m].ttft.toFixed(2)} ms ${round[m].decode.toFixed(1)} tok/s`).join(' · ')}\n`);
  }
} finally {
  await srv.stop();
}
const load1 = loadavg()[0];

const row = (m) => {
  const s = samples[m];
  return {
    ttft50: pct(s.map((x) => x.ttft), 0.5),
    ttft90: pct(s.map((x) => x.ttft), 0.9),
    over: med(s.map((x) => x.ttft - x.server_ttft)),
    decode: med(s.map((x) => x.decode)),
    sdecode: med(s.map((x) => x.server_decode)),
    pace: med(s.map((x) => x.decode / x.server_decode)),
    cpu: med(s.map((x) => x.cpu)),
  };
};
const R = Object.fromEntries(METHODS.map((m) => [m, row(m)]));
console.log(`TypeScript client overhead: ${ROUNDS} rounds x ${N} requests, ${OUT} tokens, ${started}, load ${load0.toFixed(2)} -> ${load1.toFixed(2)}, node ${process.version}\n`);
console.log('| method | TTFT p50 / p90 ms | TTFT − server `ttft_ms`, p50 ms | decode tok/s p50 | server\'s decode p50 | decode / server\'s | CPU ms per request |');
console.log('|---|--:|--:|--:|--:|--:|--:|');
for (const m of METHODS) {
  const x = R[m];
  console.log(`| ${m} | ${x.ttft50.toFixed(2)} / ${x.ttft90.toFixed(2)} | ${x.over.toFixed(2)} | ${x.decode.toFixed(1)} | ${x.sdecode.toFixed(1)} | ${x.pace.toFixed(4)} | ${x.cpu.toFixed(1)} |`);
}
const c = R['client-ws'];
const w = R['raw-ws'];
// Per pair (the two requests of one pair ran back to back): the client's minus the raw reader's.
const pairs = samples['client-ws'].map((x, i) => [x, samples['raw-ws'][i]]);
const pairTtft = med(pairs.map(([x, y]) => x.ttft - y.ttft));
const pairDecode = med(pairs.map(([x, y]) => x.decode / y.decode - 1)) * 100;
console.log(
  `\nclient-ws − raw-ws: TTFT p50 ${(c.ttft50 - w.ttft50).toFixed(2)} ms pooled, ${pairTtft.toFixed(2)} ms median of per-pair diffs; ` +
    `(TTFT − server) p50 ${(c.over - w.over).toFixed(2)} ms; decode ${(((c.decode / w.decode) - 1) * 100).toFixed(2)}% pooled, ` +
    `${pairDecode.toFixed(2)}% median of per-pair ratios; pace ${(c.pace - w.pace).toFixed(4)}; CPU ${(c.cpu - w.cpu).toFixed(1)} ms per request`,
);
if (args.json) writeFileSync(args.json, JSON.stringify({ started, load: [load0, load1], samples, perRound }, null, 1));
