/** Which WebSocket the remote engine uses. Browsers (and Node >= 22) have a global one; the
 * package's Node entry (`node.ts`) prefers the `ws` package, which can send headers. */

import { RealmError } from './errors.js';
import type { WebSocketConstructor } from './types.js';

export interface SocketImpl {
  ctor: WebSocketConstructor;
  /** Whether the constructor takes `{ headers, maxPayload }` as its third argument (`ws`):
   * then the key travels in a header rather than in the URL. */
  nodeOptions: boolean;
}

type Loader = () => Promise<SocketImpl>;

let loader: Loader = async () => {
  const g = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (typeof g !== 'function') {
    throw new RealmError(
      'invalid-argument',
      'this environment has no WebSocket: pass createEngine({ remote, WebSocket }) an implementation',
    );
  }
  return { ctor: g, nodeOptions: false };
};

/** Replace how the default WebSocket is found (the Node entry does). */
export function setSocketLoader(l: Loader): void {
  loader = l;
}

export function loadSocket(): Promise<SocketImpl> {
  return loader();
}
