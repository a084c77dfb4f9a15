/** The page's side of the Worker: numbered requests, their answers, streamed tokens. */

import { RealmError, fromWireError } from './errors.js';
import type { Request, Response } from './protocol.js';
import type { LoadProgress } from './types.js';

type Without<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;
export type Call = Without<Request, 'id'>;

interface Pending {
  resolve(value: unknown): void;
  reject(e: RealmError): void;
  onToken?: (token: number | null, text: string) => void;
}

export class WorkerClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private dead: RealmError | null = null;

  constructor(
    private readonly worker: Worker,
    private readonly onProgress?: (p: LoadProgress) => void,
  ) {
    worker.onmessage = (ev: MessageEvent<Response>) => this.receive(ev.data);
    worker.onerror = (ev: ErrorEvent) => {
      ev.preventDefault();
      this.fail(new RealmError('worker', `the engine's Worker failed: ${ev.message || 'it could not start'}`));
    };
  }

  call<T>(req: Call, transfer: Transferable[] = [], onToken?: Pending['onToken']): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onToken });
      this.worker.postMessage({ ...req, id } as Request, transfer);
    });
  }

  /** A message with no answer (`abort`). */
  notify(msg: Request): void {
    if (!this.dead) this.worker.postMessage(msg);
  }

  /** Stop routing a request's tokens (an aborted stream); its answer is still awaited. */
  mute(id: number): void {
    const p = this.pending.get(id);
    if (p) p.onToken = undefined;
  }

  get lastId(): number {
    return this.nextId - 1;
  }

  terminate(reason: RealmError): void {
    this.worker.terminate();
    this.fail(reason);
  }

  private fail(e: RealmError): void {
    this.dead ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private receive(msg: Response): void {
    if (msg.type === 'progress') {
      this.onProgress?.({ phase: msg.phase, loaded: msg.loaded, total: msg.total });
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return;
    if (msg.type === 'token') {
      p.onToken?.(msg.token, msg.text);
      return;
    }
    this.pending.delete(msg.id);
    if (msg.type === 'result') p.resolve(msg.value);
    else p.reject(fromWireError(msg.error));
  }
}
