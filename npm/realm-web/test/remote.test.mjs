// The remote engine (createEngine({ remote })) in Node against the real realm-server on the
// real model: clients/SCENARIOS.md S1-S6, and the rest of the RealmEngine interface. Imported
// by the package's own name, so the `exports` map's `node` condition is what is tested.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { createEngine, RealmError } from 'realm-web';
import { KEY, LIMITED_KEY, OwnServer, freePort, httpChat, running, server, until } from './harness.mjs';

const MSG = [{ role: 'user', content: 'Name three colours.' }];
/** Greedy counting goes on to max_tokens: a request that stays running until cancelled. */
const COUNTING = { prompt: '1, 2, 3, 4, 5, 6,', max_tokens: 2000, temperature: 0 };

let srv;
let engine;
before(async () => {
  srv = await server();
  engine = await createEngine({ remote: srv.ws, apiKey: KEY });
});
after(async () => {
  await engine?.unload();
  const code = await srv?.stop();
  assert.equal(code, 0, 'realm-server drained and exited 0');
});

async function collect(stream) {
  let text = '';
  let last = null;
  const ids = [];
  for await (const c of stream) {
    const ch = c.choices[0];
    text += ch.delta?.content ?? ch.text ?? '';
    ids.push(...ch.token_ids);
    last = c;
  }
  return { text, last, ids };
}

describe('scenarios (clients/SCENARIOS.md)', () => {
  test('S1: a streamed chat answer equals the whole answer for the same seed', async () => {
    const req = { messages: MSG, max_tokens: 24, seed: 7, temperature: 0.7 };
    const whole = await engine.chat.completions.create(req);
    const { text, last, ids } = await collect(await engine.chat.completions.create({ ...req, stream: true }));
    assert.ok(text.length > 0);
    assert.equal(text, whole.choices[0].message.content);
    assert.deepEqual(ids, whole.choices[0].token_ids);
    assert.equal(last.choices[0].finish_reason, whole.choices[0].finish_reason);
    assert.equal(last.usage.completion_tokens, whole.usage.completion_tokens);
    assert.equal(last.timings.predicted_n, whole.timings.predicted_n);
    // and the same as the server's own whole answer over HTTP
    const http = await httpChat(srv.url, req);
    assert.equal(http.choices[0].message.content, text);
  });

  test('S2: three concurrent requests on one connection', async () => {
    const reqs = [1, 2, 3].map((i) => ({ messages: [{ role: 'user', content: `Count to ${i + 2}.` }], max_tokens: 48, seed: i, temperature: 0.5 }));
    const streams = await Promise.all(reqs.map((r) => engine.chat.completions.create({ ...r, stream: true })));
    // All three accepted (created) and none finished: in flight together on the one connection.
    const info = await engine.info();
    assert.equal(info.engine.in_flight, 3);
    const got = await Promise.all(streams.map(collect));
    for (const [i, g] of got.entries()) {
      assert.ok(g.last.usage.completion_tokens > 0);
      const alone = await httpChat(srv.url, reqs[i]);
      assert.equal(g.text, alone.choices[0].message.content, `request ${i}`);
    }
  });

  test('S3: cancel mid-stream (AbortSignal) and the running count drops', async () => {
    const ac = new AbortController();
    const stream = await engine.completions.create({ ...COUNTING, stream: true, signal: ac.signal });
    let n = 0;
    await assert.rejects(
      (async () => {
        for await (const c of stream) {
          if (c.choices[0].token_ids.length && ++n === 3) {
            assert.ok((await running(srv.url)) >= 1);
            ac.abort();
          }
        }
      })(),
      (e) => e instanceof RealmError && e.code === 'aborted',
    );
    assert.equal(await until(() => running(srv.url), (v) => v === 0), 0);
    // the connection still serves
    const r = await engine.completions.create({ prompt: 'Hello', max_tokens: 2, temperature: 0 });
    assert.equal(r.usage.completion_tokens, 2);
  });

  test('S3: leaving the loop (break) cancels too', async () => {
    const stream = await engine.completions.create({ ...COUNTING, stream: true });
    let n = 0;
    for await (const c of stream) {
      if (c.choices[0].token_ids.length && ++n === 3) break;
    }
    assert.equal(await until(() => running(srv.url), (v) => v === 0), 0);
    assert.equal((await engine.info()).engine.in_flight, 0);
  });

  test('S4: a wrong key, and none, is the unauthorized error (401 invalid_api_key)', async () => {
    for (const apiKey of ['not-a-key', undefined]) {
      await assert.rejects(createEngine({ remote: srv.ws, apiKey, reconnect: { attempts: 3 } }), (e) => {
        assert.ok(e instanceof RealmError);
        assert.equal(e.code, 'unauthorized');
        assert.equal(e.status, 401);
        assert.equal(e.serverCode, 'invalid_api_key');
        return true;
      });
    }
  });

  test('S5: a tenant over its limit is the rate-limited error with its retry delay', async () => {
    const limited = await createEngine({ remote: srv.ws, apiKey: LIMITED_KEY });
    try {
      let refused = null;
      for (let i = 0; i < 3 && !refused; i++) {
        try {
          await limited.completions.create({ prompt: 'Hi', max_tokens: 1, temperature: 0 });
        } catch (e) {
          refused = e;
        }
      }
      assert.ok(refused instanceof RealmError, `refused within requests_per_minute + 1: ${refused}`);
      assert.equal(refused.code, 'rate-limited');
      assert.equal(refused.status, 429);
      assert.equal(refused.serverCode, 'rate_limit_exceeded');
      assert.ok(refused.retryAfter > 0 && refused.retryAfter <= 60, `retryAfter ${refused.retryAfter}`);
      // the connection stays open: the next request is refused the same way, not by a closed connection
      await assert.rejects(limited.chat.completions.create({ messages: MSG, max_tokens: 1 }), (e) => e.code === 'rate-limited');
      assert.equal((await limited.info()).engine.in_flight, 0);
    } finally {
      await limited.unload();
    }
  });

  test('S6: a server killed mid-stream is a clean connection error, and the engine reconnects', async () => {
    const port = await freePort();
    let own = await OwnServer.start(port);
    const e6 = await createEngine({ remote: `ws://127.0.0.1:${port}`, apiKey: KEY, reconnect: { attempts: 2, initialDelayMs: 100 } });
    try {
      const t0 = Date.now();
      const a = await e6.completions.create({ ...COUNTING, stream: true });
      // a whole answer, in flight too (its outcome kept, so its rejection is handled at once)
      const b = e6.completions.create({ ...COUNTING, max_tokens: 500 }).then(() => null, (e) => e);
      const it = a[Symbol.asyncIterator]();
      await it.next();
      await it.next();
      await own.kill();
      const isLost = (e) => e instanceof RealmError && e.code === 'connection' && e.closeCode === 1006;
      await assert.rejects(
        (async () => {
          for (;;) if ((await it.next()).done) break;
        })(),
        isLost,
      );
      assert.ok(isLost(await b), String(await b));
      // a new request finds no server: a network error after its retries, not a hang
      await assert.rejects(e6.chat.completions.create({ messages: MSG, max_tokens: 4 }), (e) => e.code === 'network');
      assert.ok(Date.now() - t0 < 10_000, `failed within 10 s (${Date.now() - t0} ms)`);
      // the server is back on the same address: the next request reconnects
      own = await OwnServer.start(port);
      const r = await e6.chat.completions.create({ messages: MSG, max_tokens: 4, temperature: 0 });
      assert.equal(r.usage.completion_tokens, 4);
    } finally {
      await e6.unload();
      assert.equal(await own.stop(), 0);
    }
  });
});

