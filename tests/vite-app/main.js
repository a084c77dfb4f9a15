// A plain Vite app on realm-web as an npm user gets it (scripts/test-vite-app.sh installs the
// packed tarball). The query string names the model, the prompt, the number of tokens and of
// threads; the app runs one greedy completion and leaves the outcome on `window.realmApp`:
// { ok: true, ids, text, promptTokens, info } or { ok: false, code, message }.
import { createEngine } from 'realm-web';

const params = new URLSearchParams(location.search);
const out = document.getElementById('out');

async function run() {
  const engine = await createEngine({
    model: params.get('model') ?? '',
    device: 'wasm',
    threads: Number(params.get('threads') ?? '1'),
  });
  try {
    const res = await engine.completions.create({
      prompt: params.get('prompt') ?? '',
      temperature: 0,
      max_tokens: Number(params.get('max_tokens') ?? '8'),
    });
    return {
      ok: true,
      ids: res.choices[0].token_ids,
      text: res.choices[0].text,
      promptTokens: res.usage.prompt_tokens,
      info: await engine.info(),
    };
  } finally {
    await engine.unload();
  }
}

run().then(
  (result) => {
    window.realmApp = result;
    out.textContent = result.text;
  },
  (e) => {
    window.realmApp = { ok: false, code: e?.code ?? null, message: String(e?.message ?? e) };
    out.textContent = `error: ${window.realmApp.message}`;
  },
);
