// realm-web's model cache in headless Chromium: a second load of the same URL makes no request
// (the test server's request log says so), sha256 is checked, and a cut-off download resumes
// with a Range request from the last cached chunk.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Browser, type Page } from '@playwright/test';

const MODEL = '/models/SmolLM2-135M-Instruct.Q4_1.gguf';
const CHUNK = 16 << 20;
const file = join(process.env.REALM_CACHE_DIR || join(homedir(), '.cache', 'realm'), 'models', 'SmolLM2-135M-Instruct.Q4_1.gguf');
const SIZE = readFileSync(file).byteLength;
const SHA256 = createHash('sha256').update(readFileSync(file)).digest('hex');

declare global {
  interface Window {
    realm: typeof import('../../npm/realm-web/dist/index.js');
  }
}

interface Logged {
  method: string;
  path: string;
  range: string | null;
  status: number;
}

/** The server's log of model requests after the first `from` entries. */
async function modelRequests(page: Page, from: number): Promise<Logged[]> {
  const all: Logged[] = await (await page.request.get('/__requests')).json();
  return all.slice(from).filter((r) => r.path === MODEL);
}

async function logLength(page: Page): Promise<number> {
  return ((await (await page.request.get('/__requests')).json()) as Logged[]).length;
}

/** A page in a fresh browser context: an empty Cache Storage. */
async function freshPage(browser: Browser): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
  await page.goto('/');
  await page.waitForFunction(() => window.realm !== undefined);
  return page;
}

/** Load the model (then unload it) and report the phases seen and the bytes each reached. */
async function load(page: Page, opts: { sha256?: string } = {}) {
  return page.evaluate(
    async ([url, sha256]) => {
      const phases: Record<string, { loaded: number; total: number }> = {};
      const t0 = performance.now();
      try {
        const engine = await window.realm.createEngine({
          model: url,
          sha256: sha256 || undefined,
          onProgress: (p) => (phases[p.phase] = { loaded: p.loaded, total: p.total }),
        });
        const ms = performance.now() - t0;
        const ids = await engine.tokenize('Hello world');
        await engine.unload();
        return { ok: true as const, phases, ms, ids };
      } catch (e) {
        const r = e as { code?: string; message?: string };
        return { ok: false as const, phases, code: r.code, message: r.message, realm: e instanceof window.realm.RealmError };
      }
    },
    [MODEL, opts.sha256 ?? ''] as const,
  );
}

test('a second load of the same URL comes from the cache with no request; sha256 is checked', async ({ browser }) => {
  const page = await freshPage(browser);
  const mark = await logLength(page);
  expect(await page.evaluate((u) => window.realm.isModelCached(u), MODEL)).toBe(false);

  const first = await load(page, { sha256: SHA256 });
  console.log(`first load (network): ${JSON.stringify(first)}`);
  expect(first.ok).toBe(true);
  expect(first.phases.download).toEqual({ loaded: SIZE, total: SIZE });
  expect(first.phases.cache).toBeUndefined();
  expect(await page.evaluate((u) => window.realm.isModelCached(u), MODEL)).toBe(true);
  expect(await modelRequests(page, mark)).toHaveLength(1);

  const second = await load(page, { sha256: SHA256 });
  console.log(`second load (cache): ${JSON.stringify(second)}`);
  expect(second.ok).toBe(true);
  expect(second.phases.cache).toEqual({ loaded: SIZE, total: SIZE });
  expect(second.phases.download).toBeUndefined();
  expect(second.phases.verify).toEqual({ loaded: SIZE, total: SIZE });
  expect(second.ok && first.ok && second.ids).toEqual(first.ok && first.ids);
  // The model URL was requested once, by the first load only.
  expect(await modelRequests(page, mark)).toHaveLength(1);

  // A wrong hash is a typed error, and the cached copy that failed it is dropped.
  const bad = await load(page, { sha256: '0'.repeat(64) });
  expect(bad).toMatchObject({ ok: false, code: 'integrity', realm: true });
  expect(await page.evaluate((u) => window.realm.isModelCached(u), MODEL)).toBe(false);
  await page.context().close();
});

test('a cut-off download is a network error, and the next load resumes with a Range request', async ({ browser }) => {
  const page = await freshPage(browser);
  const mark = await logLength(page);
  const after = 2 * CHUNK + 5_000_000;
  await page.request.get(`/__cut?path=${encodeURIComponent(MODEL)}&after=${after}`);

  const cut = await load(page);
  console.log(`cut-off load: ${JSON.stringify(cut)}`);
  expect(cut).toMatchObject({ ok: false, code: 'network', realm: true });
  expect(await page.evaluate((u) => window.realm.isModelCached(u), MODEL)).toBe(false);

  const resumed = await load(page, { sha256: SHA256 });
  console.log(`resumed load: ${JSON.stringify(resumed)}`);
  expect(resumed.ok).toBe(true);
  // Two whole chunks came from the cache, the rest from the network.
  expect(resumed.phases.cache).toEqual({ loaded: 2 * CHUNK, total: SIZE });
  expect(resumed.phases.download).toEqual({ loaded: SIZE, total: SIZE });
  const reqs = await modelRequests(page, mark);
  expect(reqs.map((r) => r.range)).toEqual([null, `bytes=${2 * CHUNK}-`]);
  expect(reqs[1].status).toBe(206);

  // And now it is whole in the cache.
  const mark2 = await logLength(page);
  const third = await load(page);
  expect(third.ok && third.phases.cache).toEqual({ loaded: SIZE, total: SIZE });
  expect(await modelRequests(page, mark2)).toHaveLength(0);
  await page.context().close();
});