describe('the engine interface', () => {
  test('completions: text and token-id prompts, whole and streamed', async () => {
    const r = await engine.completions.create({ prompt: '1, 2, 3, 4,', max_tokens: 6, temperature: 0 });
    assert.equal(r.object, 'text_completion');
    assert.ok(r.choices[0].text.startsWith(' 5'), JSON.stringify(r.choices[0].text));
    const ids = await engine.tokenize('1, 2, 3, 4,', { addSpecial: false });
    const s = await collect(await engine.completions.create({ prompt: ids, max_tokens: 6, temperature: 0, stream: true }));
    assert.equal(s.text, r.choices[0].text);
    assert.equal(await engine.detokenize(s.ids), s.text);
  });

  test('stop strings, and the answer ends before them', async () => {
    const r = await engine.completions.create({ prompt: '1, 2, 3, 4,', max_tokens: 20, temperature: 0, stop: [' 7'] });
    assert.equal(r.choices[0].text, ' 5, 6,');
    assert.equal(r.choices[0].finish_reason, 'stop');
  });

  test('a request the server refuses names the field', async () => {
    await assert.rejects(engine.chat.completions.create({ messages: MSG, temperature: 5 }), (e) => {
      assert.equal(e.code, 'invalid-argument');
      assert.equal(e.status, 400);
      assert.equal(e.param, 'request.temperature');
      return true;
    });
    await assert.rejects(engine.chat.completions.create({ messages: 'hi' }), (e) => e.code === 'invalid-argument');
    await assert.rejects(engine.chat.completions.create({ messages: MSG, max_tokens: 'x' }), (e) => e.code === 'invalid-argument');
  });

  test('an unknown model is not-found', async () => {
    const other = await createEngine({ remote: srv.ws, apiKey: KEY, model: 'no-such-model' });
    try {
      await assert.rejects(other.chat.completions.create({ messages: MSG, max_tokens: 1 }), (e) => e.code === 'not-found' && e.status === 404);
    } finally {
      await other.unload();
    }
  });

  test('an aborted signal fails at once; unload fails later calls', async () => {
    const e2 = await createEngine({ remote: new URL(srv.url), apiKey: KEY });
    await assert.rejects(
      e2.chat.completions.create({ messages: MSG, signal: AbortSignal.abort() }),
      (e) => e.code === 'aborted',
    );
    const info = await e2.info();
    assert.equal(info.backend, 'remote');
    assert.equal(info.engine.protocol, 'realm.v1');
    await e2.unload();
    await assert.rejects(e2.chat.completions.create({ messages: MSG }), (e) => e.code === 'unloaded');
  });

  test('bad options are invalid-argument before any connection', async () => {
    await assert.rejects(createEngine({ remote: 'ftp://x' }), (e) => e.code === 'invalid-argument');
    await assert.rejects(createEngine({ remote: srv.ws, connectTimeoutMs: -1 }), (e) => e.code === 'invalid-argument');
    await assert.rejects(createEngine({ remote: srv.ws, apiKey: 5 }), (e) => e.code === 'invalid-argument');
  });
});

