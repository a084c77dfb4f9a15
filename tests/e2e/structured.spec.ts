// Structured output in the browser: realm-web's Worker engine on the WebAssembly CPU engine in
// headless Chromium, through the public API (`response_format`, `grammar`, `regex`). Every
// answer is validated here, outside the page, by an independent validator (Ajv, JSON Schema
// 2020-12, formats checked); the grammar's answers by a parser of their own.
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { expect, test, type Page } from '@playwright/test';
import { MODEL } from './oracle.js';

test.describe.configure({ mode: 'serial' });
let page: Page;
const ajv = addFormats(new Ajv2020({ allErrors: true, strict: false }));

const SCHEMAS: Record<string, { prompt: string; schema: Record<string, unknown> }> = {
  nested: {
    prompt: 'Invent a person with an address.',
    schema: {
      type: 'object',
      properties: {
        name: { type: 'string', maxLength: 40 },
        age: { type: 'integer', minimum: 0, maximum: 120 },
        address: {
          type: 'object',
          properties: { city: { type: 'string', maxLength: 40 }, zip: { type: 'string', pattern: '^[0-9]{5}$' } },
          required: ['city', 'zip'],
          additionalProperties: false,
        },
      },
      required: ['name', 'age', 'address'],
      additionalProperties: false,
    },
  },
  arrays_enums: {
    prompt: 'Pick some colours.',
    schema: {
      type: 'object',
      properties: { colours: { type: 'array', items: { enum: ['red', 'green', 'blue'] }, minItems: 1, maxItems: 3 } },
      required: ['colours'],
      additionalProperties: false,
    },
  },
  any_of_formats: {
    prompt: 'Describe an event.',
    schema: {
      type: 'object',
      properties: {
        date: { type: 'string', format: 'date' },
        where: { anyOf: [{ type: 'string', maxLength: 30 }, { type: 'null' }] },
      },
      required: ['date', 'where'],
      additionalProperties: false,
    },
  },
};

test.beforeAll(async ({ browser }) => {
  page = await browser.newPage();
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
  await page.goto('/');
  await page.waitForFunction(() => window.realm !== undefined);
  await page.evaluate(async (url) => {
    window.engine = await window.realm.createEngine({ model: url, device: 'wasm' });
  }, MODEL);
});

test.afterAll(async () => {
  await page.close();
});

for (const [name, { prompt, schema }] of Object.entries(SCHEMAS)) {
  test(`json_schema (${name}): whole and streamed answers validate`, async () => {
    const validate = ajv.compile(schema);
    for (const temperature of [0, 0.8]) {
      const out = await page.evaluate(
        async ({ prompt, schema, temperature }) => {
          const req = {
            messages: [{ role: 'user', content: prompt }],
            max_tokens: 150,
            temperature,
            seed: 5,
            response_format: { type: 'json_schema' as const, json_schema: { name: 'x', schema } },
          };
          const whole = await window.engine.chat.completions.create(req);
          let streamed = '';
          for await (const c of await window.engine.chat.completions.create({ ...req, stream: true })) {
            streamed += c.choices[0].delta.content ?? '';
          }
          return { whole: whole.choices[0].message.content, finish: whole.choices[0].finish_reason, streamed };
        },
        { prompt, schema, temperature },
      );
      console.log(`${name} (t=${temperature}): ${out.whole}`);
      expect(out.streamed).toBe(out.whole);
      expect(out.finish).toBe('stop');
      const value = JSON.parse(out.whole);
      expect(validate(value), JSON.stringify(validate.errors)).toBe(true);
    }
  });
}

test('json_object, a GBNF grammar and a regex; an invalid schema is invalid-argument', async () => {
  const out = await page.evaluate(async () => {
    const obj = await window.engine.chat.completions.create({
      messages: [{ role: 'user', content: 'Describe a cat.' }],
      max_tokens: 120,
      temperature: 0,
      response_format: { type: 'json_object' },
    });
    const sum = await window.engine.completions.create({
      prompt: 'Sum:',
      max_tokens: 40,
      temperature: 0.9,
      seed: 2,
      grammar: 'root ::= [1-9] [0-9]? (" + " [1-9] [0-9]?)*',
    });
    const rx = await window.engine.chat.completions.create({
      messages: [{ role: 'user', content: 'Give a time.' }],
      max_tokens: 10,
      regex: '([01][0-9]|2[0-3]):[0-5][0-9]',
    });
    let bad = null;
    try {
      await window.engine.chat.completions.create({
        messages: [{ role: 'user', content: 'x' }],
        response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'nope' } } },
      });
    } catch (e) {
      bad = { code: (e as { code?: string }).code, message: (e as Error).message };
    }
    return {
      obj: obj.choices[0].message.content,
      sum: sum.choices[0].text,
      sumFinish: sum.choices[0].finish_reason,
      rx: rx.choices[0].message.content,
      bad,
    };
  });
  console.log(JSON.stringify(out));
  const obj = JSON.parse(out.obj);
  expect(typeof obj === 'object' && obj !== null && !Array.isArray(obj)).toBe(true);
  expect(out.sum).toMatch(out.sumFinish === 'stop' ? /^[1-9][0-9]?( \+ [1-9][0-9]?)*$/ : /^[1-9][0-9]?( \+ [1-9][0-9]?)*( \+ ?)?$/);
  expect(out.rx).toMatch(/^([01][0-9]|2[0-3]):[0-5][0-9]$/);
  expect(out.bad?.code).toBe('invalid-argument');
  expect(out.bad?.message).toContain('json_schema');
});
