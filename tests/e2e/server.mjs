// The static server of the browser tests: the test page, the built realm-web package and the
// model cache, with the COOP/COEP headers that make the page cross-origin isolated
// (SharedArrayBuffer: abort mid-answer, later the threads build). No dependencies.
//
//   node tests/e2e/server.mjs [port]      (REALM_CACHE_DIR as in scripts/fetch-models.sh)

import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { homedir } from 'node:os';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const cache = process.env.REALM_CACHE_DIR || join(homedir(), '.cache', 'realm');
const port = Number(process.argv[2] || process.env.REALM_E2E_PORT || 8173);

/** URL prefix -> directory. */
const mounts = [
  ['/realm-web/', join(root, 'npm', 'realm-web', 'dist')],
  ['/models/', join(cache, 'models')],
  ['/fixtures/', join(root, 'tests', 'fixtures')],
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
};

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
  const file = locate(new URL(req.url ?? '/', 'http://localhost').pathname);
  let size = -1;
  try {
    if (file) size = statSync(file).isFile() ? statSync(file).size : -1;
  } catch {
    size = -1;
  }
  if (size < 0 || (req.method !== 'GET' && req.method !== 'HEAD')) {
    res.writeHead(404, { ...headers, 'Content-Type': 'text/plain' }).end('not found\n');
    return;
  }
  res.writeHead(200, {
    ...headers,
    'Content-Type': types[extname(file)] ?? 'application/octet-stream',
    'Content-Length': String(size),
  });
  if (req.method === 'HEAD') res.end();
  else createReadStream(file).pipe(res);
});

server.listen(port, '127.0.0.1', () => {
  console.log(`realm e2e server on http://127.0.0.1:${port}/ (models from ${cache})`);
});
