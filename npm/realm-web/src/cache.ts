/** Models fetched by URL, kept in Cache Storage so the next load makes no request.
 *
 * Each model is stored under keys derived from its absolute URL: a manifest and the bytes in
 * 16 MiB chunks. Chunks are written as they arrive, so a download that is cut off leaves the
 * chunks it finished, and the next load asks for the rest with an HTTP `Range` request. The
 * bytes go into one `ModelSink` of the final size (when the server sends `Content-Length`); the
 * engine's Worker gives a sink in wasm memory, so one copy of the weights exists, plus one chunk
 * on its way to the cache. */

import { RealmError } from './errors.js';
import type { LoadProgress } from './types.js';

const CACHE_NAME = 'realm-models-v1';
/** Bytes per cache entry: the granularity of resuming. */
const CHUNK = 16 << 20;
/** Keys are URLs; this host never resolves, nothing is ever fetched from it. */
const KEY_BASE = 'https://realm-cache.invalid/v1/';

interface Manifest {
  url: string;
  total: number;
  /** The response's ETag or Last-Modified: a resumed download must be the same file. */
  validator: string | null;
  chunkSize: number;
  /** Chunks stored, in order from the first. */
  chunks: number;
  complete: boolean;
}

type Progress = ((p: LoadProgress) => void) | undefined;

/** Where model bytes are written, in order from the first. */
export interface ModelSink {
  /** Bytes written so far. */
  readonly at: number;
  write(bytes: Uint8Array): void;
  /** A view of bytes already written; valid until the next `write`. */
  view(start: number, end: number): Uint8Array;
}

/** Makes the sink for a model of `total` bytes (0: unknown, the sink grows). */
/** Makes the sink for a model of `total` bytes (0: unknown), once that is known. */
export type SinkFactory = (total: number) => Promise<ModelSink>;

export interface FetchModelOptions {
  /** Expected SHA-256 of the file (hex); checked with SubtleCrypto before it is used or cached. */
  sha256?: string;
  /** `false`: no Cache Storage, download every time. */
  cache?: boolean;
  onProgress?: Progress;
}

function key(url: string, part: 'manifest' | number): string {
  return `${KEY_BASE}${encodeURIComponent(url)}/${part}`;
}

async function openCache(): Promise<Cache | null> {
  if (typeof caches === 'undefined') return null;
  try {
    return await caches.open(CACHE_NAME);
  } catch {
    // Insecure contexts and some private modes have no Cache Storage: download every time.
    return null;
  }
}

function isQuota(e: unknown): boolean {
  return e instanceof DOMException && (e.name === 'QuotaExceededError' || e.code === 22);
}

/** Cache writes: a full disk is `quota`, the entry removed so no half model is left behind. */
async function put(store: Cache, url: string, part: 'manifest' | number, body: BodyInit): Promise<void> {
  try {
    await store.put(key(url, part), new Response(body));
  } catch (e) {
    await forget(store, url);
    if (isQuota(e)) {
      throw new RealmError(
        'quota',
        `the browser's storage quota is full while caching ${url}: free space (clearModelCache) or pass cache: false`,
      );
    }
    throw new RealmError('internal', `could not write the model cache for ${url}: ${String(e)}`);
  }
}

async function readManifest(store: Cache, url: string): Promise<Manifest | null> {
  const res = await store.match(key(url, 'manifest'));
  if (!res) return null;
  try {
    const m = (await res.json()) as Manifest;
    return m.url === url && m.chunkSize === CHUNK && Number.isSafeInteger(m.total) ? m : null;
  } catch {
    return null;
  }
}

async function forget(store: Cache, url: string): Promise<void> {
  const prefix = `${KEY_BASE}${encodeURIComponent(url)}/`;
  for (const req of await store.keys()) {
    if (req.url.startsWith(prefix)) await store.delete(req);
  }
}

/** Remove one model (by URL) or every model from the cache. */
export async function clearModelCache(url?: string | URL): Promise<void> {
  if (typeof caches === 'undefined') return;
  if (url === undefined) {
    await caches.delete(CACHE_NAME);
    return;
  }
  const store = await openCache();
  if (store) await forget(store, absolute(url));
}

