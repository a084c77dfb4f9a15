/** The public, OpenAI-shaped types of the engine. */

import type { ChatMessage } from './protocol.js';

export type { ChatMessage };

export type ModelSource = string | URL | ArrayBuffer | Uint8Array | Blob;

export interface LoadProgress {
  /** `download`: model bytes arriving from the network; `cache`: read from the browser's model
   * cache (Cache Storage) instead; `read`: from a Blob/File or bytes; `verify`: checking
   * `sha256`; `compile`: the WebAssembly module (first: the bytes are written straight into
   * its memory); `load`: parsing the model and preparing its weights for the CPU engine;
   * `upload`: copying the weights into GPU buffers (WebGPU). */
  phase: 'compile' | 'download' | 'cache' | 'read' | 'verify' | 'load' | 'upload';
  loaded: number;
  /** 0 when unknown (a download without Content-Length). */
  total: number;
}

/** The model here, in a Worker. */
export interface LocalEngineOptions {
  model: ModelSource;
  remote?: undefined;
  /** `auto` (default): the GPU through WebGPU where the browser has a usable adapter, else
   * the WebAssembly CPU engine (`info().reason` says which and why); `webgpu`: the GPU or a
   * `webgpu-unavailable` error; `wasm`: the CPU engine. */
  device?: 'auto' | 'webgpu' | 'wasm';
  /** CPU engine threads, this Worker's included. Above 1 loads the threads build, which needs
   * a cross-origin isolated page (COOP/COEP headers); elsewhere 1 is used and `info().variant`
   * says why. Default: up to 4 (`navigator.hardwareConcurrency`) when isolated, else 1. */
  threads?: number;
  /** The WebAssembly build. `auto` (default): the Memory64 (wasm64) build when a CPU model is
   * too big for wasm32's 4 GiB memory and the browser has Memory64; else the wasm32 build with
   * relaxed SIMD (threads when isolated), or without it (`compat`, one thread) where the
   * browser lacks relaxed SIMD. `wasm32`, `compat`, `memory64` force one. */
  wasmBuild?: 'auto' | 'wasm32' | 'compat' | 'memory64';
  onProgress?: (p: LoadProgress) => void;
  /** Expected SHA-256 of the model file (hex). Checked with SubtleCrypto before the model is
   * used or cached; a mismatch is `RealmError` `integrity`. */
  sha256?: string;
  /** Keep URL models in Cache Storage (default true): the next load with the same URL makes no
   * request, and a cut-off download resumes with a Range request. */
  cache?: boolean;
  /** Where the engine's Worker script is (for bundlers that move files); default: next to
   * this module. */
  workerUrl?: string | URL;
  /** The `model` field of responses; default: the file name of a URL, else `local`. */
  modelName?: string;
}

/** The model on a realm-server, over its WebSocket protocol (`realm.v1`, one connection for
 * every request of this engine). In Node (>= 20) the package uses the `ws` package when it is
 * installed (the key then goes in an `Authorization` header), else the global `WebSocket`. */
export interface RemoteEngineOptions {
  /** The server: `ws://host:port` or `wss://…` (an `http(s)://` address is taken as the same
   * server); the path defaults to `/v1/ws`. */
  remote: string | URL;
  /** The server's API key, if it has keys. A browser's WebSocket cannot send headers, so there
   * it travels as the `api_key` query parameter of the WebSocket URL. */
  apiKey?: string;
  /** The model to ask for, when the server serves it under several names; default: the
   * server's model. Also the `model` field of responses. */
  model?: string;
  /** A WebSocket implementation (a constructor as the browser's); default: the environment's. */
  WebSocket?: WebSocketConstructor;
  /** How long to wait for a connection (handshake and the server's `hello`), ms. Default 10000. */
  connectTimeoutMs?: number;
  /** Reconnecting when the connection has dropped: tries in all (default 5, 1 = no retry),
   * the first delay and the most between tries, ms (defaults 250 and 4000, doubling, with
   * jitter). Only a connection that could not be made or was lost is retried; a refused key
   * or a protocol mismatch fails at once. */
  reconnect?: { attempts?: number; initialDelayMs?: number; maxDelayMs?: number };
  /** The largest server message accepted, bytes (default 16 MiB); a larger one is a
   * `protocol` error. */
  maxMessageBytes?: number;
}

/** The part of the WebSocket API the remote engine uses (the browser's, Node's, the `ws`
 * package's). */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  binaryType: string;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[], options?: unknown) => WebSocketLike;

export type CreateEngineOptions = LocalEngineOptions | RemoteEngineOptions;

