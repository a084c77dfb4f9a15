/** The engine's Worker: owns the wasm module and the loaded model, answers one request at a
 * time. Everything here converts between the wire protocol and realm-wasm's `Engine`. */

import { copyModel, fetchModel, readModel, type FetchModelOptions, type ModelSink } from './cache.js';
import { RealmError, toWireError } from './errors.js';
import type { DeviceRequest, GenerateOptions, Loaded, Prompt, Request, Response, WasmBuild, WireSource } from './protocol.js';
import type { ThreadMessage, ThreadReply } from './thread.js';

/** The part of realm-wasm's generated bindings this worker uses. */
interface WasmEngine {
  tokenize(text: string, addSpecial: boolean, parseSpecial: boolean): Uint32Array;
  detokenize(ids: Uint32Array, special: boolean): string;
  applyChatTemplate(messages: unknown): string;
  generate(
    prompt: Uint32Array,
    options: GenerateOptions,
    onToken: (id: number | undefined, text: string) => boolean,
  ): Promise<unknown>;
  info(): Record<string, unknown>;
  free(): void;
}

/** Model bytes in wasm memory (realm-wasm's `ModelBuffer`). */
interface ModelBuffer {
  ptr(): number;
  readonly length: number;
  resize(len: number): void;
  free(): void;
}

interface WasmModule {
  default(input: { module_or_path: URL }): Promise<{ memory: WebAssembly.Memory }>;
  Engine: {
    load(
      buffer: ModelBuffer,
      device: 'cpu' | 'webgpu',
      threads: number,
      onUpload: (done: number, total: number) => void,
    ): Promise<WasmEngine>;
  };
  /** Threads build only. */
  threadShare?(): [WebAssembly.Module, WebAssembly.Memory];
  useThreads?(): void;
  ModelBuffer: new (len: number) => ModelBuffer;
  buildInfo(): Record<string, unknown>;
}

interface Wasm {
  module: WasmModule;
  memory: WebAssembly.Memory;
  /** CPU threads in all (1: the baseline build); and which build and why. */
  threads: number;
  variant: string;
}

interface WorkerScope {
  postMessage(message: Response): void;
  onmessage: ((ev: MessageEvent<Request>) => void) | null;
}

const scope = self as unknown as WorkerScope;
let wasm: Wasm | null = null;
let engine: WasmEngine | null = null;
/** Requests run one after another (`abort` alone is handled as it arrives). */
let queue: Promise<void> = Promise.resolve();
/** Generations the page asked to stop. */
const aborted = new Set<number>();

/** Models above this stay out of wasm32: its memory ends at 4 GiB, and the KV cache and
 * activations need room beside the weights. */
const WASM32_MODEL_LIMIT = 3.5 * 2 ** 30;

/** Whether this browser has relaxed SIMD: a module whose one function computes
 * `i32x4.relaxed_dot_i8x16_i7x16_add_s` of three zero vectors validates. */
function hasRelaxedSimd(): boolean {
  const zero = new Array<number>(16).fill(0);
  const v128 = [0xfd, 0x0c, ...zero];
  const body = [0, ...v128, ...v128, ...v128, 0xfd, 0x93, 0x02, 0x0b];
  const bytes = new Uint8Array([
    ...[0, 97, 115, 109, 1, 0, 0, 0],
    ...[1, 5, 1, 0x60, 0, 1, 0x7b], // type section: () -> v128
    ...[3, 2, 1, 0], // function section: one function of type 0
    ...[10, body.length + 2, 1, body.length, ...body], // code section
  ]);
  try {
    return WebAssembly.validate(bytes);
  } catch {
    return false;
  }
}

/** Whether this browser compiles a module with a 64-bit memory (Memory64). */
function hasMemory64(): boolean {
  // A module with one memory section: one memory, flags 0x04 (64-bit index), minimum 0.
  const bytes = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 5, 3, 1, 4, 0]);
  try {
    return WebAssembly.validate(bytes);
  } catch {
    return false;
  }
}

/** The build for this load, chosen by feature detection: the Memory64 (wasm64) build for a
 * CPU model too big for wasm32; the threads variant when the page is cross-origin isolated
 * (SharedArrayBuffer) and more than one thread is wanted; otherwise the baseline (wasm32 +
 * SIMD128, which also carries WebGPU). A Worker loads one build: the first load decides. */
