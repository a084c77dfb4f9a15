/** The wire protocol between the page and the engine's Worker: a tagged union each way. */

import type { WireError } from './errors.js';
import type { LoadProgress } from './types.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | (string & {});
  content: string;
}

/** What to continue: a conversation (rendered with the model's chat template), raw text
 * (special tokens such as `<|im_start|>` are parsed), or token ids. */
export type Prompt =
  | { kind: 'chat'; messages: ChatMessage[] }
  | { kind: 'text'; text: string }
  | { kind: 'ids'; ids: number[] };

/** Options as realm-wasm reads them (`null`/absent = the engine's default). */
export interface GenerateOptions {
  max_tokens?: number;
  temperature?: number;
  top_k?: number;
  top_p?: number;
  min_p?: number;
  seed?: number;
  stop?: string | string[];
  n_ctx?: number;
  /** JSON of the engine's constraint (`{"json_schema": …}`, `"json_object"`, `{"regex": …}`,
   * `{"lark": …}`, `{"gbnf": …}`). */
  constraint?: string;
}

export interface GenerateResult {
  tokens: Uint32Array;
  text: string;
  finish_reason: 'stop' | 'length' | 'cancelled';
  prompt_tokens: number;
  completion_tokens: number;
  reused: number;
}

/** Where the Worker reads the model from: it fetches URLs itself (through the model cache) and
 * writes every source straight into wasm memory. A URL is absolute (resolved by the page). */
export type WireSource =
  | { kind: 'url'; url: string }
  | { kind: 'blob'; blob: Blob }
  | { kind: 'bytes'; bytes: ArrayBuffer };

export type Request =
  | {
      type: 'load';
      id: number;
      source: WireSource;
      sha256: string | null;
      cache: boolean;
      device: DeviceRequest;
      /** CPU threads in all (the threads build when above 1 and the page is isolated). */
      threads: number;
      build: WasmBuild;
    }
  | { type: 'tokenize'; id: number; text: string; addSpecial: boolean; special: boolean }
  | { type: 'detokenize'; id: number; ids: number[]; special: boolean }
  | {
      type: 'generate';
      id: number;
      prompt: Prompt;
      options: GenerateOptions;
      /** An Int32Array's buffer; the page stores 1 at index 0 to stop. Cross-origin isolated
       * pages only: elsewhere the page sends `abort`, which the Worker sees between tokens when
       * it waits for the GPU, and on the CPU engine only once the answer ends. */
      abort: SharedArrayBuffer | null;
    }
  /** Stop generation `id` (no answer of its own). */
  | { type: 'abort'; id: number }
  | { type: 'info'; id: number }
  | { type: 'unload'; id: number };

export type DeviceRequest = 'auto' | 'webgpu' | 'wasm';

/** Which WebAssembly build runs the engine: `auto` picks by feature detection and model
 * size; `wasm32` the baseline/threads builds (relaxed SIMD where the browser has it);
 * `compat` the wasm32 build without relaxed SIMD (one thread); `memory64` the wasm64 build
 * (CPU only, one thread, beyond wasm32's 4 GiB). */
export type WasmBuild = 'auto' | 'wasm32' | 'compat' | 'memory64';

/** The answer to `load`: the backend in use and why it was chosen. */
export interface Loaded {
  backend: 'webgpu' | 'wasm';
  reason: string;
  /** The WebAssembly build loaded and why. */
  variant: string;
  engine: Record<string, unknown>;
}

export type Response =
  | { type: 'progress'; phase: LoadProgress['phase']; loaded: number; total: number }
  | { type: 'token'; id: number; token: number | null; text: string }
  | { type: 'result'; id: number; value: unknown }
  | { type: 'error'; id: number; error: WireError };