export interface SamplingOptions {
  /** Default (the engine's, as llama.cpp): as many as fit in the context. */
  max_tokens?: number;
  /** 0 = greedy. Default 0.8. */
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  stop?: string | string[];
  seed?: number;
  /** Most positions (prompt + answer) the request may use; default min(4096, trained context).
   * The Worker engine's alone: a remote engine's context is the server's (`-c`). */
  n_ctx?: number;
  signal?: AbortSignal;
  /** Structured output, as OpenAI's: `{ type: 'json_object' }`, or `{ type: 'json_schema',
   * json_schema: { name, schema } }` (the answer is JSON valid under `schema`). */
  response_format?: ResponseFormat;
  /** Extensions (realm-server's, llama-server's `grammar`), at most one constraint in all:
   * a GBNF grammar (`root ::= …`), */
  grammar?: string;
  /** a grammar in llguidance's Lark dialect (`start: …`), */
  lark?: string;
  /** a regular expression the whole answer matches. */
  regex?: string;
}

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; json_schema: { name?: string; description?: string; schema: Record<string, unknown> | boolean; strict?: boolean } };

export interface ChatCompletionRequest extends SamplingOptions {
  messages: ChatMessage[];
  stream?: boolean;
}

/** Text completion (OpenAI's legacy `completions`): the prompt is continued as is, special
 * tokens written in it are parsed; token ids are taken verbatim. */
export interface CompletionRequest extends SamplingOptions {
  prompt: string | number[];
  stream?: boolean;
}

export type FinishReason = 'stop' | 'length';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** As OpenAI: `cached_tokens` are prompt tokens whose KV entries the engine kept from the
   * previous request (a conversation's earlier turns), so they were not computed again. */
  prompt_tokens_details: { cached_tokens: number };
}

/** A request's timings as realm-server reports them (llama-server's names, and Realm's
 * queue and first-token times), ms: on the last chunk and on whole answers of the remote
 * engine. */
export interface Timings {
  queue_ms?: number;
  prompt_n?: number;
  cache_n?: number;
  prompt_ms?: number;
  ttft_ms?: number;
  predicted_n?: number;
  predicted_ms?: number;
  predicted_per_second?: number;
  [k: string]: number | undefined;
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: Array<{
    index: 0;
    delta: { role?: 'assistant'; content?: string };
    finish_reason: FinishReason | null;
    logprobs: null;
    /** The token ids this chunk carries (a Realm extension, as vLLM's `token_ids`). */
    token_ids: number[];
  }>;
  /** On the last chunk. */
  usage?: Usage;
  /** On the last chunk, from a remote engine. */
  timings?: Timings;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: Array<{
    index: 0;
    message: { role: 'assistant'; content: string };
    finish_reason: FinishReason;
    logprobs: null;
    token_ids: number[];
  }>;
  usage: Usage;
  /** From a remote engine. */
  timings?: Timings;
}

export interface CompletionChunk {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: Array<{ index: 0; text: string; finish_reason: FinishReason | null; logprobs: null; token_ids: number[] }>;
  usage?: Usage;
  timings?: Timings;
}

export type Completion = CompletionChunk & { usage: Usage };

export interface EngineInfo {
  /** The backend in use: `remote` for a realm-server. */
  backend: 'webgpu' | 'wasm' | 'remote';
  /** What was asked for, and why `backend` was chosen. */
  requested: 'auto' | 'webgpu' | 'wasm' | 'remote';
  reason: string;
  /** The WebAssembly build that runs (baseline or threads) and why it was chosen. */
  variant: string;
  /** Whether the Worker can be stopped mid-answer (WebGPU, or a cross-origin isolated page). */
  abortMidAnswer: boolean;
  /** The engine's own report: CPU code paths, the model's shape, the module's build; for a
   * remote engine, the server's `hello` (protocol, server, model, limits) and its URL. */
  engine: Record<string, unknown>;
}

export interface TokenizeOptions {
  /** Add BOS/EOS where the model asks. Default true. */
  addSpecial?: boolean;
  /** Parse special-token text such as `<|im_start|>`. Default false. */
  special?: boolean;
}

/** One interface for every engine: the Worker engine and the remote (realm-server) engine. */
export interface RealmEngine {
  chat: {
    completions: {
      create(req: ChatCompletionRequest & { stream: true }): Promise<AsyncIterable<ChatCompletionChunk>>;
      create(req: ChatCompletionRequest & { stream?: false }): Promise<ChatCompletion>;
      create(req: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>;
    };
  };
  completions: {
    create(req: CompletionRequest & { stream: true }): Promise<AsyncIterable<CompletionChunk>>;
    create(req: CompletionRequest & { stream?: false }): Promise<Completion>;
    create(req: CompletionRequest): Promise<Completion | AsyncIterable<CompletionChunk>>;
  };
  tokenize(text: string, opts?: TokenizeOptions): Promise<number[]>;
  detokenize(ids: number[], opts?: { special?: boolean }): Promise<string>;
  info(): Promise<EngineInfo>;
  /** Free the model and stop the Worker (remote: close the connection); later calls fail
   * with `unloaded`. */
  unload(): Promise<void>;
}
