// The static server of the browser tests, of the demo (scripts/run.sh) and of the benchmark
// (scripts/bench-web.sh): the test page, the demo, the benchmark page, the built realm-web
// package, wllama from node_modules and the model cache, with the COOP/COEP headers that make
// the page cross-origin isolated (SharedArrayBuffer: abort mid-answer, later the threads
// build). Single byte ranges (`Range: bytes=N-[M]`), so downloads can resume. No dependencies.
//
//   node tests/e2e/server.mjs [port] [host]      (REALM_CACHE_DIR as in scripts/fetch-models.sh)
//
// For the tests: `GET /__requests` is the log of every request so far (method, path, range,
// status), `GET /__cut?path=/models/x.gguf&after=N` makes the next GET of that path drop the
// connection after N bytes (an interrupted download).

import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { homedir } from 'node:os';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const cache = process.env.REALM_CACHE_DIR || join(homedir(), '.cache', 'realm');
const port = Number(process.argv[2] || process.env.REALM_E2E_PORT || 8173);
const host = process.argv[3] || '127.0.0.1';

/** URL prefix -> directory. */
const mounts = [
  ['/realm-web/', join(root, 'npm', 'realm-web', 'dist')],
  ['/models/', join(cache, 'models')],
  ['/fixtures/', join(root, 'tests', 'fixtures')],
  ['/demo/', join(root, 'demo')],
  // The browser benchmark (scripts/bench-web.sh) and the engine it compares with.
  ['/bench/', join(root, 'bench', 'web')],
  ['/wllama/', join(root, 'node_modules', '@wllama', 'wllama', 'esm')],
  // The Vite app on the packed package, as scripts/test-vite-app.sh builds it.
  ['/vite-app/', join(root, 'target', 'vite-app', 'app', 'dist')],
  ['/', join(root, 'tests', 'e2e', 'page')],
];

const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.ts': 'text/plain; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** Every request, for the tests' assertions (`/__requests`). */
const log = [];
/** path -> bytes after which the next GET of it is cut off (`/__cut`). */
const cuts = new Map();

/** `bytes=START-[END]` against a file of `size` bytes: [start, end] inclusive, or null for the
 * whole file; 'bad' when it cannot be satisfied. Multiple ranges are answered whole. */
function parseRange(header, size) {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header ?? '');
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let start;
  let end;
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  return start <= end && start < size ? [start, end] : 'bad';
}

function control(url, res, headers) {
  if (url.pathname === '/__requests') {
    res.writeHead(200, { ...headers, 'Content-Type': 'application/json' }).end(JSON.stringify(log));
    return true;
  }
  if (url.pathname === '/__cut') {
    cuts.set(url.searchParams.get('path'), Number(url.searchParams.get('after')));
    res.writeHead(200, { ...headers, 'Content-Type': 'text/plain' }).end('ok\n');
    return true;
  }
  return false;
}

function locate(pathname) {
  for (const [prefix, dir] of mounts) {
    if (!pathname.startsWith(prefix)) continue;
    const rel = normalize(decodeURIComponent(pathname.slice(prefix.length)) || 'index.html');
    const file = resolve(dir, rel);
    // Nothing outside the mounted directory.
    if (file !== dir && !file.startsWith(dir + sep)) return null;
    return file;
  }
  return null;
}

const server = createServer((req, res) => {
  const headers = {
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Embedder-Policy': 'require-corp',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'Cache-Control': 'no-store',
  };
  const url = new URL(req.url ?? '/', 'http://localhost');
  const entry = { method: req.method, path: url.pathname, range: req.headers.range ?? null, status: 0 };
  if (!url.pathname.startsWith('/__')) log.push(entry);
  res.on('finish', () => (entry.status = res.statusCode));
  if (control(url, res, headers)) return;
  const file = locate(url.pathname);
  let stat = null;
  try {
    if (file) stat = statSync(file);
  } catch {
    stat = null;
  }
  if (!stat?.isFile() || (req.method !== 'GET' && req.method !== 'HEAD')) {
    res.writeHead(404, { ...headers, 'Content-Type': 'text/plain' }).end('not found\n');
    return;
  }
  const size = stat.size;
  const range = parseRange(req.headers.range, size);
  if (range === 'bad') {
    res.writeHead(416, { ...headers, 'Content-Range': `bytes */${size}` }).end();
    return;
  }
  const [start, end] = range ?? [0, size - 1];
  res.writeHead(range ? 206 : 200, {
    ...headers,
    'Content-Type': types[extname(file)] ?? 'application/octet-stream',
    'Content-Length': String(end - start + 1),
    'Accept-Ranges': 'bytes',
    'Last-Modified': stat.mtime.toUTCString(),
    ...(range ? { 'Content-Range': `bytes ${start}-${end}/${size}` } : {}),
  });
  if (req.method === 'HEAD' || size === 0) {
    res.end();
    return;
  }
  const cut = req.method === 'GET' ? cuts.get(url.pathname) : undefined;
  if (cut === undefined) {
    createReadStream(file, { start, end }).pipe(res);
    return;
  }
  // An interrupted download: send `cut` bytes, then drop the connection.
  cuts.delete(url.pathname);
  const stream = createReadStream(file, { start, end: Math.min(end, start + cut - 1) });
  stream.pipe(res, { end: false });
  stream.on('end', () => setTimeout(() => res.destroy(), 50));
});

server.listen(port, host, () => {
  console.log(`realm server on http://${host}:${port}/ (models from ${cache})`);
});
