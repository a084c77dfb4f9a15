// The README's remote example, as written, against the real server: only its address is
// replaced (and the key given in REALM_API_KEY, as the example reads it).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { KEY, server } from './harness.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
let srv;
before(async () => (srv = await server()));
after(async () => assert.equal(await srv.stop(), 0));

test('the README remote example runs as written', async () => {
  const readme = readFileSync(join(HERE, '..', 'README.md'), 'utf8');
  const m = readme.match(/<!-- example: remote[^>]*-->\n```js\n([\s\S]*?)```/);
  assert.ok(m, 'the README has the remote example');
  assert.ok(m[1].includes("'ws://127.0.0.1:8080'"));
  const code = m[1].replace("'ws://127.0.0.1:8080'", JSON.stringify(srv.ws));
  // Inside the package, so `import 'realm-web'` resolves to it (and its `node` entry).
  const file = join(HERE, `.readme-example-${process.pid}.mjs`);
  writeFileSync(file, code);
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [file], {
      env: { ...process.env, REALM_API_KEY: KEY },
      timeout: 60_000,
    });
    // the streamed answer (any text: sampled), then the greedy completion and its usage
    const at = stdout.lastIndexOf('\n 4, 5');
    assert.ok(at > 0, `the streamed answer, then the completion: ${JSON.stringify(stdout)}`);
    assert.match(stdout.slice(at), /completion_tokens: 8/);
  } finally {
    rmSync(file, { force: true });
  }
});
