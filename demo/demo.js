// The Realm chat demo: realm-web's public API and nothing else (createEngine, RealmError,
// clearModelCache). Served by scripts/run.sh next to the built package at /realm-web/. The
// model runs on this device (a URL or a file) or on a realm-server (its WebSocket URL and key):
// the same engine interface, the same chat code.
import { clearModelCache, createEngine, RealmError } from '/realm-web/index.js';

/** @typedef {import('/realm-web/index.js').RealmEngine} RealmEngine */

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const ui = {
  url: /** @type {HTMLInputElement} */ ($('model-url')),
  load: /** @type {HTMLButtonElement} */ ($('load')),
  device: /** @type {HTMLSelectElement} */ ($('device')),
  file: /** @type {HTMLInputElement} */ ($('file')),
  drop: $('drop'),
  progress: /** @type {HTMLProgressElement} */ ($('progress')),
  phase: $('phase'),
  loadLog: $('load-log'),
  backend: $('backend'),
  isolation: $('isolation'),
  error: $('error'),
  messages: $('messages'),
  prompt: /** @type {HTMLTextAreaElement} */ ($('prompt')),
  maxTokens: /** @type {HTMLInputElement} */ ($('max-tokens')),
  temperature: /** @type {HTMLInputElement} */ ($('temperature')),
  send: /** @type {HTMLButtonElement} */ ($('send')),
  stop: /** @type {HTMLButtonElement} */ ($('stop')),
  reset: $('reset'),
  stats: $('stats'),
  localPanel: $('local-panel'),
  remoteForm: $('remote-form'),
  serverUrl: /** @type {HTMLInputElement} */ ($('server-url')),
  apiKey: /** @type {HTMLInputElement} */ ($('api-key')),
  connect: /** @type {HTMLButtonElement} */ ($('connect')),
};

/** @type {RealmEngine | null} */
let engine = null;
/** @type {AbortController | null} */
let answering = null;
/** @type {{ role: string, content: string }[]} */
let history = [];
let loading = false;

ui.isolation.textContent = crossOriginIsolated ? 'isolated: Stop is instant' : 'not isolated: Stop ends the stream only';

function showError(e) {
  const text =
    e instanceof RealmError ? `RealmError ${e.code}: ${e.message}` : `${e?.name ?? 'Error'}: ${e?.message ?? String(e)}`;
  ui.error.textContent = text;
  ui.error.dataset.code = e instanceof RealmError ? e.code : 'unknown';
  ui.error.hidden = false;
}

function clearError() {
  ui.error.hidden = true;
  ui.error.textContent = '';
  delete ui.error.dataset.code;
}

const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;

function refresh() {
  ui.load.disabled = loading;
  ui.connect.disabled = loading;
  ui.file.disabled = loading;
  ui.send.disabled = loading || engine === null || answering !== null;
  ui.stop.disabled = answering === null;
}

/** Load a model from a URL or a File, replacing the current engine. */
function load(model, name) {
  const device = /** @type {'auto' | 'webgpu' | 'wasm'} */ (ui.device.value);
  return start((onProgress) => createEngine({ model, device, onProgress, modelName: name }), name);
}

/** Connect to a realm-server, replacing the current engine. */
function connect(remote, apiKey) {
  return start(() => createEngine({ remote, apiKey: apiKey || undefined }), remote);
}

/** Make an engine with `make(onProgress)` in place of the current one. */
async function start(make, name) {
  clearError();
  answering?.abort();
  loading = true;
  refresh();
  if (engine) {
    const old = engine;
    engine = null;
    await old.unload().catch(() => {});
  }
  ui.backend.textContent = 'loading…';
  ui.loadLog.textContent = '';
  /** Phases in the order they started: [name, start time, bytes so far]. */
  /** @type {[string, number, number][]} */
  const phases = [];
  const showLog = (end) =>
    (ui.loadLog.textContent = phases
      .map(([name, t0, bytes], i) => {
        const secs = (((phases[i + 1]?.[1] ?? end) - t0) / 1000).toFixed(1);
        return `${name} ${name === 'download' || name === 'cache' ? mb(bytes) + ' ' : ''}${secs} s`;
      })
      .join(' · '));
  const onProgress = (p) => {
    const now = performance.now();
    if (phases.at(-1)?.[0] !== p.phase) phases.push([p.phase, now, 0]);
    phases[phases.length - 1][2] = p.loaded;
    ui.progress.max = p.total || 1;
    ui.progress.value = p.total ? p.loaded : 0;
    ui.phase.textContent = p.total ? `${p.phase} ${mb(p.loaded)} / ${mb(p.total)}` : `${p.phase} ${mb(p.loaded)}`;
    showLog(now);
  };
  try {
    ui.phase.textContent = 'starting…';
    engine = await make(onProgress);
    showLog(performance.now());
    const info = await engine.info();
    ui.backend.textContent = info.backend;
    ui.backend.title = info.reason;
    ui.phase.textContent =
      info.backend === 'remote' ? `connected: ${String(info.engine.model)} on ${info.variant}` : `ready: ${name}`;
    ui.progress.value = ui.progress.max;
  } catch (e) {
    engine = null;
    ui.backend.textContent = 'no model';
    ui.phase.textContent = 'failed';
    ui.progress.value = 0;
    showError(e);
  } finally {
    loading = false;
    refresh();
  }
}

