/** Model sources: what the Worker is sent, and the name responses carry. */

import { absolute } from './cache.js';
import { RealmError } from './errors.js';
import type { WireSource } from './protocol.js';
import type { ModelSource } from './types.js';

/** The model source as the Worker receives it, and what to transfer (not copy) to it. A
 * Blob/File crosses without copying its bytes; the caller's own buffers are copied, never
 * detached. */
export function wireSource(src: ModelSource): { source: WireSource; transfer: Transferable[] } {
  if (typeof src === 'string' || src instanceof URL) return { source: { kind: 'url', url: absolute(src) }, transfer: [] };
  if (src instanceof Blob) return { source: { kind: 'blob', blob: src }, transfer: [] };
  if (src instanceof ArrayBuffer || src instanceof Uint8Array) {
    const bytes = src instanceof ArrayBuffer ? src.slice(0) : (src.slice().buffer as ArrayBuffer);
    return { source: { kind: 'bytes', bytes }, transfer: [bytes] };
  }
  throw new RealmError('invalid-argument', 'model must be a URL, a Blob/File, an ArrayBuffer or a Uint8Array');
}

export function modelName(src: ModelSource): string {
  if (typeof src === 'string' || src instanceof URL) {
    const path = new URL(String(src), globalThis.location?.href).pathname;
    return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1)) || 'model';
  }
  return src instanceof File ? src.name : 'local';
}
