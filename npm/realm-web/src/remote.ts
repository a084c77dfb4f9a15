/** The remote engine: the `RealmEngine` interface over realm-server's WebSocket protocol
 * (native-server/PROTOCOL.md, `realm.v1`). One connection carries every request of the engine
 * at once, each under its own id; a dropped connection fails the requests in flight on it
 * (`connection`, with the close code) and the next request reconnects, with backoff. */

import { RealmError, fromServerError } from './errors.js';
import type { Prompt } from './protocol.js';
import { StepEngine, samplingOptions, type Step } from './shape.js';
import { loadSocket, type SocketImpl } from './socket.js';
import { AsyncQueue } from './stream.js';
import type {
  EngineInfo,
  FinishReason,
  RealmEngine,
  RemoteEngineOptions,
  SamplingOptions,
  Timings,
  TokenizeOptions,
  Usage,
  WebSocketLike,
} from './types.js';

const PROTOCOL = 'realm.v1';
/** Close code this client sends when the server's messages cannot be read (the server's own
 * code for the same, PROTOCOL.md "Close codes"). Browsers allow only 1000 and 3000–4999. */
const CLOSE_PROTOCOL_ERROR = 4003;

/** The server's first message. */
export interface Hello {
  protocol: string;
  server: string;
  model: string;
  max_in_flight: number;
  max_message_bytes: number;
  idle_timeout_s: number;
}

interface Target {
  /** The WebSocket URL, without the key. */
  ws: string;
  /** The server's HTTP base (for `/tokenize`, `/detokenize`, and telling why a handshake was
   * refused). */
  http: string;
}

interface Settings {
  key: string | undefined;
  model: string | undefined;
  connectTimeoutMs: number;
  attempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
  maxMessageBytes: number;
  socket: () => Promise<SocketImpl>;
}

export async function createRemoteEngine(opts: RemoteEngineOptions): Promise<RealmEngine> {
  const target = parseTarget(opts.remote);
  const int = (v: unknown, name: string, min: number, max: number, dflt: number) => {
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new RealmError('invalid-argument', `${name} must be an integer in [${min}, ${max}], not ${JSON.stringify(v)}`);
    }
    return v;
  };
  if (opts.apiKey !== undefined && typeof opts.apiKey !== 'string') {
    throw new RealmError('invalid-argument', 'apiKey must be a string');
  }
  if (opts.model !== undefined && typeof opts.model !== 'string') {
    throw new RealmError('invalid-argument', 'model must be a string (the name the server serves the model under)');
  }
  if (opts.WebSocket !== undefined && typeof opts.WebSocket !== 'function') {
    throw new RealmError('invalid-argument', 'WebSocket must be a WebSocket constructor');
  }
  const r = opts.reconnect ?? {};
  const custom = opts.WebSocket;
  const settings: Settings = {
    key: opts.apiKey || undefined,
    model: opts.model || undefined,
    connectTimeoutMs: int(opts.connectTimeoutMs, 'connectTimeoutMs', 1, 600_000, 10_000),
    attempts: int(r.attempts, 'reconnect.attempts', 1, 100, 5),
    initialDelayMs: int(r.initialDelayMs, 'reconnect.initialDelayMs', 0, 60_000, 250),
    maxDelayMs: int(r.maxDelayMs, 'reconnect.maxDelayMs', 0, 600_000, 4_000),
    maxMessageBytes: int(opts.maxMessageBytes, 'maxMessageBytes', 1024, 2 ** 30, 16 * 2 ** 20),
    socket: custom ? async () => ({ ctor: custom, nodeOptions: false }) : loadSocket,
  };
  const engine = new RemoteEngine(target, settings);
  await engine.connection();
  return engine;
}

/** `ws://host:port[/base]` (or `wss://`, `http://`, `https://`): the WebSocket URL (path
 * `/v1/ws` unless given) and the HTTP base beside it. */
