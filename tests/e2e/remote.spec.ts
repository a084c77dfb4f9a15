// The demo's "a server" mode in headless Chromium: realm-web's remote engine in a real browser
// against the real realm-server that scripts/test-clients.sh starts (REALM_TEST_URL, its keys;
// the project `chromium-remote` exists only then). The page connects over the WebSocket (the
// key in the URL, as browsers must), streams an answer equal to the server's own whole answer,
// Stop cancels on the server, and a wrong key or an unreachable server is a visible typed error.
import { createServer } from 'node:net';
import { expect, test, type Page } from '@playwright/test';

const URL_ = (process.env.REALM_TEST_URL ?? '').replace(/\/+$/, '');
const WS = URL_.replace(/^http/, 'ws');
const KEY = process.env.REALM_TEST_KEY ?? '';
const METRICS_KEY = process.env.REALM_TEST_METRICS_KEY ?? '';

test.describe.configure({ mode: 'serial' });
let page: Page;

async function running(): Promise<number> {
  const r = await fetch(`${URL_}/metrics`, { headers: { Authorization: `Bearer ${METRICS_KEY}` } });
  const line = (await r.text()).split('\n').find((l) => l.startsWith('realm_num_requests_running '));
  return Number(line?.split(' ')[1] ?? NaN);
}

test.beforeAll(async ({ browser }) => {
  expect(URL_, 'REALM_TEST_URL (scripts/test-clients.sh starts the server)').not.toBe('');
  page = await (await browser.newContext()).newPage();
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
  await page.goto('/demo/');
  await expect(page.locator('body')).toHaveAttribute('data-ready', 'true');
});

test.afterAll(async () => {
  await page.context().close();
});

async function connect(url: string, key: string): Promise<void> {
  await page.locator('input[name=where][value=server]').check();
  await expect(page.locator('#remote-form')).toBeVisible();
  await expect(page.locator('#load-form')).toBeHidden();
  await page.locator('#server-url').fill(url);
  await page.locator('#api-key').fill(key);
  await page.locator('#connect').click();
}

async function ask(text: string, maxTokens: number): Promise<void> {
  await page.locator('#max-tokens').fill(String(maxTokens));
  await page.locator('#temperature').fill('0');
  await page.locator('#prompt').fill(text);
  await page.locator('#send').click();
}

const lastAnswer = () => page.locator('.msg.assistant').last();

test('a wrong key, and an unreachable server, are visible typed errors', async () => {
  await connect(WS, 'not-the-key');
  await expect(page.locator('#error')).toBeVisible({ timeout: 30_000 });
  await expect(page.locator('#error')).toHaveAttribute('data-code', 'unauthorized');
  await expect(page.locator('#backend')).toHaveText('no model');
  await expect(page.locator('#send')).toBeDisabled();

  // A port that was free a moment ago: nothing listens there.
  const port = await new Promise<number>((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
  await connect(`ws://127.0.0.1:${port}`, KEY);
  await expect(page.locator('#error')).toHaveAttribute('data-code', 'network', { timeout: 30_000 });
});

test('connects to the server and streams the answer the server gives', async () => {
  await connect(WS, KEY);
  await expect(page.locator('#backend')).toHaveText('remote', { timeout: 30_000 });
  await expect(page.locator('#phase')).toContainText('connected: SmolLM2-135M-Instruct.Q4_1');
  await expect(page.locator('#error')).toBeHidden();
  await page.locator('#reset').click();

  const question = 'What is the capital of France?';
  await ask(question, 16);
  await expect(lastAnswer()).toHaveClass(/done/, { timeout: 60_000 });
  const answer = await lastAnswer().textContent();
  const stats = await page.locator('#stats').textContent();
  console.log(`remote demo answer: ${JSON.stringify(answer)} (${stats})`);
  expect(stats).toMatch(/^\d+ tokens · \d+\.\d tok\/s/);

  const r = await fetch(`${URL_}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${KEY}` },
    body: JSON.stringify({ messages: [{ role: 'user', content: question }], max_tokens: 16, temperature: 0 }),
  });
  const whole = await r.json();
  expect(answer).toBe(whole.choices[0].message.content);
  expect(answer?.length).toBeGreaterThan(0);
});

test('Stop cancels the answer on the server', async () => {
  await page.locator('#reset').click();
  await ask('Count from 1 to 1000, separated by commas.', 2000);
  await expect(lastAnswer()).toHaveText(/\S{3}/, { timeout: 30_000 });
  expect(await running()).toBeGreaterThanOrEqual(1);
  await page.locator('#stop').click();
  await expect(lastAnswer()).toHaveClass(/stopped/, { timeout: 5_000 });
  await expect(page.locator('#send')).toBeEnabled();
  await expect.poll(running, { timeout: 10_000 }).toBe(0);
  const text = await lastAnswer().textContent();
  await page.waitForTimeout(500);
  expect(await lastAnswer().textContent()).toBe(text);
  await expect(page.locator('#error')).toBeHidden();
});