function bubble(role, text) {
  const div = document.createElement('div');
  div.className = `msg ${role}`;
  div.textContent = text;
  ui.messages.append(div);
  div.scrollIntoView({ block: 'end' });
  return div;
}

async function ask(text) {
  if (!engine || answering) return;
  clearError();
  history.push({ role: 'user', content: text });
  bubble('user', text);
  const out = bubble('assistant', '');
  out.classList.add('streaming');
  const controller = new AbortController();
  answering = controller;
  refresh();
  let tokens = 0;
  let content = '';
  const t0 = performance.now();
  let tFirst = 0;
  const stats = () => {
    const now = performance.now();
    const decode = tokens > 1 ? ((tokens - 1) / (now - tFirst)) * 1000 : 0;
    ui.stats.textContent =
      `${tokens} tokens · ${decode.toFixed(1)} tok/s` + (tFirst ? ` · first token ${((tFirst - t0) / 1000).toFixed(2)} s` : '');
  };
  try {
    const stream = await engine.chat.completions.create({
      messages: history,
      stream: true,
      max_tokens: Number(ui.maxTokens.value) || 256,
      temperature: Number(ui.temperature.value),
      signal: controller.signal,
    });
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (choice.token_ids.length) {
        if (!tFirst) tFirst = performance.now();
        tokens += choice.token_ids.length;
      }
      content += choice.delta.content ?? '';
      out.textContent = content;
      stats();
    }
  } catch (e) {
    if (e instanceof RealmError && e.code === 'aborted') out.classList.add('stopped');
    else showError(e);
  } finally {
    out.classList.remove('streaming');
    out.classList.add('done');
    history.push({ role: 'assistant', content });
    answering = null;
    refresh();
  }
}

$('load-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const url = ui.url.value.trim();
  load(url, url.slice(url.lastIndexOf('/') + 1) || 'model');
});

$('remote-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  connect(ui.serverUrl.value.trim(), ui.apiKey.value);
});

for (const radio of document.querySelectorAll('input[name=where]')) {
  radio.addEventListener('change', () => {
    const server = /** @type {HTMLInputElement} */ (radio).value === 'server' && /** @type {HTMLInputElement} */ (radio).checked;
    if (/** @type {HTMLInputElement} */ (radio).checked) {
      ui.remoteForm.hidden = !server;
      ui.localPanel.hidden = server;
    }
  });
}

ui.file.addEventListener('change', () => {
  const f = ui.file.files?.[0];
  if (f) load(f, f.name);
  ui.file.value = '';
});

ui.drop.addEventListener('dragover', (ev) => {
  ev.preventDefault();
  ui.drop.classList.add('over');
});
ui.drop.addEventListener('dragleave', () => ui.drop.classList.remove('over'));
ui.drop.addEventListener('drop', (ev) => {
  ev.preventDefault();
  ui.drop.classList.remove('over');
  const f = ev.dataTransfer?.files?.[0];
  if (f && !ui.load.disabled) load(f, f.name);
});

$('chat-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = ui.prompt.value.trim();
  if (!text) return;
  ui.prompt.value = '';
  ask(text);
});
ui.prompt.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey) {
    ev.preventDefault();
    $('chat-form').requestSubmit();
  }
});

ui.stop.addEventListener('click', () => answering?.abort());

ui.reset.addEventListener('click', () => {
  answering?.abort();
  history = [];
  ui.messages.replaceChildren();
  ui.stats.textContent = '';
});

$('clear-cache').addEventListener('click', async () => {
  try {
    await clearModelCache();
    ui.phase.textContent = 'model cache cleared';
  } catch (e) {
    showError(e);
  }
});

document.body.dataset.ready = 'true';
