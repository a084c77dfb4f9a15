/** The engine's Worker: owns the wasm module and the loaded model, answers one request at a
 * time. Everything here converts between the wire protocol and realm-wasm's `Engine`. */

import { RealmError, toWireError } from './errors.js';
import type { GenerateOptions, Prompt, Request, Response } from './protocol.js';

/** The part of realm-wasm's generated bindings this worker uses. */
interface WasmEngine {
  tokenize(text: string, addSpecial: boolean, parseSpecial: boolean): Uint32Array;
  detokenize(ids: Uint32Array, special: boolean): string;
  applyChatTemplate(messages: unknown): string;
  generate(
    prompt: Uint32Array,
    options: GenerateOptions,
    onToken: (id: number | undefined, text: string) => boolean,
  ): unknown;
  info(): Record<string, unknown>;
  free(): void;
}

interface WasmModule {
  default(input: { module_or_path: URL }): Promise<unknown>;
  Engine: { load(bytes: Uint8Array): WasmEngine };
  buildInfo(): Record<string, unknown>;
}

interface WorkerScope {
  postMessage(message: Response): void;
  onmessage: ((ev: MessageEvent<Request>) => void) | null;
}

const scope = self as unknown as WorkerScope;
let wasm: WasmModule | null = null;
let engine: WasmEngine | null = null;
/** Requests run one after another: a load awaits the module, everything else is synchronous. */
let queue: Promise<void> = Promise.resolve();

async function module(): Promise<WasmModule> {
  if (wasm) return wasm;
  // A computed specifier: the bindings are generated into dist/wasm/ by scripts/build-web.sh.
  const url = new URL('./wasm/realm_wasm.js', import.meta.url).href;
  const m = (await import(/* @vite-ignore */ url)) as WasmModule;
  await m.default({ module_or_path: new URL('./wasm/realm_wasm_bg.wasm', import.meta.url) });
  wasm = m;
  return m;
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

async function handle(req: Request): Promise<unknown> {
  switch (req.type) {
    case 'load': {
      const total = req.bytes.byteLength;
      scope.postMessage({ type: 'progress', phase: 'compile', loaded: 0, total });
      const m = await module();
      scope.postMessage({ type: 'progress', phase: 'load', loaded: 0, total });
      engine?.free();
      engine = null;
      engine = m.Engine.load(new Uint8Array(req.bytes));
      scope.postMessage({ type: 'progress', phase: 'load', loaded: total, total });
      return { ...engine.info() };
    }
    case 'tokenize':
      return Array.from(loaded().tokenize(req.text, req.addSpecial, req.special));
    case 'detokenize':
      return loaded().detokenize(Uint32Array.from(req.ids), req.special);
    case 'generate': {
      const e = loaded();
      const flag = req.abort ? new Int32Array(req.abort) : null;
      const onToken = (token: number | undefined, text: string): boolean => {
        scope.postMessage({ type: 'token', id: req.id, token: token ?? null, text });
        return flag === null || Atomics.load(flag, 0) === 0;
      };
      if (flag && Atomics.load(flag, 0) !== 0) throw new RealmError('aborted', 'the request was aborted');
      return e.generate(promptIds(e, req.prompt), req.options, onToken);
    }
    case 'info':
      return { ...(engine ? engine.info() : { build: (await module()).buildInfo() }) };
    case 'unload':
      engine?.free();
      engine = null;
      return null;
  }
}

scope.onmessage = (ev) => {
  const req = ev.data;
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
