/** Stable error codes. `invalid-model`..`internal` come from the engine (realm-runtime's
 * `RuntimeError::code`); the rest from this package. */
export type RealmErrorCode =
  | 'invalid-model'
  | 'unsupported-model'
  | 'out-of-memory'
  | 'webgpu-unavailable'
  | 'device-lost'
  | 'context-length'
  | 'invalid-argument'
  | 'template'
  | 'internal'
  | 'aborted'
  | 'network'
  | 'quota'
  | 'integrity'
  | 'unloaded'
  | 'worker';

const CODES: ReadonlySet<string> = new Set<RealmErrorCode>([
  'invalid-model', 'unsupported-model', 'out-of-memory', 'webgpu-unavailable', 'device-lost', 'context-length',
  'invalid-argument', 'template', 'internal', 'aborted', 'network', 'quota', 'integrity', 'unloaded', 'worker',
]);

/** Every error this package throws. `code` is stable; `message` says what happened and what
 * to do. */
export class RealmError extends Error {
  readonly code: RealmErrorCode;

  constructor(code: RealmErrorCode, message: string) {
    super(message);
    this.name = 'RealmError';
    this.code = code;
  }
}

/** An error as it crosses the Worker boundary (structured clone drops classes). */
export interface WireError {
  code: RealmErrorCode;
  message: string;
}

export function isRealmErrorCode(code: unknown): code is RealmErrorCode {
  return typeof code === 'string' && CODES.has(code);
}

/** Classify anything thrown in the worker: the engine's own errors keep their code; a failed
 * allocation is `out-of-memory`; a trap in the module is `internal`. */
export function toWireError(e: unknown): WireError {
  const message = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: unknown } | null)?.code;
  if (isRealmErrorCode(code)) return { code, message };
  if (e instanceof RangeError || /out of memory|memory access|Memory\.grow/i.test(message)) {
    return { code: 'out-of-memory', message: `${message} (the model may be too large for WebAssembly memory)` };
  }
  return { code: 'internal', message };
}

export function fromWireError(e: WireError): RealmError {
  return new RealmError(e.code, e.message);
}
