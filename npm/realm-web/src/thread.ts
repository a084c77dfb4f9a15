/** A thread of the engine's CPU pool (threads build only): instantiates the engine Worker's
 * module over its shared memory, says it is ready, then runs the closures the pool hands it
 * (each returns when the pool shuts down) and says it is idle again. */

interface ThreadModule {
  default(input: { module_or_path: WebAssembly.Module; memory: WebAssembly.Memory }): Promise<unknown>;
  runThread(ptr: number): void;
}

export type ThreadMessage =
  | { type: 'start'; glue: string; module: WebAssembly.Module; memory: WebAssembly.Memory }
  | { type: 'run'; ptr: number };

export type ThreadReply = { type: 'ready' } | { type: 'idle' } | { type: 'failed'; message: string };

interface ThreadScope {
  postMessage(message: ThreadReply): void;
  onmessage: ((ev: MessageEvent<ThreadMessage>) => void) | null;
}

const scope = self as unknown as ThreadScope;
let wasm: ThreadModule | null = null;

scope.onmessage = (ev) => {
  const msg = ev.data;
  if (msg.type === 'start') {
    void (async () => {
      try {
        const m = (await import(/* @vite-ignore */ msg.glue)) as ThreadModule;
        await m.default({ module_or_path: msg.module, memory: msg.memory });
        wasm = m;
        scope.postMessage({ type: 'ready' });
      } catch (e) {
        scope.postMessage({ type: 'failed', message: String(e) });
      }
    })();
  } else if (wasm) {
    wasm.runThread(msg.ptr);
    scope.postMessage({ type: 'idle' });
  }
};
