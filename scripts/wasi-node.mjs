// Runs a wasm32-wasip1 binary (a test or an example) under Node's WASI: the cargo runner for
// `cargo test --target wasm32-wasip1`, e.g.
//   CARGO_TARGET_WASM32_WASIP1_RUNNER="node --no-warnings scripts/wasi-node.mjs" \
//   RUSTFLAGS="-C target-feature=+simd128" cargo test --target wasm32-wasip1 -p realm-backend-cpu
// argv: the .wasm path, then the program's own arguments. Exits with the program's code.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import process from 'node:process';

const [path, ...rest] = process.argv.slice(2);
if (!path) {
  console.error('usage: node scripts/wasi-node.mjs <program.wasm> [args...]');
  process.exit(2);
}
const wasi = new WASI({
  version: 'preview1',
  args: [path, ...rest],
  env: process.env,
  preopens: { '/': '/' },
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(path));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
process.exit(wasi.start(instance));
