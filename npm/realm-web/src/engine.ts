/** `createEngine`: the model in a Worker behind the OpenAI-shaped `RealmEngine` interface. */

import { WorkerClient } from './client.js';
import { RealmError } from './errors.js';
import { modelName, wireSource } from './model.js';
import type { DeviceRequest, GenerateOptions, GenerateResult, Loaded, Prompt } from './protocol.js';
import { AsyncQueue } from './stream.js';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  Completion,
  CompletionChunk,
  CompletionRequest,
  CreateEngineOptions,
  EngineInfo,
  FinishReason,
  RealmEngine,
  SamplingOptions,
  TokenizeOptions,
  Usage,
} from './types.js';

/** One step of a generation as the engine reports it. */
type Step =
  | { kind: 'token'; token: number | null; text: string }
  | { kind: 'done'; finish: FinishReason; usage: Usage };

export async function createEngine(opts: CreateEngineOptions): Promise<RealmEngine> {
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

class WorkerEngine implements RealmEngine {
  readonly chat: RealmEngine['chat'];
  readonly completions: RealmEngine['completions'];

  constructor(
    private readonly client: WorkerClient,
    private readonly requested: DeviceRequest,
    private readonly choice: Loaded,
    private readonly model: string,
  ) {
    this.chat = { completions: { create: ((req: ChatCompletionRequest) => this.chatCreate(req)) as never } };
    this.completions = { create: ((req: CompletionRequest) => this.textCreate(req)) as never };
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

  private async chatCreate(req: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> {
    if (!Array.isArray(req.messages)) {
      throw new RealmError('invalid-argument', 'messages must be an array of { role, content }');
    }
    const steps = this.generate({ kind: 'chat', messages: req.messages }, req);
    const meta = { id: `chatcmpl-${randomId()}`, created: now(), model: this.model };
    if (req.stream) return chatChunks(meta, steps);
    let content = '';
    const ids: number[] = [];
    for await (const s of steps) {
      if (s.kind === 'token') {
        content += s.text;
        if (s.token !== null) ids.push(s.token);
      } else {
        return {
          ...meta,
          object: 'chat.completion',
          choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: s.finish, logprobs: null, token_ids: ids }],
          usage: s.usage,
        };
      }
    }
    throw new RealmError('internal', 'the generation ended without a result');
  }

  private async textCreate(req: CompletionRequest): Promise<Completion | AsyncIterable<CompletionChunk>> {
    const prompt: Prompt =
      typeof req.prompt === 'string' ? { kind: 'text', text: req.prompt } : { kind: 'ids', ids: Array.from(req.prompt) };
    const steps = this.generate(prompt, req);
    const meta = { id: `cmpl-${randomId()}`, created: now(), model: this.model };
    if (req.stream) return textChunks(meta, steps);
    let text = '';
    const ids: number[] = [];
    for await (const s of steps) {
      if (s.kind === 'token') {
        text += s.text;
        if (s.token !== null) ids.push(s.token);
      } else {
        return {
          ...meta,
          object: 'text_completion',
          choices: [{ index: 0, text, finish_reason: s.finish, logprobs: null, token_ids: ids }],
          usage: s.usage,
        };
      }
    }
    throw new RealmError('internal', 'the generation ended without a result');
  }

  /** Start a generation in the Worker; its tokens and its end arrive on the returned queue. */
  private generate(prompt: Prompt, req: SamplingOptions): AsyncQueue<Step> {
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
      { type: 'generate', prompt, options: samplingOptions(req), abort },
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

/** The options realm-wasm reads, checked for type here so mistakes fail before the Worker. */
function samplingOptions(req: SamplingOptions): GenerateOptions {
  const out: GenerateOptions = {};
  for (const k of ['max_tokens', 'temperature', 'top_k', 'top_p', 'min_p', 'seed', 'n_ctx'] as const) {
    const v = req[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new RealmError('invalid-argument', `${k} must be a finite number, not ${JSON.stringify(v)}`);
    }
    out[k] = v;
  }
  if (req.stop !== undefined && req.stop !== null) out.stop = req.stop;
  return out;
}

interface Meta {
  id: string;
  created: number;
  model: string;
}

async function* chatChunks(meta: Meta, steps: AsyncIterable<Step>): AsyncGenerator<ChatCompletionChunk> {
  const chunk = (delta: ChatCompletionChunk['choices'][0]['delta'], ids: number[], finish: FinishReason | null) => ({
    ...meta,
    object: 'chat.completion.chunk' as const,
    choices: [{ index: 0 as const, delta, finish_reason: finish, logprobs: null, token_ids: ids }],
  });
  yield chunk({ role: 'assistant', content: '' }, [], null);
  for await (const s of steps) {
    if (s.kind === 'token') yield chunk({ content: s.text }, s.token === null ? [] : [s.token], null);
    else yield { ...chunk({}, [], s.finish), usage: s.usage };
  }
}

async function* textChunks(meta: Meta, steps: AsyncIterable<Step>): AsyncGenerator<CompletionChunk> {
  const chunk = (text: string, ids: number[], finish: FinishReason | null) => ({
    ...meta,
    object: 'text_completion' as const,
    choices: [{ index: 0 as const, text, finish_reason: finish, logprobs: null, token_ids: ids }],
  });
  for await (const s of steps) {
    if (s.kind === 'token') yield chunk(s.text, s.token === null ? [] : [s.token], null);
    else yield { ...chunk('', [], s.finish), usage: s.usage };
  }
}

function randomId(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, '0')).join('');
}

function now(): number {
  return Math.floor(Date.now() / 1000);
}
