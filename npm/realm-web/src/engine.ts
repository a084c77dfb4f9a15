/** `createEngine`: the model in a Worker (or on a realm-server: `remote`) behind the OpenAI-shaped
 * `RealmEngine` interface. */

import { WorkerClient } from './client.js';
import { RealmError } from './errors.js';
import { modelName, wireSource } from './model.js';
import type { DeviceRequest, GenerateResult, Loaded, Prompt } from './protocol.js';
import { createRemoteEngine } from './remote.js';
import { StepEngine, samplingOptions, type Step } from './shape.js';
import { AsyncQueue } from './stream.js';
import type {
  CreateEngineOptions,
  EngineInfo,
  LocalEngineOptions,
  RealmEngine,
  SamplingOptions,
  TokenizeOptions,
} from './types.js';

/** An engine: with `model`, the model runs here, in a Worker (WebGPU or the WebAssembly CPU
 * engine); with `remote`, on a realm-server over its WebSocket protocol. The same interface
 * either way. */
export async function createEngine(opts: CreateEngineOptions): Promise<RealmEngine> {
  if (opts === null || typeof opts !== 'object') {
    throw new RealmError('invalid-argument', 'createEngine takes an options object: { model } or { remote }');
  }
  if (opts.remote !== undefined && opts.remote !== null) return createRemoteEngine(opts);
  return createLocalEngine(opts as LocalEngineOptions);
}

async function createLocalEngine(opts: LocalEngineOptions): Promise<RealmEngine> {
  const requested = opts.device ?? 'auto';
  if (requested !== 'auto' && requested !== 'webgpu' && requested !== 'wasm') {
    throw new RealmError(
      'invalid-argument',
      `device must be 'auto', 'webgpu' or 'wasm', not ${JSON.stringify(requested)}`,
    );
  }
  const isolated = typeof SharedArrayBuffer !== 'undefined' && globalThis.crossOriginIsolated === true;
  const threads = opts.threads ?? (isolated ? Math.min(4, Math.max(1, navigator.hardwareConcurrency || 1)) : 1);
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
    throw new RealmError('invalid-argument', `threads must be an integer in [1, 64], not ${JSON.stringify(opts.threads)}`);
  }
  if (opts.wasmBuild !== undefined && !['auto', 'wasm32', 'compat', 'memory64'].includes(opts.wasmBuild)) {
    throw new RealmError(
      'invalid-argument',
      `wasmBuild must be 'auto', 'wasm32', 'compat' or 'memory64', not ${JSON.stringify(opts.wasmBuild)}`,
    );
  }
  const { source, transfer } = wireSource(opts.model);
  // The default Worker is constructed from a literal URL relative to import.meta.url, the form
  // bundlers (Vite) recognise: they bundle the Worker with its imports. Given `workerUrl ??` that
  // URL instead, Vite copies worker.js alone, without the modules it imports (tests/e2e/vite.spec.ts).
  const worker =
    opts.workerUrl != null
      ? new Worker(opts.workerUrl, { type: 'module', name: 'realm-engine' })
      : new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'realm-engine' });
  const client = new WorkerClient(worker, opts.onProgress);
  let loaded: Loaded;
  try {
    loaded = await client.call<Loaded>(
      {
        type: 'load',
        source,
        sha256: opts.sha256 ?? null,
        cache: opts.cache !== false,
        device: requested,
        threads,
        build: opts.wasmBuild ?? 'auto',
      },
      transfer,
    );
  } catch (e) {
    client.terminate(new RealmError('unloaded', 'the model failed to load'));
    throw e;
  }
  return new WorkerEngine(client, requested, loaded, opts.modelName ?? modelName(opts.model));
}

class WorkerEngine extends StepEngine {
  constructor(
    private readonly client: WorkerClient,
    private readonly requested: DeviceRequest,
    private readonly choice: Loaded,
    private readonly model: string,
  ) {
    super();
  }

  protected modelName(): string {
    return this.model;
  }

  async tokenize(text: string, opts: TokenizeOptions = {}): Promise<number[]> {
    return this.client.call({
      type: 'tokenize',
      text,
      addSpecial: opts.addSpecial ?? true,
      special: opts.special ?? false,
    });
  }

  async detokenize(ids: number[], opts: { special?: boolean } = {}): Promise<string> {
    return this.client.call({ type: 'detokenize', ids, special: opts.special ?? false });
  }

  async info(): Promise<EngineInfo> {
    const engine = await this.client.call<Record<string, unknown>>({ type: 'info' });
    return {
      backend: this.choice.backend,
      requested: this.requested,
      reason: this.choice.reason,
      variant: this.choice.variant,
      abortMidAnswer:
        this.choice.backend === 'webgpu' ||
        (typeof SharedArrayBuffer !== 'undefined' && globalThis.crossOriginIsolated === true),
      engine,
    };
  }

  async unload(): Promise<void> {
    try {
      await this.client.call({ type: 'unload' });
    } finally {
      this.client.terminate(new RealmError('unloaded', 'the engine was unloaded: create a new one'));
    }
  }

  /** Start a generation in the Worker; its tokens and its end arrive on the returned queue. */
  protected async start(prompt: Prompt, req: SamplingOptions): Promise<AsyncQueue<Step>> {
    const options = samplingOptions(req);
    const q = new AsyncQueue<Step>();
    const signal = req.signal;
    const aborted = () => new RealmError('aborted', 'the request was aborted');
    if (signal?.aborted) {
      q.fail(aborted());
      return q;
    }
    const isolated = typeof SharedArrayBuffer !== 'undefined' && globalThis.crossOriginIsolated === true;
    const abort = isolated ? new SharedArrayBuffer(4) : null;
    const done = this.client.call<GenerateResult>(
      { type: 'generate', prompt, options, abort },
      [],
      (token, text) => q.push({ kind: 'token', token, text }),
    );
    const id = this.client.lastId;
    // Stop the Worker's answer (at once where the page shares memory with it, else when the
    // Worker next reads its messages) and drop its tokens.
    const stop = () => {
      if (abort) Atomics.store(new Int32Array(abort), 0, 1);
      this.client.notify({ type: 'abort', id });
      this.client.mute(id);
    };
    const onAbort = () => {
      stop();
      q.fail(aborted());
    };
    // A consumer that stops iterating early (`break`) no longer wants the answer either.
    q.onAbandon = stop;
    signal?.addEventListener('abort', onAbort, { once: true });
    done.then(
      (r) => {
        if (r.finish_reason === 'cancelled') {
          q.fail(aborted());
        } else {
          const usage = {
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            total_tokens: r.prompt_tokens + r.completion_tokens,
            prompt_tokens_details: { cached_tokens: r.reused },
          };
          q.push({ kind: 'done', finish: r.finish_reason, usage });
          q.end();
        }
      },
      (e: unknown) => q.fail(e),
    ).finally(() => signal?.removeEventListener('abort', onAbort));
    return q;
  }
}