/** Whether a model URL is fully in the cache (a load would make no request). */
export async function isModelCached(url: string | URL): Promise<boolean> {
  const store = await openCache();
  return (store && (await readManifest(store, absolute(url)))?.complete) === true;
}

export function absolute(url: string | URL): string {
  return new URL(String(url), globalThis.location?.href).href;
}

/** The bytes of a model URL: from the cache when complete there, else downloaded (resuming a
 * cut-off download) and cached. */
export async function fetchModel(src: string | URL, opts: FetchModelOptions, alloc: SinkFactory): Promise<ModelSink> {
  const url = absolute(src);
  const store = opts.cache === false ? null : await openCache();
  const manifest = store ? await readManifest(store, url) : null;
  if (store && manifest?.complete) {
    const sink = await alloc(manifest.total);
    if (await readChunks(store, manifest, sink, manifest.chunks, 'cache', opts.onProgress)) {
      await verify(sink, opts, async () => forget(store, url));
      return sink;
    }
    await forget(store, url); // a chunk was evicted: download again
  }
  return download(url, store, manifest?.complete === false ? manifest : null, opts, alloc);
}

/** Any other source (a Blob, bytes), streamed into a sink and checked like a download. */
export async function readModel(blob: Blob, opts: FetchModelOptions, alloc: SinkFactory): Promise<ModelSink> {
  const sink = await alloc(blob.size);
  const reader = blob.stream().getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    sink.write(value);
    opts.onProgress?.({ phase: 'read', loaded: sink.at, total: blob.size });
  }
  await verify(sink, opts, async () => {});
  return sink;
}

/** Bytes handed over whole. */
export async function copyModel(bytes: Uint8Array, opts: FetchModelOptions, alloc: SinkFactory): Promise<ModelSink> {
  const sink = await alloc(bytes.byteLength);
  sink.write(bytes);
  opts.onProgress?.({ phase: 'read', loaded: sink.at, total: bytes.byteLength });
  await verify(sink, opts, async () => {});
  return sink;
}

/** Copy the first `n` cached chunks into `sink`; false when one is missing. */
async function readChunks(
  store: Cache,
  m: Manifest,
  sink: ModelSink,
  n: number,
  phase: LoadProgress['phase'],
  onProgress: Progress,
): Promise<boolean> {
  for (let i = 0; i < n; i++) {
    const res = await store.match(key(m.url, i));
    if (!res?.body) return false;
    const end = Math.min(m.total, (i + 1) * m.chunkSize);
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (sink.at + value.byteLength > end) return false;
      sink.write(value);
      onProgress?.({ phase, loaded: sink.at, total: m.total });
    }
    if (sink.at !== end) return false;
  }
  return true;
}

async function verify(sink: ModelSink, opts: FetchModelOptions, onBad: () => Promise<void>): Promise<void> {
  if (!opts.sha256) return;
  const want = opts.sha256.trim().toLowerCase();
  opts.onProgress?.({ phase: 'verify', loaded: 0, total: sink.at });
  // SubtleCrypto has no streaming digest: it reads (and copies) the whole model at once.
  const got = await sha256Hex(sink.view(0, sink.at));
  opts.onProgress?.({ phase: 'verify', loaded: sink.at, total: sink.at });
  if (got !== want) {
    await onBad();
    throw new RealmError('integrity', `the model's SHA-256 is ${got}, expected ${want}: the file is not the one asked for`);
  }
}

