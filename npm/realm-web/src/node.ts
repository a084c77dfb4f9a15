/** realm-web's entry in Node (the `node` condition of the package's `exports`): the same API,
 * with the remote engine's WebSocket taken from the `ws` package when it is installed (it can
 * send the API key in a header), else Node's global `WebSocket` (Node >= 22). The Worker
 * engine needs a browser. */

import { RealmError } from './errors.js';
import { setSocketLoader } from './socket.js';
import type { WebSocketConstructor } from './types.js';

setSocketLoader(async () => {
  try {
    // A variable specifier: `ws` is an optional peer dependency, not a build-time import.
    const spec = 'ws';
    const mod = (await import(spec)) as { WebSocket?: WebSocketConstructor; default?: WebSocketConstructor };
    const ctor = mod.WebSocket ?? mod.default;
    if (typeof ctor === 'function') return { ctor, nodeOptions: true };
  } catch {
    // not installed: the global one, if this Node has it
  }
  const g = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (typeof g === 'function') return { ctor: g, nodeOptions: false };
  throw new RealmError(
    'invalid-argument',
    'this Node has no WebSocket: install the ws package (npm install ws), or use Node >= 22',
  );
});

export * from './index.js';