function parseTarget(remote: unknown): Target {
  let url: URL;
  try {
    url = new URL(String(remote), (globalThis as { location?: { href: string } }).location?.href);
  } catch {
    throw new RealmError('invalid-argument', `remote must be a ws:// or wss:// URL, not ${JSON.stringify(String(remote))}`);
  }
  const scheme = { 'ws:': 'ws:', 'http:': 'ws:', 'wss:': 'wss:', 'https:': 'wss:' }[url.protocol];
  if (!scheme) throw new RealmError('invalid-argument', `remote must be a ws:// or wss:// URL, not ${url.protocol}//…`);
  let path = url.pathname.replace(/\/+$/, '');
  if (!path.endsWith('/v1/ws')) path += '/v1/ws';
  const base = path.slice(0, -'/v1/ws'.length);
  const ws = `${scheme}//${url.host}${path}${url.search}`;
  const http = `${scheme === 'wss:' ? 'https:' : 'http:'}//${url.host}${base}`;
  return { ws, http };
}

/** What a request on a connection is told. */
interface Handler {
  created(): void;
  delta(index: number, text: string, tokens: number[]): void;
  done(finish: string, usage: Usage, timings: Timings | undefined): void;
  /** The server's `error` for this request, or the connection's end. */
  failed(e: RealmError): void;
}

/** One `realm.v1` connection: requests by id, messages routed to them, the end failing them. */
class Connection {
  private readonly pending = new Map<string, Handler>();
  private nextId = 1;
  /** Why the connection ended (set once). */
  ended: RealmError | null = null;

  private constructor(
    private readonly ws: WebSocketLike,
    readonly hello: Hello,
    private readonly maxMessageBytes: number,
  ) {}

  /** Connect and wait for the server's `hello`. A refused or failed handshake is told apart by
   * asking the server's HTTP side why (a browser's WebSocket does not say). */
  static async open(target: Target, s: Settings): Promise<Connection> {
    const impl = await s.socket();
    let url = target.ws;
    let options: unknown;
    if (impl.nodeOptions) {
      options = {
        headers: s.key ? { Authorization: `Bearer ${s.key}` } : {},
        // Bytes, where maxMessageBytes is checked in characters (up to 4 bytes each in UTF-8):
        // a larger message still ends the connection (a `protocol` error, below).
        maxPayload: s.maxMessageBytes * 4 + 1024,
        handshakeTimeout: s.connectTimeoutMs,
      };
    } else if (s.key) {
      url += `${url.includes('?') ? '&' : '?'}api_key=${encodeURIComponent(s.key)}`;
    }
    let ws: WebSocketLike;
    try {
      ws = options === undefined ? new impl.ctor(url, [PROTOCOL]) : new impl.ctor(url, [PROTOCOL], options);
    } catch (e) {
      throw new RealmError('invalid-argument', `cannot open a WebSocket to ${target.ws}: ${(e as Error)?.message ?? e}`);
    }
    ws.binaryType = 'arraybuffer';
    return new Promise<Connection>((resolve, reject) => {
      let settled = false;
      const settle = (f: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        f();
      };
      const timer = setTimeout(() => {
        settle(() => reject(new RealmError('network', `no answer from ${target.ws} within ${s.connectTimeoutMs} ms`)));
        try {
          ws.close();
        } catch {
          // already closing
        }
      }, s.connectTimeoutMs);
      ws.onerror = () => {
        // A close event follows; it says more.
      };
      ws.onclose = (ev) => {
        if (settled) return;
        const code = ev.code;
        // The handshake failed, or the connection ended before `hello`.
        whyRefused(target, s.key).then(
          (e) =>
            settle(() =>
              reject(
                e ??
                  new RealmError(
                    'network',
                    `cannot connect to ${target.ws} (WebSocket closed with ${code}${ev.reason ? `: ${ev.reason}` : ''}): ` +
                      'the server may be down or unreachable' +
                      (impl.nodeOptions
                        ? ''
                        : "; in a browser, a refused key looks the same unless the server allows this page's " +
                          'origin (realm-server --cors-origin)'),
                    { closeCode: code },
                  ),
              ),
            ),
          () => undefined,
        );
      };
      ws.onmessage = (ev) => {
        if (settled) return;
        const msg = parseMessage(ev.data, s.maxMessageBytes);
        if (msg instanceof RealmError || msg.type !== 'hello' || !isHello(msg)) {
          const e =
            msg instanceof RealmError
              ? msg
              : new RealmError('protocol', `the server's first message is not a realm.v1 hello: ${describe(msg)}`);
          settle(() => reject(e));
          closeQuietly(ws, CLOSE_PROTOCOL_ERROR, 'protocol error');
          return;
        }
        if (msg.protocol !== PROTOCOL || (ws.protocol && ws.protocol !== PROTOCOL)) {
          settle(() =>
            reject(
              new RealmError(
                'protocol',
                `the server speaks ${JSON.stringify(msg.protocol || ws.protocol)}, this client ${PROTOCOL}: ` +
                  'use a realm-web version that matches the server',
              ),
            ),
          );
          closeQuietly(ws, 1000, 'unsupported protocol');
          return;
        }
        settle(() => resolve(new Connection(ws, msg, s.maxMessageBytes)));
      };
    }).then((c) => {
      c.listen();
      return c;
    });
  }