export async function sha256Hex(buf: Uint8Array): Promise<string> {
  if (!globalThis.crypto?.subtle) {
    throw new RealmError('invalid-argument', 'sha256 needs SubtleCrypto (a secure context: https or localhost)');
  }
  const digest = await crypto.subtle.digest('SHA-256', unshared(buf));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** `buf`, copied when it views shared memory (the threads build's wasm memory), which
 * SubtleCrypto and Response refuse. */
function unshared(buf: Uint8Array): Uint8Array<ArrayBuffer> {
  return buf.buffer instanceof ArrayBuffer ? (buf as Uint8Array<ArrayBuffer>) : buf.slice();
}

function validatorOf(res: Response): string | null {
  return res.headers.get('etag') ?? res.headers.get('last-modified');
}

/** Start of `Content-Range: bytes START-END/TOTAL` and its total, or null. */
function contentRange(res: Response): { start: number; total: number } | null {
  const m = /^bytes (\d+)-\d+\/(\d+)$/.exec(res.headers.get('content-range') ?? '');
  return m ? { start: Number(m[1]), total: Number(m[2]) } : null;
}

async function request(url: string, from: number): Promise<Response> {
  try {
    // A single open range is a CORS-safelisted header: no preflight for cross-origin models.
    return await fetch(url, from > 0 ? { headers: { Range: `bytes=${from}-` } } : {});
  } catch (e) {
    throw new RealmError('network', `could not fetch the model from ${url}: ${String(e)}`);
  }
}

async function download(
  url: string,
  store: Cache | null,
  partial: Manifest | null,
  opts: FetchModelOptions,
  alloc: SinkFactory,
): Promise<ModelSink> {
  const from = store && partial ? partial.chunks * partial.chunkSize : 0;
  let res = await request(url, from);
  const range = contentRange(res);
  const resumed =
    partial !== null &&
    from > 0 &&
    res.status === 206 &&
    range?.start === from &&
    range.total === partial.total &&
    validatorOf(res) === partial.validator;
  if (!resumed && res.status === 206) {
    // The file changed, or the server ignored what was asked: start over.
    await res.body?.cancel();
    res = await request(url, 0);
  }
  if (!res.ok || !res.body) {
    throw new RealmError('network', `fetching the model from ${url} failed: HTTP ${res.status}`);
  }
  const length = Number(res.headers.get('content-length') ?? 0);
  const encoded = (res.headers.get('content-encoding') ?? 'identity') !== 'identity';
  const total = resumed && partial ? partial.total : encoded ? 0 : length;

  let m: Manifest | null = null;
  if (store) {
    if (resumed && partial) m = partial;
    else {
      await forget(store, url);
      // Without a known size there is nothing to resume against: cache at the end.
      m = { url, total, validator: validatorOf(res), chunkSize: CHUNK, chunks: 0, complete: false };
    }
  }
  const sink = await alloc(total);
  if (resumed && store && m) {
    if (!(await readChunks(store, m, sink, m.chunks, 'cache', opts.onProgress))) {
      await res.body.cancel();
      await forget(store, url);
      return download(url, store, null, opts, alloc);
    }
  }

  const reader = res.body.getReader();
  try {
    for (;;) {
      let part: ReadableStreamReadResult<Uint8Array>;
      try {
        part = await reader.read();
      } catch (e) {
        throw new RealmError(
          'network',
          `the download of ${url} was cut off after ${sink.at} of ${total || '?'} bytes (${String(e)}); ` +
            (m && total > 0 ? 'loading it again resumes from the last cached 16 MiB' : 'load it again'),
        );
      }
      if (part.done) break;
      sink.write(part.value);
      opts.onProgress?.({ phase: 'download', loaded: sink.at, total });
      if (store && m && total > 0) await storeFullChunks(store, m, sink);
    }
  } catch (e) {
    // Stop the transfer too (a full quota, a bad size), not only the reading.
    await reader.cancel().catch(() => {});
    throw e;
  }
  if (total > 0 && sink.at !== total) {
    throw new RealmError('network', `the download of ${url} ended after ${sink.at} of ${total} bytes: load it again`);
  }
  await verify(sink, opts, async () => {
    if (store) await forget(store, url);
  });
  if (store && m) {
    if (m.total === 0) m.total = sink.at;
    await storeChunks(store, m, sink, sink.at);
    m.complete = true;
    await put(store, url, 'manifest', JSON.stringify(m));
  }
  return sink;
}

/** Cache every chunk the download has completed (not the last, partial one). */
async function storeFullChunks(store: Cache, m: Manifest, sink: ModelSink): Promise<void> {
  const before = m.chunks;
  await storeChunks(store, m, sink, Math.floor(sink.at / m.chunkSize) * m.chunkSize);
  if (m.chunks !== before) await put(store, m.url, 'manifest', JSON.stringify(m));
}

async function storeChunks(store: Cache, m: Manifest, sink: ModelSink, upTo: number): Promise<void> {
  while (m.chunks * m.chunkSize < upTo) {
    const start = m.chunks * m.chunkSize;
    // Response copies the view: one chunk, not the model.
    await put(store, m.url, m.chunks, unshared(sink.view(start, Math.min(upTo, start + m.chunkSize))));
    m.chunks++;
  }
}
