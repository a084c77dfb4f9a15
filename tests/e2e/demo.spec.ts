// The chat demo (demo/, served by scripts/run.sh) in headless Chromium: it loads the model with
// progress, streams an answer with tokens/s and the backend badge, Stop stops an answer, a bad
// URL is a visible typed error, and the page stays usable after it.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';

const MODEL_FILE = join(process.env.REALM_CACHE_DIR || join(homedir(), '.cache', 'realm'), 'models', 'SmolLM2-135M-Instruct.Q4_1.gguf');

test.describe.configure({ mode: 'serial' });
let page: Page;

test.beforeAll(async ({ browser }) => {
  page = await (await browser.newContext()).newPage();
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
  await page.goto('/demo/');
  await expect(page.locator('body')).toHaveAttribute('data-ready', 'true');
  expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
});

test.afterAll(async () => {
  await page.context().close();
});

async function ask(text: string, maxTokens: number): Promise<void> {
  await page.locator('#max-tokens').fill(String(maxTokens));
  await page.locator('#temperature').fill('0');
  await page.locator('#prompt').fill(text);
  await page.locator('#send').click();
}

const lastAnswer = () => page.locator('.msg.assistant').last();

test('loads the default model with progress and streams an answer', async () => {
  await expect(page.locator('#model-url')).toHaveValue('/models/SmolLM2-135M-Instruct.Q4_1.gguf');
  await expect(page.locator('#send')).toBeDisabled();
  await page.locator('#load').click();
  await expect(page.locator('#backend')).toHaveText('wasm', { timeout: 60_000 });
  const log = await page.locator('#load-log').textContent();
  console.log(`demo load: ${log}`);
  expect(log).toMatch(/^compile .*download 98\.4 MB .*load /);
  await expect(page.locator('#phase')).toContainText('ready');
  await expect(page.locator('#backend')).toHaveAttribute('title', /WebAssembly/);

  await ask('What is the capital of France?', 16);
  await expect(lastAnswer()).toHaveClass(/done/, { timeout: 60_000 });
  const answer = await lastAnswer().textContent();
  const stats = await page.locator('#stats').textContent();
  console.log(`demo answer: ${JSON.stringify(answer)} (${stats})`);
  expect(answer?.length).toBeGreaterThan(0);
  expect(stats).toMatch(/^\d+ tokens · \d+\.\d tok\/s/);
  await expect(page.locator('#error')).toBeHidden();
});

test('Stop stops a long answer mid-way', async () => {
  await ask('Tell me a very long story about a dragon.', 1000);
  await expect(page.locator('#stop')).toBeEnabled();
  await expect(lastAnswer()).toHaveText(/\S{3}/, { timeout: 30_000 });
  const t0 = Date.now();
  await page.locator('#stop').click();
  await expect(lastAnswer()).toHaveClass(/stopped/, { timeout: 5_000 });
  await expect(page.locator('#send')).toBeEnabled({ timeout: 5_000 });
  console.log(`stopped in ${Date.now() - t0} ms`);
  const tokens = Number((await page.locator('#stats').textContent())?.split(' ')[0]);
  expect(tokens).toBeLessThan(1000);
  // No tokens arrive after the stop.
  const text = await lastAnswer().textContent();
  await page.waitForTimeout(1_000);
  expect(await lastAnswer().textContent()).toBe(text);
  await expect(page.locator('#error')).toBeHidden();
});

test('a bad URL is a visible typed error; the page stays usable (cache, file picker, chat)', async () => {
  await page.locator('#model-url').fill('/models/no-such-model.gguf');
  await page.locator('#load').click();
  await expect(page.locator('#error')).toBeVisible();
  await expect(page.locator('#error')).toHaveAttribute('data-code', 'network');
  await expect(page.locator('#error')).toContainText('RealmError network');
  await expect(page.locator('#backend')).toHaveText('no model');
  await expect(page.locator('#send')).toBeDisabled();

  // The default URL again: from the model cache this time.
  await page.locator('#model-url').fill('/models/SmolLM2-135M-Instruct.Q4_1.gguf');
  await page.locator('#load').click();
  await expect(page.locator('#backend')).toHaveText('wasm', { timeout: 60_000 });
  await expect(page.locator('#error')).toBeHidden();
  const log = await page.locator('#load-log').textContent();
  expect(log).toMatch(/^compile .*cache 98\.4 MB/);
  expect(log).not.toContain('download');

  // A file from the picker.
  await page.locator('#file').setInputFiles(MODEL_FILE);
  await expect(page.locator('#phase')).toContainText('ready: SmolLM2-135M-Instruct.Q4_1.gguf', { timeout: 60_000 });
  await ask('Say hello.', 4);
  await expect(lastAnswer()).toHaveClass(/done/, { timeout: 60_000 });
  expect((await lastAnswer().textContent())?.length).toBeGreaterThan(0);
  await expect(page.locator('#error')).toBeHidden();
});
