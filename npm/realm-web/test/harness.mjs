// Test harness of the remote engine: the shared realm-server that scripts/test-clients.sh
// starts (REALM_TEST_URL and its keys), or, without it, one this harness starts on the real
// model (loopback, a free port, the same tenants as clients/SCENARIOS.md says) and stops by
// its PID. S6 always starts its own, to kill it.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const CACHE = process.env.REALM_CACHE_DIR ?? join(homedir(), '.cache/realm');
const MODEL = process.env.REALM_MODEL ?? join(CACHE, 'models/SmolLM2-135M-Instruct.Q4_1.gguf');
const BIN = process.env.REALM_SERVER_BIN ?? join(ROOT, 'target/debug/realm-server');

export const KEY = process.env.REALM_TEST_KEY ?? 'client-test-key-0123456789';
export const LIMITED_KEY = process.env.REALM_TEST_LIMITED_KEY ?? 'client-limited-key-abcdef';
export const METRICS_KEY = process.env.REALM_TEST_METRICS_KEY ?? 'client-metrics-key';

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

const sha = (k) => createHash('sha256').update(k).digest('hex');

function tenantsFile() {
  const dir = mkdtempSync(join(tmpdir(), 'realm-web-test-'));
  const p = join(dir, 'tenants.toml');
  writeFileSync(
    p,
    `[[tenant]]\nname = "main"\nkey_sha256 = ["${sha(KEY)}"]\n\n` +
      `[[tenant]]\nname = "limited"\nkey_sha256 = ["${sha(LIMITED_KEY)}"]\nrequests_per_minute = 2\nmax_tokens = 64\n`,
  );
  return p;
}

/** A realm-server this harness started. */
export class OwnServer {
  constructor(port) {
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.logPath = join(tmpdir(), `realm-web-test-${port}.log`);
    const log = openSync(this.logPath, 'w');
    this.proc = spawn(
      BIN,
      ['-m', MODEL, '--host', '127.0.0.1', '--port', String(port), '-t', '2', '--config', tenantsFile(),
        '--metrics-key', METRICS_KEY, '--max-running', '8', '-c', '4096', '--cors-origin', '*'],
      { stdio: ['ignore', log, log] },
    );
    this.exited = new Promise((res) => this.proc.on('exit', (code, sig) => res(code ?? sig)));
  }

  static async start(port) {
    return new OwnServer(port ?? (await freePort())).ready();
  }

  async ready(timeoutMs = 120_000) {
    const t0 = Date.now();
    while (Date.now() - t0 < timeoutMs) {
      if (this.proc.exitCode !== null) throw new Error(`realm-server exited: ${this.logs()}`);
      try {
        const r = await fetch(`${this.url}/health`);
        if (r.status === 200) return this;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`realm-server did not become ready: ${this.logs()}`);
  }

  logs() {
    try {
      return readFileSync(this.logPath, 'utf8').slice(-4000);
    } catch {
      return '';
    }
  }

  async stop() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 30_000);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }

  async kill() {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    await this.exited;
  }
}

/** The server under test: { url, ws, stop() } (stop is a no-op for the shared one). */
export async function server() {
  if (process.env.REALM_TEST_URL) {
    const url = process.env.REALM_TEST_URL.replace(/\/+$/, '');
    return { url, ws: url.replace(/^http/, 'ws'), stop: async () => 0 };
  }
  const s = await OwnServer.start();
  return { url: s.url, ws: s.url.replace(/^http/, 'ws'), stop: () => s.stop(), own: s };
}

/** `/metrics` as { name{labels}: value }. */
export async function metrics(url) {
  const r = await fetch(`${url}/metrics`, { headers: { Authorization: `Bearer ${METRICS_KEY}` } });
  const out = {};
  for (const line of (await r.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

export async function running(url) {
  return (await metrics(url)).realm_num_requests_running ?? 0;
}

/** Poll `f` until `pred` holds or `timeoutMs` passes; the last value. */
export async function until(f, pred, timeoutMs = 10_000) {
  const t0 = Date.now();
  for (;;) {
    const v = await f();
    if (pred(v) || Date.now() - t0 > timeoutMs) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The same chat request over HTTP, as the server answers it whole. */
export async function httpChat(url, body) {
  const r = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${KEY}` },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`HTTP ${r.status}: ${await r.text()}`);
  return r.json();
}