async function module(device: 'cpu' | 'webgpu', threads: number, size: number, build: WasmBuild): Promise<Wasm> {
  if (wasm) return wasm;
  if (device === 'cpu' && (build === 'auto' || build === 'memory64')) {
    const big = size > WASM32_MODEL_LIMIT;
    if (build === 'memory64' || big) {
      const gib = (size / 2 ** 30).toFixed(1);
      if (!hasMemory64()) {
        if (build === 'memory64') throw new RealmError('unsupported-model', 'this browser has no WebAssembly Memory64');
      } else {
        const why = build === 'memory64' ? 'the Memory64 build was asked for' : `the model (${gib} GiB) does not fit wasm32's 4 GiB`;
        const m = await importBuild('wasm64');
        const exports = await m.default({ module_or_path: new URL('./wasm64/realm_wasm_bg.wasm', import.meta.url) });
        wasm = { module: m, memory: exports.memory, threads: 1, variant: `wasm64 (Memory64), 1 thread: ${why}` };
        return wasm;
      }
    }
  }
  // Every wasm32 build but `compat` uses relaxed SIMD's int8 dot product.
  if (build === 'compat' || !hasRelaxedSimd()) {
    const why = build === 'compat' ? 'the compat build was asked for' : 'this browser has no relaxed SIMD';
    const m = await importBuild('wasm-compat');
    const exports = await m.default({ module_or_path: new URL('./wasm-compat/realm_wasm_bg.wasm', import.meta.url) });
    wasm = { module: m, memory: exports.memory, threads: 1, variant: `wasm32 simd128 (compat), 1 thread: ${why}` };
    return wasm;
  }
  const isolated =
    typeof SharedArrayBuffer !== 'undefined' &&
    (self as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  let why: string;
  if (device === 'webgpu') why = 'WebGPU runs from the baseline build';
  else if (threads <= 1) why = '1 thread was asked for';
  else if (!isolated) why = 'threads need a cross-origin isolated page (COOP/COEP headers) for SharedArrayBuffer';
  else {
    try {
      return (wasm = await loadThreaded(threads));
    } catch (e) {
      why = `the threads build failed to start (${String(e)})`;
    }
  }
  const m = await importBuild('wasm');
  const exports = await m.default({ module_or_path: new URL('./wasm/realm_wasm_bg.wasm', import.meta.url) });
  wasm = { module: m, memory: exports.memory, threads: 1, variant: `wasm32 simd128 relaxed-simd, 1 thread: ${why}` };
  return wasm;
}

/** A computed specifier: the bindings are generated into dist/NAME/ by scripts/build-web.sh. */
async function importBuild(name: 'wasm' | 'wasm-compat' | 'wasm-threads' | 'wasm64'): Promise<WasmModule> {
  const url = new URL(`./${name}/realm_wasm.js`, import.meta.url).href;
  return (await import(/* @vite-ignore */ url)) as WasmModule;
}

/** The threads build, with `threads - 1` thread Workers started and ready before any engine
 * code runs: a Worker cannot start while its creator blocks, and the pool blocks. */
async function loadThreaded(threads: number): Promise<Wasm> {
  const m = await importBuild('wasm-threads');
  const exports = await m.default({
    module_or_path: new URL('./wasm-threads/realm_wasm_bg.wasm', import.meta.url),
  });
  if (!m.threadShare || !m.useThreads) throw new Error('the threads build lacks threadShare/useThreads');
  const [module, memory] = m.threadShare();
  const glue = new URL('./wasm-threads/realm_wasm.js', import.meta.url).href;
  const idle: Worker[] = [];
  const started = await Promise.allSettled(
    Array.from({ length: threads - 1 }, (_, i) => startThread(i, glue, module, memory, idle)),
  );
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    for (const r of started) if (r.status === 'fulfilled') r.value.terminate();
    throw failed.reason;
  }
  (globalThis as { realmSpawnThread?: (ptr: number) => boolean }).realmSpawnThread = (ptr) => {
    const w = idle.pop();
    if (!w) return false;
    w.postMessage({ type: 'run', ptr } satisfies ThreadMessage);
    return true;
  };
  m.useThreads();
  return {
    module: m,
    memory: exports.memory,
    threads,
    variant: `wasm32 simd128 relaxed-simd + threads (${threads}): the page is cross-origin isolated`,
  };
}

