// Bad input to the remote engine from a server: garbage frames, another protocol version,
// oversized messages, silence, a plain HTTP server. Each is a typed RealmError within a
// bounded time, never a hang or a crash. The "servers" here are scripted realm.v1 impostors
// on loopback (the `ws` package's server), since realm-server never sends such things.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { after, test } from 'node:test';
import { createEngine, RealmError } from 'realm-web';
import { WebSocketServer } from 'ws';

const HELLO = { type: 'hello', protocol: 'realm.v1', server: 'impostor', model: 'm', max_in_flight: 8, max_message_bytes: 65536, idle_timeout_s: 300 };
const opened = [];
after(() => {
  for (const s of opened) s.close();
});

/** A scripted server: `onConnection(ws, n)` for the n-th connection; `ws://127.0.0.1:PORT`. */
async function impostor(onConnection) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (p) => (p.has('realm.v1') ? 'realm.v1' : false) });
  let n = 0;
  wss.on('connection', (ws) => onConnection(ws, n++));
  await new Promise((r) => wss.on('listening', r));
  opened.push({ close: () => { for (const c of wss.clients) c.terminate(); wss.close(); } });
  return `ws://127.0.0.1:${wss.address().port}`;
}

/** Answer every request with `created`, then hand it to `then(ws, msg)`. */
function scripted(then, hello = HELLO) {
  return (ws) => {
    ws.send(JSON.stringify(hello));
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data));
      if (msg.type !== 'chat' && msg.type !== 'complete') return;
      ws.send(JSON.stringify({ type: 'created', id: msg.id, model: 'm', prompt_tokens: 3 }));
      ws.send(JSON.stringify({ type: 'delta', id: msg.id, index: 0, text: 'a', tokens: [1] }));
      then(ws, msg);
    });
  };
}

const isCode = (code) => (e) => {
  assert.ok(e instanceof RealmError, `a RealmError, not ${e}`);
  assert.equal(e.code, code, e.message);
  return true;
};

async function streamText(engine) {
  const s = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'x' }], stream: true });
  let t = '';
  for await (const c of s) t += c.choices[0].delta.content ?? '';
  return t;
}

test('a garbage (non-JSON) frame mid-stream fails the stream with protocol', async () => {
  const url = await impostor(scripted((ws) => ws.send('{"type": "delta", oops')));
  const e = await createEngine({ remote: url, reconnect: { attempts: 1 } });
  await assert.rejects(streamText(e), isCode('protocol'));
  await e.unload();
});

test('a binary frame fails the stream with protocol', async () => {
  const url = await impostor(scripted((ws) => ws.send(Buffer.from([1, 2, 3]))));
  const e = await createEngine({ remote: url, reconnect: { attempts: 1 } });
  await assert.rejects(streamText(e), isCode('protocol'));
  await e.unload();
});

test('a malformed delta fails the stream with protocol', async () => {
  const url = await impostor(scripted((ws, m) => ws.send(JSON.stringify({ type: 'delta', id: m.id, index: 0, tokens: 'x' }))));
  const e = await createEngine({ remote: url, reconnect: { attempts: 1 } });
  await assert.rejects(streamText(e), isCode('protocol'));
  await e.unload();
});

test('a message over maxMessageBytes fails with protocol', async () => {
  const big = 'x'.repeat(8192);
  const url = await impostor(scripted((ws, m) => ws.send(JSON.stringify({ type: 'delta', id: m.id, index: 0, text: big, tokens: [2] }))));
  const e = await createEngine({ remote: url, maxMessageBytes: 4096, reconnect: { attempts: 1 } });
  await assert.rejects(streamText(e), isCode('protocol'));
  await e.unload();
});

test('a message far over the limit (the WebSocket library ends the connection) is protocol too', async () => {
  const big = 'x'.repeat(64 * 1024);
  const url = await impostor(scripted((ws, m) => ws.send(JSON.stringify({ type: 'delta', id: m.id, index: 0, text: big, tokens: [2] }))));
  const e = await createEngine({ remote: url, maxMessageBytes: 4096, reconnect: { attempts: 1 } });
  await assert.rejects(streamText(e), isCode('protocol'));
  await e.unload();
});

