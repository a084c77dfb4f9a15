/** Model bytes from a URL, Blob or buffer, with download progress. */

import { RealmError } from './errors.js';
import type { LoadProgress, ModelSource } from './types.js';

/** The bytes as one ArrayBuffer; `owned` when this package made it, so it can be transferred
 * to the Worker instead of copied (the caller's own buffers are never detached). */
export async function modelBytes(
  src: ModelSource,
  onProgress?: (p: LoadProgress) => void,
): Promise<{ buffer: ArrayBuffer; owned: boolean }> {
  if (src instanceof ArrayBuffer) return { buffer: src, owned: false };
  if (src instanceof Uint8Array) return { buffer: src.slice().buffer as ArrayBuffer, owned: true };
  if (src instanceof Blob) return { buffer: await src.arrayBuffer(), owned: true };
  return { buffer: await download(String(src), onProgress), owned: true };
}

export function modelName(src: ModelSource): string {
  if (typeof src === 'string' || src instanceof URL) {
    const path = new URL(String(src), globalThis.location?.href).pathname;
    return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1)) || 'model';
  }
  return src instanceof File ? src.name : 'local';
}

async function download(url: string, onProgress?: (p: LoadProgress) => void): Promise<ArrayBuffer> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new RealmError('network', `could not fetch the model from ${url}: ${String(e)}`);
  }
  if (!res.ok || !res.body) {
    throw new RealmError('network', `fetching the model from ${url} failed: HTTP ${res.status}`);
  }
  const total = Number(res.headers.get('content-length') ?? 0);
  const reader = res.body.getReader();
  // With a known length the bytes go straight into one buffer: no second copy.
  let buf = new Uint8Array(total > 0 ? total : 1 << 20);
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (loaded + value.byteLength > buf.byteLength) {
      const grown = new Uint8Array(Math.max(buf.byteLength * 2, loaded + value.byteLength));
      grown.set(buf.subarray(0, loaded));
      buf = grown;
    }
    buf.set(value, loaded);
    loaded += value.byteLength;
    onProgress?.({ phase: 'download', loaded, total });
  }
  return loaded === buf.byteLength ? buf.buffer : buf.slice(0, loaded).buffer;
}
