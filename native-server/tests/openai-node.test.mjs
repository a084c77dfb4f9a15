// realm-server driven by the official `openai` npm package (root package.json) on the real model:
// chat and completions, streamed and not, usage on the last chunk, n, logprobs, the error
// classes, and a stream aborted mid-way that frees its sequence. Starts the server binary itself
// (loopback, a free port) and stops it by its PID with SIGTERM, expecting exit code 0.
//
//   REALM_SERVER_BIN=target/debug/realm-server node --test native-server/tests/openai-node.test.mjs
//
// REALM_MODEL: the GGUF (default: SmolLM2-135M-Instruct Q4_1 in the cache). scripts/test-server.sh
// runs it after the Python tests.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import OpenAI from 'openai';
import { ResponsesWS } from 'openai/resources/responses/ws';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const CACHE = process.env.REALM_CACHE_DIR ?? path.join(os.homedir(), '.cache/realm');
const MODEL = process.env.REALM_MODEL ?? path.join(CACHE, 'models/SmolLM2-135M-Instruct.Q4_1.gguf');
const SERVER_BIN = process.env.REALM_SERVER_BIN ?? path.join(ROOT, 'target/debug/realm-server');
const MODEL_ID = path.basename(MODEL).replace(/\.gguf$/, '');
const KEY = 'node-test-key-0123456789';
const MSG = [{ role: 'user', content: 'Name three colours.' }];

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let proc;
let baseURL;
let client;
let logs = '';
let exited = null; // { code, signal } once the process has ended

const tail = () => logs.slice(-4000);

function waitExit(ms) {
  if (exited) return Promise.resolve(exited);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(null), ms);
    proc.once('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal });
    });
  });
}

async function metrics() {
  const r = await fetch(`${baseURL}/metrics`);
  assert.equal(r.status, 200);
  return r.text();
}

before(async () => {
  assert.ok(existsSync(SERVER_BIN), `no realm-server at ${SERVER_BIN} (set REALM_SERVER_BIN)`);
  assert.ok(existsSync(MODEL), `no model at ${MODEL} (scripts/setup.sh fetches it; or set REALM_MODEL)`);
  const port = await freePort();
  baseURL = `http://127.0.0.1:${port}`;
  proc = spawn(SERVER_BIN, ['-m', MODEL, '--port', String(port), '-t', '2', '--api-key', KEY], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout.on('data', (d) => (logs += d));
  proc.stderr.on('data', (d) => (logs += d));
  proc.on('exit', (code, signal) => (exited = { code, signal }));
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (exited) throw new Error(`realm-server exited with ${JSON.stringify(exited)}: ${tail()}`);
    try {
      const r = await fetch(`${baseURL}/health`, { signal: AbortSignal.timeout(2000) });
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`realm-server did not become ready: ${tail()}`);
    await sleep(100);
  }
  client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: KEY, maxRetries: 0, timeout: 120_000 });
});

after(async () => {
  // Only when a test failed before the last one stopped it.
  if (proc && !exited) {
    process.kill(proc.pid, 'SIGTERM');
    if (!(await waitExit(40_000))) process.kill(proc.pid, 'SIGKILL');
  }
});

