/** What every engine shares: the OpenAI-shaped `chat.completions` and `completions` built over
 * one primitive — start a generation, read its steps (tokens, then the end). The Worker engine
 * and the remote engine differ only in where the steps come from. */

import { RealmError } from './errors.js';
import type { GenerateOptions, Prompt } from './protocol.js';
import type { AsyncQueue } from './stream.js';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  Completion,
  CompletionChunk,
  CompletionRequest,
  EngineInfo,
  FinishReason,
  RealmEngine,
  SamplingOptions,
  Timings,
  TokenizeOptions,
  Usage,
} from './types.js';

/** One step of a generation as the engine reports it. */
export type Step =
  | { kind: 'token'; token: number | null; text: string }
  | { kind: 'done'; finish: FinishReason; usage: Usage; timings?: Timings };

/** The sampling fields both engines read (realm-wasm's `GenerateOptions`), checked for type
 * here so mistakes fail before any work starts. `n_ctx` and `constraint` (the constraint as
 * the engine reads it) are the Worker engine's; the remote engine sends the request's own
 * fields instead. */
export function samplingOptions(req: SamplingOptions): GenerateOptions {
  const out: GenerateOptions = {};
  for (const k of ['max_tokens', 'temperature', 'top_k', 'top_p', 'min_p', 'seed', 'n_ctx'] as const) {
    const v = req[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new RealmError('invalid-argument', `${k} must be a finite number, not ${JSON.stringify(v)}`);
    }
    out[k] = v;
  }
  const constraint = constraintSpec(req);
  if (constraint !== null) out.constraint = JSON.stringify(constraint);
  if (req.stop !== undefined && req.stop !== null) {
    const ok = typeof req.stop === 'string' || (Array.isArray(req.stop) && req.stop.every((s) => typeof s === 'string'));
    if (!ok) throw new RealmError('invalid-argument', 'stop must be a string or an array of strings');
    out.stop = req.stop;
  }
  return out;
}

/** The request's constraint as the engine reads it (realm-runtime's `ConstraintSpec`), or
 * null: at most one of `response_format` (other than `text`), `grammar`, `lark`, `regex`. */
export function constraintSpec(req: SamplingOptions): unknown {
  const given: Array<[string, unknown]> = [];
  const rf = req.response_format as { type?: unknown; json_schema?: { schema?: unknown } } | undefined | null;
  if (rf !== undefined && rf !== null) {
    if (typeof rf !== 'object') throw new RealmError('invalid-argument', 'response_format must be an object');
    if (rf.type === 'json_object') given.push(['response_format', 'json_object']);
    else if (rf.type === 'json_schema') {
      const schema = rf.json_schema?.schema;
      if (schema === undefined || schema === null || (typeof schema !== 'object' && typeof schema !== 'boolean')) {
        throw new RealmError('invalid-argument', 'response_format.json_schema.schema must be a JSON schema (an object)');
      }
      given.push(['response_format', { json_schema: schema }]);
    } else if (rf.type !== 'text') {
      throw new RealmError('invalid-argument', `response_format.type must be 'text', 'json_object' or 'json_schema', not ${JSON.stringify(rf.type)}`);
    }
  }
  for (const [k, tag] of [['grammar', 'gbnf'], ['lark', 'lark'], ['regex', 'regex']] as const) {
    const v = req[k];
    if (v === undefined || v === null || v === '') continue;
    if (typeof v !== 'string') throw new RealmError('invalid-argument', `${k} must be a string`);
    given.push([k, { [tag]: v }]);
  }
  if (given.length > 1) {
    throw new RealmError('invalid-argument', `give one constraint: ${given[0][0]} and ${given[1][0]} were both given`);
  }
  return given.length ? given[0][1] : null;
}

interface Meta {
  id: string;
  created: number;
  model: string;
}

/** The base of both engines: everything but where a generation's steps come from. */
export abstract class StepEngine implements RealmEngine {
  readonly chat: RealmEngine['chat'];
  readonly completions: RealmEngine['completions'];

  protected constructor() {
    this.chat = { completions: { create: ((req: ChatCompletionRequest) => this.chatCreate(req)) as never } };
    this.completions = { create: ((req: CompletionRequest) => this.textCreate(req)) as never };
  }

  /** Start a generation; its tokens and its end arrive on the returned queue. Resolves once
   * the generation is accepted (a request refused outright rejects here). */
  protected abstract start(prompt: Prompt, req: SamplingOptions): Promise<AsyncQueue<Step>>;
  /** The `model` field of responses. */
  protected abstract modelName(): string;

  abstract tokenize(text: string, opts?: TokenizeOptions): Promise<number[]>;
  abstract detokenize(ids: number[], opts?: { special?: boolean }): Promise<string>;
  abstract info(): Promise<EngineInfo>;
  abstract unload(): Promise<void>;

  private async chatCreate(req: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> {
    if (req === null || typeof req !== 'object' || !Array.isArray(req.messages)) {
      throw new RealmError('invalid-argument', 'messages must be an array of { role, content }');
    }
    const steps = await this.start({ kind: 'chat', messages: req.messages }, req);
    const meta = { id: `chatcmpl-${randomId()}`, created: now(), model: this.modelName() };
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
          ...(s.timings ? { timings: s.timings } : {}),
        };
      }
    }
    throw new RealmError('internal', 'the generation ended without a result');
  }

  private async textCreate(req: CompletionRequest): Promise<Completion | AsyncIterable<CompletionChunk>> {
    if (req === null || typeof req !== 'object') throw new RealmError('invalid-argument', 'the request must be an object');
    let prompt: Prompt;
    if (typeof req.prompt === 'string') prompt = { kind: 'text', text: req.prompt };
    else {
      // Token ids: an array, or any array-like of them (a Uint32Array from `tokenize` elsewhere).
      const ids =
        req.prompt !== null && typeof req.prompt === 'object' && typeof (req.prompt as ArrayLike<unknown>).length === 'number'
          ? Array.from(req.prompt as ArrayLike<unknown>)
          : null;
      if (ids === null || !ids.every((t) => Number.isInteger(t) && (t as number) >= 0)) {
        throw new RealmError('invalid-argument', 'prompt must be a string or an array of token ids');
      }
      prompt = { kind: 'ids', ids: ids as number[] };
    }
    const steps = await this.start(prompt, req);
    const meta = { id: `cmpl-${randomId()}`, created: now(), model: this.modelName() };
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
          ...(s.timings ? { timings: s.timings } : {}),
        };
      }
    }
    throw new RealmError('internal', 'the generation ended without a result');
  }
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
    else yield { ...chunk({}, [], s.finish), usage: s.usage, ...(s.timings ? { timings: s.timings } : {}) };
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
    else yield { ...chunk('', [], s.finish), usage: s.usage, ...(s.timings ? { timings: s.timings } : {}) };
  }
}

function randomId(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, '0')).join('');
}

function now(): number {
  return Math.floor(Date.now() / 1000);
}