test('bytes and Blobs load too, sha256 checked, nothing cached; the caller keeps its buffer', async ({ browser }) => {
  const page = await freshPage(browser);
  const r = await page.evaluate(
    async ([u, sha]) => {
      const bytes = new Uint8Array(await (await fetch(u)).arrayBuffer());
      const phases = new Set<string>();
      const e = await window.realm.createEngine({ model: bytes, sha256: sha, onProgress: (p) => phases.add(p.phase) });
      const ids = await e.tokenize('Hello world');
      await e.unload();
      let code = null;
      try {
        await window.realm.createEngine({ model: new Blob([bytes]), sha256: 'ab'.repeat(32) });
      } catch (err) {
        code = (err as { code?: string }).code;
      }
      return { ids, phases: [...phases], kept: bytes.byteLength, code, cached: await window.realm.isModelCached(u) };
    },
    [MODEL, SHA256] as const,
  );
  expect(r).toEqual({ ids: [19556, 905], phases: ['compile', 'read', 'verify', 'load'], kept: SIZE, code: 'integrity', cached: false });
  await page.context().close();
});

test('a full storage quota is RealmError quota, and no partial entry is left', async ({ browser }) => {
  const page = await freshPage(browser);
  const origin = new URL(page.url()).origin;
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: 40 * 2 ** 20 });
  const res = await load(page);
  console.log(`over quota: ${JSON.stringify(res)}`);
  expect(res).toMatchObject({ ok: false, code: 'quota', realm: true });
  expect(await page.evaluate((u) => window.realm.isModelCached(u), MODEL)).toBe(false);
  const used = await page.evaluate(async () => (await navigator.storage.estimate()).usage ?? -1);
  expect(used).toBeLessThan(2 ** 20);
  // Without the cache the same model loads.
  const uncached = await page.evaluate(async (u) => {
    const e = await window.realm.createEngine({ model: u, cache: false });
    const ids = await e.tokenize('Hello world');
    await e.unload();
    return ids;
  }, MODEL);
  expect(uncached).toEqual([19556, 905]);
  await page.context().close();
});

/** Chromium's renderer processes (Linux /proc), by pid. */
function renderers(): Set<number> {
  const out = new Set<number>();
  if (!existsSync('/proc')) return out;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'utf8').includes('--type=renderer')) out.add(Number(d));
    } catch {
      // gone already
    }
  }
  return out;
}

/** VmRSS and VmHWM (peak RSS) of a process, in MB. */
function rss(pid: number): { now: number; peak: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? 0);
  return { now: Math.round(kb('VmRSS') / 1024), peak: Math.round(kb('VmHWM') / 1024) };
}

test('memory (logged, not asserted): peak renderer RSS of a load, with and without the cache', async ({ browser }) => {
  test.skip(!existsSync('/proc/self/status'), 'needs Linux /proc');
  const mb = Math.round(SIZE / 2 ** 20);
  for (const variant of ['cache: false', 'first load, caching', 'cached load'] as const) {
    const context = await browser.newContext();
    if (variant === 'cached load') {
      // Fill this context's cache from another page (another renderer process).
      const filler = await context.newPage();
      await filler.goto('/');
      await filler.waitForFunction(() => window.realm !== undefined);
      await filler.evaluate(async (u) => (await window.realm.createEngine({ model: u })).unload(), MODEL);
      await filler.close();
    }
    const before = renderers();
    const page = await context.newPage();
    await page.goto('/');
    await page.waitForFunction(() => window.realm !== undefined);
    const fresh = [...renderers()].filter((p) => !before.has(p));
    const base = new Map(fresh.map((p) => [p, rss(p)]));
    await page.evaluate(
      async ([u, cache]) => {
        const e = await window.realm.createEngine({ model: u, cache });
        await e.tokenize('hi');
      },
      [MODEL, variant !== 'cache: false'] as const,
    );
    // The page's renderer (with its Worker) is the new one that grew the most.
    const grown = fresh
      .map((p) => ({ before: base.get(p)?.now ?? 0, after: rss(p) }))
      .sort((a, b) => b.after.peak - b.before - (a.after.peak - a.before))[0];
    if (grown) {
      console.log(
        `memory (${variant}): model ${mb} MiB; renderer RSS ${grown.before} MiB before, ${grown.after.now} after, ` +
          `peak ${grown.after.peak} (+${((grown.after.peak - grown.before) / mb).toFixed(2)} model sizes)`,
      );
    } else {
      console.log(`memory (${variant}): no new renderer process found, not measured`);
    }
    await context.close();
  }
});