/** Starts thread Worker `i` on the shared module and memory; it joins `idle` when ready and
 * again whenever a pool it served shuts down. */
function startThread(
  i: number,
  glue: string,
  module: WebAssembly.Module,
  memory: WebAssembly.Memory,
  idle: Worker[],
): Promise<Worker> {
  const w = new Worker(new URL('./thread.js', import.meta.url), { type: 'module', name: `realm-thread-${i + 1}` });
  return new Promise<Worker>((resolve, reject) => {
    w.onmessage = (ev: MessageEvent<ThreadReply>) => {
      if (ev.data.type === 'failed') {
        reject(new Error(ev.data.message));
        return;
      }
      idle.push(w);
      resolve(w);
    };
    w.onerror = (ev) => reject(new Error(ev.message || 'a thread Worker could not start'));
    w.postMessage({ type: 'start', glue, module, memory } satisfies ThreadMessage);
  });
}

/** Model bytes written straight into wasm memory: the only full copy of the weights. */
class WasmSink implements ModelSink {
  at = 0;
  readonly buf: ModelBuffer;

  constructor(
    readonly w: Wasm,
    private readonly total: number,
  ) {
    this.buf = new w.module.ModelBuffer(total > 0 ? total : 1 << 20);
  }

  /** A fresh view each time: growing the memory detaches the old ones. */
  private bytes(): Uint8Array {
    return new Uint8Array(this.w.memory.buffer, this.buf.ptr(), this.buf.length);
  }

  write(value: Uint8Array): void {
    if (this.at + value.byteLength > this.buf.length) {
      if (this.total > 0) {
        throw new RealmError('network', `the model source sent more than the ${this.total} bytes it announced`);
      }
      this.buf.resize(Math.max(this.buf.length * 2, this.at + value.byteLength));
    }
    this.bytes().set(value, this.at);
    this.at += value.byteLength;
  }

  view(start: number, end: number): Uint8Array {
    return this.bytes().subarray(start, end);
  }

  /** The buffer cut to what was written, for `Engine.load` (which takes it over). */
  finish(): ModelBuffer {
    if (this.buf.length !== this.at) this.buf.resize(this.at);
    return this.buf;
  }
}

/** Read a model source into wasm memory; a sink abandoned on the way (a download that starts
 * over, an error) is freed. The module is chosen (`build(total)`) once the size is known: from
 * the Blob, the cache's manifest or the response's Content-Length (0 when unknown). */
async function readSource(
  build: (total: number) => Promise<Wasm>,
  src: WireSource,
  opts: FetchModelOptions,
): Promise<WasmSink> {
  let sink: WasmSink | null = null;
  const alloc = async (total: number): Promise<WasmSink> => {
    const w = await build(total);
    sink?.buf.free();
    sink = new WasmSink(w, total);
    return sink;
  };
  try {
    switch (src.kind) {
      case 'url':
        return (await fetchModel(src.url, opts, alloc)) as WasmSink;
      case 'blob':
        return (await readModel(src.blob, opts, alloc)) as WasmSink;
      case 'bytes':
        return (await copyModel(new Uint8Array(src.bytes), opts, alloc)) as WasmSink;
    }
  } catch (e) {
    (sink as WasmSink | null)?.buf.free();
    throw e;
  }
}

/** Set when the module trapped: its memory may be inconsistent, so nothing runs in it again. */
let crashed: string | null = null;

function loaded(): WasmEngine {
  if (crashed) throw new RealmError('internal', `the engine crashed earlier (${crashed}): create a new engine`);
  if (!engine) throw new RealmError('unloaded', 'no model is loaded: call createEngine() again');
  return engine;
}

function promptIds(e: WasmEngine, p: Prompt): Uint32Array {
  switch (p.kind) {
    case 'ids':
      return Uint32Array.from(p.ids);
    case 'text':
      return e.tokenize(p.text, true, true);
    case 'chat':
      return e.tokenize(e.applyChatTemplate(p.messages), true, true);
  }
}

/** Why WebGPU cannot be used here, or null when the browser offers an adapter. Asked before
 * wgpu is touched: without `navigator.gpu` creating its instance traps. */
