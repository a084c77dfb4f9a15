/** Stable error codes. `invalid-model`..`internal` come from the engine (realm-runtime's
 * `RuntimeError::code`); `unauthorized`..`protocol` from a remote engine (a realm-server's
 * error codes, and the connection); the rest from this package. */
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
  | 'worker'
  | 'unauthorized'
  | 'forbidden'
  | 'not-found'
  | 'rate-limited'
  | 'overloaded'
  | 'shutting-down'
  | 'connection'
  | 'protocol';

const CODES: ReadonlySet<string> = new Set<RealmErrorCode>([
  'invalid-model', 'unsupported-model', 'out-of-memory', 'webgpu-unavailable', 'device-lost', 'context-length',
  'invalid-argument', 'template', 'internal', 'aborted', 'network', 'quota', 'integrity', 'unloaded', 'worker',
  'unauthorized', 'forbidden', 'not-found', 'rate-limited', 'overloaded', 'shutting-down', 'connection', 'protocol',
]);

/** What a remote engine knows beyond the code. */
export interface RealmErrorDetails {
  /** The HTTP status of the server's error (401, 429, 503, …). */
  status?: number;
  /** The server's own error code (`invalid_api_key`, `rate_limit_exceeded`, …). */
  serverCode?: string;
  /** The request field at fault, as the server names it (`request.temperature`). */
  param?: string;
  /** Seconds to wait before retrying (`rate-limited`, `overloaded`, `shutting-down`). */
  retryAfter?: number;
  /** The WebSocket close code, for a `connection` error (1001: the server is going away;
   * 1006: the connection was lost; 4002: idle). */
  closeCode?: number;
}

/** Every error this package throws. `code` is stable; `message` says what happened and what
 * to do. */
export class RealmError extends Error {
  readonly code: RealmErrorCode;
  readonly status?: number;
  readonly serverCode?: string;
  readonly param?: string;
  readonly retryAfter?: number;
  readonly closeCode?: number;

  constructor(code: RealmErrorCode, message: string, details: RealmErrorDetails = {}) {
    super(message);
    this.name = 'RealmError';
    this.code = code;
    for (const k of ['status', 'serverCode', 'param', 'retryAfter', 'closeCode'] as const) {
      if (details[k] !== undefined) (this as { -readonly [K in typeof k]?: unknown })[k] = details[k];
    }
  }
}

/** realm-server's error codes (native-server/PROTOCOL.md, "Errors") as `RealmErrorCode`s; an
 * unknown one is `internal`, as the protocol asks. */
const SERVER_CODES: Record<string, RealmErrorCode> = {
  invalid_request: 'invalid-argument',
  payload_too_large: 'invalid-argument',
  method_not_allowed: 'invalid-argument',
  context_length_exceeded: 'context-length',
  invalid_api_key: 'unauthorized',
  model_not_allowed: 'forbidden',
  model_not_found: 'not-found',
  not_found: 'not-found',
  rate_limit_exceeded: 'rate-limited',
  server_overloaded: 'overloaded',
  shutting_down: 'shutting-down',
  cancelled: 'aborted',
  internal: 'internal',
};

/** An error realm-server sent (a WebSocket `error` message, or an HTTP error body's `error`). */
export function fromServerError(
  e: { code?: unknown; message?: unknown; param?: unknown; retry_after_s?: unknown },
  status?: number,
  retryAfterHeader?: number,
): RealmError {
  const serverCode = typeof e.code === 'string' ? e.code : 'internal';
  const code = SERVER_CODES[serverCode] ?? 'internal';
  const message = typeof e.message === 'string' && e.message ? e.message : `the server answered ${serverCode}`;
  const retry = typeof e.retry_after_s === 'number' ? e.retry_after_s : retryAfterHeader;
  return new RealmError(code, message, {
    status: status ?? STATUS[serverCode],
    serverCode,
    ...(typeof e.param === 'string' ? { param: e.param } : {}),
    ...(retry !== undefined && Number.isFinite(retry) ? { retryAfter: retry } : {}),
  });
}

const STATUS: Record<string, number> = {
  invalid_request: 400,
  context_length_exceeded: 400,
  invalid_api_key: 401,
  model_not_allowed: 403,
  model_not_found: 404,
  not_found: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  rate_limit_exceeded: 429,
  cancelled: 499,
  internal: 500,
  server_overloaded: 503,
  shutting_down: 503,
};

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