describe('realm-server with the openai npm package', () => {
  test('chat: whole and streamed agree (greedy), usage on the last chunk', async () => {
    const whole = await client.chat.completions.create({
      model: MODEL_ID, messages: MSG, max_tokens: 24, temperature: 0,
    });
    const c = whole.choices[0];
    assert.equal(c.message.role, 'assistant');
    assert.ok(c.message.content.length > 0);
    assert.ok(['stop', 'length'].includes(c.finish_reason), c.finish_reason);
    const u = whole.usage;
    assert.ok(u.prompt_tokens > 0 && u.completion_tokens > 0);
    assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);

    const stream = await client.chat.completions.create({
      model: MODEL_ID, messages: MSG, max_tokens: 24, temperature: 0, stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.ok(chunks.length > 1);
    let text = '';
    let finish = null;
    for (const ch of chunks) {
      for (const choice of ch.choices) {
        text += choice.delta.content ?? '';
        finish = choice.finish_reason ?? finish;
      }
    }
    assert.equal(text, c.message.content);
    assert.equal(finish, c.finish_reason);
    // include_usage: only the last chunk has usage, and it has no choices.
    const last = chunks.at(-1);
    assert.ok(last.usage, 'the last chunk has usage');
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.completion_tokens, u.completion_tokens);
    assert.equal(last.usage.prompt_tokens, u.prompt_tokens);
    assert.equal(last.usage.total_tokens, u.total_tokens);
    for (const ch of chunks.slice(0, -1)) assert.ok(!ch.usage, 'usage only on the last chunk');
  });

  test('completions: whole and streamed', async () => {
    const prompt = 'The capital of France is';
    const r = await client.completions.create({ model: MODEL_ID, prompt, max_tokens: 8, temperature: 0 });
    assert.match(r.choices[0].text, /Paris/);
    assert.equal(r.usage.completion_tokens, 8);
    assert.equal(r.choices[0].finish_reason, 'length');
    const stream = await client.completions.create({
      model: MODEL_ID, prompt, max_tokens: 8, temperature: 0, stream: true,
    });
    let text = '';
    for await (const ch of stream) for (const choice of ch.choices) text += choice.text;
    assert.equal(text, r.choices[0].text);
  });

  test('n: 2 gives two choices', async () => {
    const r = await client.chat.completions.create({
      model: MODEL_ID, messages: MSG, max_tokens: 12, temperature: 1.0, seed: 7, n: 2,
    });
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
    for (const c of r.choices) assert.ok(c.message.content.length > 0);
  });

  test('logprobs with top_logprobs', async () => {
    const r = await client.chat.completions.create({
      model: MODEL_ID, messages: MSG, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3,
    });
    const content = r.choices[0].logprobs.content;
    assert.equal(content.length, r.usage.completion_tokens);
    for (const t of content) {
      assert.ok(t.logprob <= 0);
      assert.equal(t.top_logprobs.length, 3);
      // Greedy: the chosen token is the most likely one.
      assert.equal(t.top_logprobs[0].token, t.token);
      assert.ok(Math.abs(t.top_logprobs[0].logprob - t.logprob) < 1e-5);
    }
    assert.equal(content.map((t) => t.token).join(''), r.choices[0].message.content);
    const c = await client.completions.create({
      model: MODEL_ID, prompt: 'One, two,', max_tokens: 4, temperature: 0, logprobs: 2,
    });
    const lp = c.choices[0].logprobs;
    assert.equal(lp.tokens.length, 4);
    assert.ok(Object.keys(lp.top_logprobs[0]).length <= 2);
    assert.equal(lp.text_offset[0], 0);
  });

  test('a wrong key is an AuthenticationError', async () => {
    const bad = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: 'wrong-key', maxRetries: 0 });
    await assert.rejects(
      bad.chat.completions.create({ model: MODEL_ID, messages: MSG, max_tokens: 2 }),
      (e) => {
        assert.ok(e instanceof OpenAI.AuthenticationError, `${e?.constructor?.name}: ${e}`);
        assert.equal(e.status, 401);
        return true;
      },
    );
  });

  test('temperature 5 is a BadRequestError naming the param', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: MODEL_ID, messages: MSG, temperature: 5 }),
      (e) => {
        assert.ok(e instanceof OpenAI.BadRequestError, `${e?.constructor?.name}: ${e}`);
        assert.equal(e.status, 400);
        assert.equal(e.param, 'temperature');
        assert.equal(e.error?.param, 'temperature');
        return true;
      },
    );
  });

  test('a stream aborted mid-way frees its sequence', async () => {
    const ac = new AbortController();
    const stream = await client.chat.completions.create(
      { model: MODEL_ID, messages: MSG, max_tokens: 400, temperature: 0, stream: true },
      { signal: ac.signal },
    );
    let got = 0;
    let ended = 'quietly';
    try {
      for await (const _ of stream) {
        got += 1;
        if (got === 3) ac.abort();
      }
    } catch (e) {
      // The package ends an aborted stream's iteration quietly; an abort error is fine too.
      assert.ok(
        e instanceof OpenAI.APIUserAbortError || e?.name === 'AbortError',
        `not an abort: ${e?.constructor?.name}: ${e}`,
      );
      ended = 'with an abort error';
    }
    assert.ok(ac.signal.aborted);
    // A few chunks may already have been read from the socket; not the 400 tokens.
    assert.ok(got < 20, `${got} chunks after an abort at the third (ended ${ended})`);
    assert.ok(got >= 3, `only ${got} chunks before the abort`);
    const deadline = Date.now() + 5000;
    let text;
    for (;;) {
      text = await metrics();
      if (/^realm_num_requests_running 0$/m.test(text)) break;
      if (Date.now() > deadline) break;
      await sleep(50);
    }
    assert.match(text, /^realm_num_requests_running 0$/m, 'the aborted request still runs after 5 s');
    const cancelled = /^realm_request_success_total\{finished_reason="cancelled",tenant="default"\} [1-9]/m;
    assert.match(text, cancelled, 'the aborted request is not counted as cancelled');
  });

  test('the Responses API over its WebSocket mode (ResponsesWS), and over HTTP', async () => {
    const whole = await client.responses.create({
      model: MODEL_ID, input: 'Name three colours.', max_output_tokens: 12, temperature: 0,
    });
    assert.ok(whole.output_text.length > 0);
    const rws = new ResponsesWS(client);
    const types = [];
    let text = '';
    const final = await new Promise((resolve, reject) => {
      rws.on('error', reject);
      rws.on('event', (e) => {
        types.push(e.type);
        if (e.type === 'response.output_text.delta') text += e.delta;
        if (e.type === 'response.completed' || e.type === 'response.incomplete') resolve(e.response);
      });
      rws.send({ type: 'response.create', model: MODEL_ID, input: 'Name three colours.', max_output_tokens: 12, temperature: 0 });
    });
    rws.close();
    assert.equal(types[0], 'response.created');
    assert.ok(types.includes('response.output_text.delta'));
    assert.equal(text, whole.output_text);
    assert.equal(final.output[0].content[0].text, whole.output_text);
  });

  test('SIGTERM stops the server with exit code 0', async () => {
    assert.equal(exited, null, `the server already exited: ${tail()}`);
    process.kill(proc.pid, 'SIGTERM');
    const r = await waitExit(40_000);
    assert.ok(r, `realm-server did not exit within 40 s of SIGTERM: ${tail()}`);
    assert.deepEqual(r, { code: 0, signal: null }, tail());
  });
});