describe('structured output (the server applies the constraint)', () => {
  // An independent validator (Ajv, JSON Schema 2020-12, formats checked).
  const ajv = addFormats(new Ajv2020({ allErrors: true, strict: false }));
  const schemas = {
    person: {
      type: 'object',
      properties: {
        name: { type: 'string', maxLength: 40 },
        age: { type: 'integer', minimum: 0, maximum: 120 },
        tags: { type: 'array', items: { enum: ['a', 'b', 'c'] }, minItems: 1, maxItems: 3 },
      },
      required: ['name', 'age', 'tags'],
      additionalProperties: false,
    },
    event: {
      type: 'object',
      properties: { title: { type: 'string', maxLength: 40 }, date: { type: 'string', format: 'date' } },
      required: ['title', 'date'],
      additionalProperties: false,
    },
  };
  for (const [name, schema] of Object.entries(schemas)) {
    test(`json_schema (${name}): streamed and whole answers validate`, async () => {
      const validate = ajv.compile(schema);
      const req = {
        messages: [{ role: 'user', content: `Describe a ${name} as JSON.` }],
        max_tokens: 150,
        temperature: 0.7,
        seed: 3,
        response_format: { type: 'json_schema', json_schema: { name, schema } },
      };
      const whole = await engine.chat.completions.create(req);
      const { text } = await collect(await engine.chat.completions.create({ ...req, stream: true }));
      assert.equal(text, whole.choices[0].message.content);
      assert.equal(whole.choices[0].finish_reason, 'stop');
      const value = JSON.parse(text);
      assert.ok(validate(value), `${text}: ${JSON.stringify(validate.errors)}`);
    });
  }

  test('a regex and a GBNF grammar', async () => {
    const r = await engine.chat.completions.create({ messages: MSG, max_tokens: 20, regex: '(red|green|blue), (red|green|blue)' });
    assert.match(r.choices[0].message.content, /^(red|green|blue), (red|green|blue)$/);
    const g = await engine.completions.create({ prompt: 'Sum:', max_tokens: 30, temperature: 0.9, seed: 1, grammar: 'root ::= [1-9] [0-9]? (" + " [1-9] [0-9]?)*' });
    // whole when it ended by itself; cut by max_tokens, a prefix of a sum
    const sum = g.choices[0].finish_reason === 'stop' ? /^[1-9][0-9]?( \+ [1-9][0-9]?)*$/ : /^[1-9][0-9]?( \+ [1-9][0-9]?)*( \+ ?)?$/;
    assert.match(g.choices[0].text, sum);
  });

  test('an invalid schema, and two constraints, are invalid-argument', async () => {
    await assert.rejects(
      engine.chat.completions.create({ messages: MSG, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'nope' } } } }),
      (e) => e.code === 'invalid-argument' && e.status === 400 && e.param === 'request.response_format.json_schema.schema',
    );
    await assert.rejects(
      engine.chat.completions.create({ messages: MSG, regex: 'a', grammar: 'root ::= "a"' }),
      (e) => e.code === 'invalid-argument',
    );
  });
});