test('another protocol version is refused with protocol', async () => {
  const url = await impostor(scripted(() => {}, { ...HELLO, protocol: 'realm.v2' }));
  await assert.rejects(createEngine({ remote: url }), isCode('protocol'));
});

test('a first message that is not hello is protocol', async () => {
  const url = await impostor((ws) => ws.send(JSON.stringify({ type: 'delta', id: 'r1', index: 0, text: '', tokens: [] })));
  await assert.rejects(createEngine({ remote: url }), isCode('protocol'));
});

test('an unknown error code from the server is internal, with its text', async () => {
  const url = await impostor(
    scripted((ws, m) => ws.send(JSON.stringify({ type: 'error', id: m.id, code: 'brand_new_code', message: 'later version' }))),
  );
  const e = await createEngine({ remote: url });
  await assert.rejects(streamText(e), (err) => isCode('internal')(err) && err.message === 'later version');
  await e.unload();
});

test('a server that never says hello times out with network', async () => {
  const url = await impostor(() => {});
  const t0 = Date.now();
  await assert.rejects(createEngine({ remote: url, connectTimeoutMs: 500, reconnect: { attempts: 2, initialDelayMs: 10 } }), isCode('network'));
  assert.ok(Date.now() - t0 < 5000);
});

test('a TCP server that never answers the handshake times out with network', async () => {
  const sockets = [];
  const tcp = createTcpServer((s) => sockets.push(s));
  await new Promise((r) => tcp.listen(0, '127.0.0.1', r));
  opened.push({ close: () => { for (const s of sockets) s.destroy(); tcp.close(); } });
  await assert.rejects(
    createEngine({ remote: `ws://127.0.0.1:${tcp.address().port}`, connectTimeoutMs: 500, reconnect: { attempts: 1 } }),
    isCode('network'),
  );
});

test('a plain HTTP server (no WebSocket) is a network error that says so', async () => {
  const http = createServer((_req, res) => res.end('{"data":[]}'));
  await new Promise((r) => http.listen(0, '127.0.0.1', r));
  opened.push({ close: () => http.close() });
  await assert.rejects(createEngine({ remote: `ws://127.0.0.1:${http.address().port}`, reconnect: { attempts: 1 } }), (e) =>
    isCode('network')(e) && /answers HTTP/.test(e.message),
  );
});

test('a connection closed as idle (4002) before the request was accepted: sent again on a new one', async () => {
  let connections = 0;
  const url = await impostor((ws, n) => {
    connections++;
    ws.send(JSON.stringify(HELLO));
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data));
      if (n === 0) return ws.close(4002, 'idle');
      ws.send(JSON.stringify({ type: 'created', id: msg.id, model: 'm', prompt_tokens: 3 }));
      ws.send(JSON.stringify({ type: 'delta', id: msg.id, index: 0, text: 'ok', tokens: [5] }));
      const usage = { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4, prompt_tokens_details: { cached_tokens: 0 } };
      ws.send(JSON.stringify({ type: 'done', id: msg.id, choices: [{ index: 0, finish_reason: 'stop', timings: {} }], usage }));
    });
  });
  const e = await createEngine({ remote: url, reconnect: { initialDelayMs: 10 } });
  assert.equal(await streamText(e), 'ok');
  assert.equal(connections, 2);
  await e.unload();
});

test('the connection lost after the request was accepted is not retried: connection', async () => {
  let connections = 0;
  const url = await impostor((ws, n) => {
    connections++;
    scripted((w) => w.terminate())(ws, n);
  });
  const e = await createEngine({ remote: url, reconnect: { attempts: 1 } });
  await assert.rejects(streamText(e), (err) => isCode('connection')(err) && err.closeCode === 1006);
  assert.equal(connections, 1);
  await e.unload();
});
