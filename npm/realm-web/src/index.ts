/** realm-web: LLM inference in the browser from a plain GGUF file. The engine runs in a Web
 * Worker; the API is shaped like OpenAI's. */

export { createEngine } from './engine.js';
export { RealmError } from './errors.js';
export { clearModelCache, isModelCached } from './cache.js';
export type { RealmErrorCode } from './errors.js';
export type * from './types.js';