  private listen(): void {
    let lastError = '';
    this.ws.onerror = (ev) => {
      lastError = String((ev as { message?: unknown; error?: { message?: unknown } })?.message ?? '');
    };
    this.ws.onmessage = (ev) => this.receive(ev.data);
    this.ws.onclose = (ev) => {
      // The `ws` package ends a connection itself on a message over its maxPayload.
      if (/max payload/i.test(lastError)) {
        this.end(new RealmError('protocol', `the server sent a message over this client's limit (${lastError})`));
      } else this.end(closeError(ev.code, ev.reason));
    };
  }

  /** Send a request; its messages go to `h`. Throws when the connection has ended or the
   * request is larger than the server reads. */
  request(type: 'chat' | 'complete', body: Record<string, unknown>, h: Handler): string {
    if (this.ended) throw this.ended;
    const id = `r${this.nextId++}`;
    const text = JSON.stringify({ type, id, request: body });
    const bytes = new TextEncoder().encode(text).length;
    if (bytes > this.hello.max_message_bytes) {
      throw new RealmError(
        'invalid-argument',
        `the request is ${bytes} bytes; the server reads messages of at most ${this.hello.max_message_bytes}`,
      );
    }
    this.pending.set(id, h);
    try {
      this.ws.send(text);
    } catch (e) {
      this.pending.delete(id);
      throw new RealmError('connection', `the connection to the server failed: ${(e as Error)?.message ?? e}`);
    }
    return id;
  }

  /** Ask the server to stop a request; its `done` still comes (and is ignored by a muted
   * handler). */
  cancel(id: string): void {
    if (this.ended || !this.pending.has(id)) return;
    try {
      this.ws.send(JSON.stringify({ type: 'cancel', id }));
    } catch {
      // the close that follows fails the request
    }
  }

  get inFlight(): number {
    return this.pending.size;
  }

  close(reason: RealmError): void {
    this.end(reason);
    closeQuietly(this.ws, 1000, 'client closed');
  }

  private end(e: RealmError): void {
    if (this.ended) return;
    this.ended = e;
    const hs = [...this.pending.values()];
    this.pending.clear();
    for (const h of hs) h.failed(e);
  }

  /** The server broke the protocol: fail everything and close. */
  private broken(e: RealmError): void {
    this.end(e);
    closeQuietly(this.ws, CLOSE_PROTOCOL_ERROR, 'protocol error');
  }

  private receive(data: unknown): void {
    if (this.ended) return;
    const msg = parseMessage(data, this.maxMessageBytes);
    if (msg instanceof RealmError) return this.broken(msg);
    const id = typeof msg.id === 'string' ? msg.id : undefined;
    const h = id === undefined ? undefined : this.pending.get(id);
    switch (msg.type) {
      case 'created':
        h?.created();
        return;
      case 'delta': {
        if (typeof msg.text !== 'string' || !isIdList(msg.tokens) || typeof msg.index !== 'number') {
          return this.broken(new RealmError('protocol', `a malformed delta from the server: ${describe(msg)}`));
        }
        h?.delta(msg.index, msg.text, msg.tokens);
        return;
      }
      case 'done': {
        const choices = msg.choices;
        if (!Array.isArray(choices) || !isUsage(msg.usage)) {
          return this.broken(new RealmError('protocol', `a malformed done from the server: ${describe(msg)}`));
        }
        if (id !== undefined) this.pending.delete(id);
        const first = choices.find((c) => (c as { index?: unknown })?.index === 0) as
          | { finish_reason?: unknown; timings?: unknown }
          | undefined;
        const finish = typeof first?.finish_reason === 'string' ? first.finish_reason : 'stop';
        const timings = first?.timings && typeof first.timings === 'object' ? (first.timings as Timings) : undefined;
        h?.done(finish, msg.usage, timings);
        return;
      }
      case 'error': {
        // Without an id: about a message of ours the server could not read; this client sends
        // none such, and there is no request to tell, so it is dropped.
        if (id === undefined || !h) return;
        this.pending.delete(id);
        h.failed(fromServerError(msg as { code?: unknown; message?: unknown; param?: unknown; retry_after_s?: unknown }));
        return;
      }
      default:
        // `pong`, `hello` again, or a message type of a later server: ignored.
        return;
    }
  }
}