async function webgpuMissing(): Promise<string | null> {
  const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  if (!gpu) return 'this browser has no WebGPU (navigator.gpu is missing)';
  try {
    if (!(await gpu.requestAdapter())) return 'the browser offers no WebGPU adapter (requestAdapter() returned null)';
  } catch (e) {
    return `requesting a WebGPU adapter failed: ${String(e)}`;
  }
  return null;
}

/** The backend for a request, and why. */
async function chooseDevice(requested: DeviceRequest): Promise<{ device: 'cpu' | 'webgpu'; reason: string }> {
  if (requested === 'wasm') return { device: 'cpu', reason: "device 'wasm' was requested" };
  const missing = await webgpuMissing();
  if (missing === null) {
    const reason = requested === 'webgpu' ? "device 'webgpu' was requested" : 'this browser has a WebGPU adapter';
    return { device: 'webgpu', reason };
  }
  if (requested === 'webgpu') throw new RealmError('webgpu-unavailable', `device 'webgpu' was requested, but ${missing}`);
  return { device: 'cpu', reason: `${missing}: using the WebAssembly CPU engine` };
}

async function load(req: Extract<Request, { type: 'load' }>): Promise<Loaded> {
  let { device, reason } = await chooseDevice(req.device);
  for (;;) {
    const build = (total: number) => module(device, req.threads, total, req.build);
    const sink = await readSource(build, req.source, {
      sha256: req.sha256 ?? undefined,
      cache: req.cache,
      onProgress: (p) => scope.postMessage({ type: 'progress', ...p }),
    });
    const w = sink.w;
    const phase = device === 'webgpu' ? 'upload' : 'load';
    const total = sink.at;
    scope.postMessage({ type: 'progress', phase, loaded: 0, total });
    try {
      engine = await w.module.Engine.load(sink.finish(), device, w.threads, (done) =>
        scope.postMessage({ type: 'progress', phase, loaded: done, total }),
      );
    } catch (e) {
      // The adapter was there but the device could not be opened: with `auto` the CPU engine
      // takes over (reading the model again, from the cache for URLs), and says so.
      const code = (e as { code?: unknown }).code;
      if (device === 'webgpu' && req.device === 'auto' && code === 'webgpu-unavailable') {
        device = 'cpu';
        reason = `the WebGPU device could not be opened (${(e as Error).message}): using the WebAssembly CPU engine`;
        continue;
      }
      throw e;
    }
    scope.postMessage({ type: 'progress', phase, loaded: total, total });
    return {
      backend: device === 'webgpu' ? 'webgpu' : 'wasm',
      reason,
      variant: w.variant,
      engine: { ...engine.info() },
    };
  }
}

async function handle(req: Request): Promise<unknown> {
  switch (req.type) {
    case 'load': {
      scope.postMessage({ type: 'progress', phase: 'compile', loaded: 0, total: 0 });
      engine?.free();
      engine = null;
      return load(req);
    }
    case 'tokenize':
      return Array.from(loaded().tokenize(req.text, req.addSpecial, req.special));
    case 'detokenize':
      return loaded().detokenize(Uint32Array.from(req.ids), req.special);
    case 'generate': {
      const e = loaded();
      const flag = req.abort ? new Int32Array(req.abort) : null;
      const stopped = () => aborted.has(req.id) || (flag !== null && Atomics.load(flag, 0) !== 0);
      const onToken = (token: number | undefined, text: string): boolean => {
        scope.postMessage({ type: 'token', id: req.id, token: token ?? null, text });
        return !stopped();
      };
      try {
        if (stopped()) throw new RealmError('aborted', 'the request was aborted');
        return await e.generate(promptIds(e, req.prompt), req.options, onToken);
      } finally {
        aborted.delete(req.id);
      }
    }
    case 'info':
      return { ...(engine ? engine.info() : {}) };
    case 'abort':
      return null;
    case 'unload':
      engine?.free();
      engine = null;
      return null;
  }
}

scope.onmessage = (ev) => {
  const req = ev.data;
  if (req.type === 'abort') {
    aborted.add(req.id);
    return;
  }
  queue = queue.then(async () => {
    try {
      scope.postMessage({ type: 'result', id: req.id, value: await handle(req) });
    } catch (e) {
      if (e instanceof WebAssembly.RuntimeError) {
        crashed = e.message;
        engine = null;
      }
      scope.postMessage({ type: 'error', id: req.id, error: toWireError(e) });
    }
  });
};