type Message = Record<string, unknown> & { type: string };

/** One text frame as a message, or why it is not one. */
function parseMessage(data: unknown, maxBytes: number): Message | RealmError {
  if (typeof data !== 'string') {
    return new RealmError('protocol', 'the server sent a binary frame (realm.v1 has only JSON text frames)');
  }
  if (data.length > maxBytes) {
    return new RealmError('protocol', `the server sent a message of over ${maxBytes} bytes (maxMessageBytes)`);
  }
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    return new RealmError('protocol', `the server sent a message that is not JSON: ${JSON.stringify(data.slice(0, 80))}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v) || typeof (v as { type?: unknown }).type !== 'string') {
    return new RealmError('protocol', `the server sent a message without a type: ${JSON.stringify(data.slice(0, 80))}`);
  }
  return v as Message;
}

function isHello(m: Message): m is Message & Hello {
  return (
    typeof m.protocol === 'string' &&
    typeof m.model === 'string' &&
    typeof m.max_in_flight === 'number' &&
    typeof m.max_message_bytes === 'number'
  );
}

function isIdList(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((t) => Number.isInteger(t) && t >= 0);
}

function isUsage(v: unknown): v is Usage {
  const u = v as Partial<Usage> | null;
  return (
    u !== null &&
    typeof u === 'object' &&
    typeof u.prompt_tokens === 'number' &&
    typeof u.completion_tokens === 'number' &&
    typeof u.total_tokens === 'number'
  );
}

function describe(m: unknown): string {
  const s = JSON.stringify(m) ?? String(m);
  return s.length > 120 ? `${s.slice(0, 120)}…` : s;
}

function closeQuietly(ws: WebSocketLike, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // already closed
  }
}

/** The error requests in flight get when the connection ends (PROTOCOL.md, "Writing a
 * client"). */
function closeError(code: number, reason: string): RealmError {
  const why: Record<number, string> = {
    1000: 'the connection was closed',
    1001: 'the server is going away (shutting down); a new request reconnects',
    1006: 'the connection to the server was lost',
    1009: 'a message was too large for the server',
    4001: 'the server closed a connection that read too slowly',
    4002: 'the server closed the connection after it was idle',
    4003: "the server could not read this client's messages",
  };
  const text = why[code] ?? 'the server closed the connection';
  return new RealmError('connection', `${text} (close code ${code}${reason ? `: ${reason}` : ''})`, {
    closeCode: code,
  });
}

/** Why a handshake failed, from the server's HTTP side: its error for the same key (401
 * `unauthorized`, 503 `overloaded` / `shutting-down`, …), or undefined when that cannot be
 * told (the server is unreachable, or a browser may not read the answer: no CORS). */
async function whyRefused(target: Target, key: string | undefined): Promise<RealmError | undefined> {
  if (typeof fetch !== 'function') return undefined;
  try {
    const r = await fetch(`${target.http}/v1/models`, {
      headers: key ? { Authorization: `Bearer ${key}` } : {},
      signal: AbortSignal.timeout(5000),
    });
    if (r.ok) {
      return new RealmError(
        'network',
        `the WebSocket handshake with ${target.ws} failed, though the server answers HTTP: ` +
          'is a proxy in between that does not pass WebSocket upgrades?',
      );
    }
    const body = (await r.json().catch(() => null)) as { error?: Record<string, unknown> } | null;
    const retry = Number(r.headers.get('retry-after'));
    return fromServerError(
      body?.error ?? { code: r.status === 401 ? 'invalid_api_key' : 'internal', message: `HTTP ${r.status}` },
      r.status,
      Number.isFinite(retry) && retry > 0 ? retry : undefined,
    );
  } catch {
    return undefined;
  }
}

const RETRYABLE = new Set(['network', 'connection', 'overloaded', 'shutting-down']);

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

class RemoteEngine extends StepEngine {
  private conn: Connection | null = null;
  private connecting: Promise<Connection> | null = null;
  private unloaded: RealmError | null = null;
  private lastHello: Hello | null = null;

  constructor(
    private readonly target: Target,
    private readonly s: Settings,
  ) {
    super();
  }

  protected modelName(): string {
    return this.s.model ?? this.lastHello?.model ?? 'remote';
  }

  /** The open connection, or a new one (with backoff: the connection could not be made or
   * was lost; a refused key or another protocol fails at once). */
  async connection(): Promise<Connection> {
    if (this.unloaded) throw this.unloaded;
    if (this.conn && !this.conn.ended) return this.conn;
    this.connecting ??= this.connect().finally(() => (this.connecting = null));
    return this.connecting;
  }

  private async connect(): Promise<Connection> {
    let delay = this.s.initialDelayMs;
    for (let attempt = 1; ; attempt++) {
      try {
        const c = await Connection.open(this.target, this.s);
        if (this.unloaded) {
          c.close(this.unloaded);
          throw this.unloaded;
        }
        this.conn = c;
        this.lastHello = c.hello;
        return c;
      } catch (e) {
        const err = e instanceof RealmError ? e : new RealmError('network', String(e));
        if (!RETRYABLE.has(err.code) || attempt >= this.s.attempts || this.unloaded) throw err;
        // The server's own delay where it gave one (503 with Retry-After), else the backoff.
        const wait = err.retryAfter !== undefined ? Math.min(err.retryAfter * 1000, this.s.maxDelayMs) : delay;
        await sleep(wait * (0.5 + Math.random() * 0.5));
        delay = Math.min(Math.max(1, delay * 2), this.s.maxDelayMs);
      }
    }
  }

  protected async start(prompt: Prompt, req: SamplingOptions): Promise<AsyncQueue<Step>> {
    const opts = samplingOptions(req);
    delete opts.n_ctx; // the server's context (-c) applies
    delete opts.constraint; // the server reads the request's own fields
    const body: Record<string, unknown> = { ...opts };
    for (const k of ['response_format', 'grammar', 'lark', 'regex'] as const) {
      if (req[k] !== undefined && req[k] !== null) body[k] = req[k];
    }
    if (this.s.model) body.model = this.s.model;
    let type: 'chat' | 'complete';
    if (prompt.kind === 'chat') {
      type = 'chat';
      body.messages = prompt.messages;
    } else {
      type = 'complete';
      body.prompt = prompt.kind === 'text' ? prompt.text : prompt.ids;
    }
    // A request the server never started (the connection closed before `created`, as an idle
    // or shutting-down server does) is sent once more on a new connection.
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.send(type, body, req.signal);
      } catch (e) {
        // What `send` throws came before `created`: the server had not started the request.
        const safe = e instanceof RealmError && e.code === 'connection' && (e.closeCode === 1001 || e.closeCode === 4002);
        if (!safe || attempt >= 1) throw e;
      }
    }
  }

  private async send(type: 'chat' | 'complete', body: Record<string, unknown>, signal?: AbortSignal): Promise<AsyncQueue<Step>> {
    const aborted = () => new RealmError('aborted', 'the request was aborted');
    if (signal?.aborted) throw aborted();
    const conn = await this.connection();
    if (signal?.aborted) throw aborted();
    const q = new AsyncQueue<Step>();
    let started = false;
    let muted = false;
    let accept: () => void = () => {};
    let refuse: (e: RealmError) => void = () => {};
    const created = new Promise<void>((res, rej) => {
      accept = res;
      refuse = rej;
    });
    const cleanup = () => signal?.removeEventListener('abort', onAbort);
    const id = conn.request(type, body, {
      created: () => {
        started = true;
        accept();
      },
      delta: (index, text, tokens) => {
        if (muted || index !== 0) return;
        if (tokens.length === 0) q.push({ kind: 'token', token: null, text });
        tokens.forEach((t, i) => q.push({ kind: 'token', token: t, text: i === 0 ? text : '' }));
      },
      done: (finish, usage, timings) => {
        cleanup();
        if (muted) return;
        if (finish === 'cancelled') {
          // Not by this client (its cancels mute first): the server's drain timeout.
          q.fail(new RealmError('shutting-down', 'the server cancelled the request: it was shutting down'));
          return;
        }
        const f: FinishReason = finish === 'length' ? 'length' : 'stop';
        const u: Usage = {
          prompt_tokens: usage.prompt_tokens,
          completion_tokens: usage.completion_tokens,
          total_tokens: usage.total_tokens,
          prompt_tokens_details: { cached_tokens: usage.prompt_tokens_details?.cached_tokens ?? 0 },
        };
        q.push({ kind: 'done', finish: f, usage: u, ...(timings ? { timings } : {}) });
        q.end();
      },
      failed: (e) => {
        cleanup();
        if (!started) refuse(e);
        else if (!muted) q.fail(e);
      },
    });
    const stop = () => {
      muted = true;
      conn.cancel(id);
    };
    function onAbort() {
      stop();
      q.fail(aborted());
      refuse(aborted());
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    q.onAbandon = stop;
    await created;
    return q;
  }

  async tokenize(text: string, opts: TokenizeOptions = {}): Promise<number[]> {
    if (typeof text !== 'string') throw new RealmError('invalid-argument', 'text must be a string');
    const r = await this.post<{ tokens: number[] }>('/tokenize', {
      content: text,
      add_special: opts.addSpecial ?? true,
      parse_special: opts.special ?? false,
    });
    if (!isIdList(r.tokens)) throw new RealmError('protocol', 'the server answered /tokenize without token ids');
    return r.tokens;
  }

  async detokenize(ids: number[], _opts: { special?: boolean } = {}): Promise<string> {
    if (!isIdList(ids)) throw new RealmError('invalid-argument', 'ids must be an array of token ids');
    const r = await this.post<{ content: string }>('/detokenize', { tokens: ids });
    if (typeof r.content !== 'string') throw new RealmError('protocol', 'the server answered /detokenize without content');
    return r.content;
  }

  /** A POST to the server's HTTP side (in a browser on another origin, the server must allow
   * the page's origin: `--cors-origin`). */
  private async post<T>(path: string, body: unknown): Promise<T> {
    if (this.unloaded) throw this.unloaded;
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (this.s.key) headers.Authorization = `Bearer ${this.s.key}`;
    let r: Response;
    try {
      r = await fetch(`${this.target.http}${path}`, {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.s.connectTimeoutMs * 3),
      });
    } catch (e) {
      throw new RealmError(
        'network',
        `POST ${this.target.http}${path} failed: ${(e as Error)?.message ?? e} ` +
          "(in a browser on another origin the server must allow the page's origin: realm-server --cors-origin)",
      );
    }
    const v = (await r.json().catch(() => null)) as (T & { error?: Record<string, unknown> }) | null;
    if (!r.ok || v === null) {
      const retry = Number(r.headers.get('retry-after'));
      throw fromServerError(
        v?.error ?? { code: 'internal', message: `HTTP ${r.status} from ${path}` },
        r.status,
        Number.isFinite(retry) && retry > 0 ? retry : undefined,
      );
    }
    return v;
  }

  async info(): Promise<EngineInfo> {
    const c = await this.connection();
    return {
      backend: 'remote',
      requested: 'remote',
      reason: `realm-server at ${this.target.ws}`,
      variant: c.hello.server,
      abortMidAnswer: true,
      engine: { ...c.hello, url: this.target.ws, in_flight: c.inFlight },
    };
  }

  async unload(): Promise<void> {
    this.unloaded ??= new RealmError('unloaded', 'the engine was unloaded: create a new one');
    this.conn?.close(this.unloaded);
    this.conn = null;
  }
}
