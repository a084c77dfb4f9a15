// Shared by the browser specs: the model URL, llama.cpp's oracle for SmolLM2, the page's globals.
import { readFileSync } from 'node:fs';

export const MODEL = '/models/SmolLM2-135M-Instruct.Q4_1.gguf';

export interface OraclePrompt {
  index: number;
  name: string;
  text: string;
  prompt_tokens: number[];
  greedy: { ids: number[]; first_eog_index: number; steps: { margin_to_2nd: number }[] };
}
const oracle: { prompts: OraclePrompt[] } = JSON.parse(
  readFileSync(new URL('../fixtures/oracle/oracle_smollm2.json', import.meta.url), 'utf8'),
);
export const prompts = oracle.prompts;

/** Greedy ids until llama.cpp's margin between its top two logits drops below 1.0 (where a
 * rounding difference could flip the argmax), and not past its first end-of-generation token
 * (our engine stops there). */
export function robustPrefix(p: OraclePrompt): number[] {
  let n = 0;
  while (n < p.greedy.steps.length && p.greedy.steps[n].margin_to_2nd >= 1.0) n++;
  if (p.greedy.first_eog_index >= 0) n = Math.min(n, p.greedy.first_eog_index);
  return p.greedy.ids.slice(0, n);
}

export const byName = (name: string): OraclePrompt => {
  const p = oracle.prompts.find((q) => q.name === name);
  if (!p) throw new Error(`no oracle prompt ${name}`);
  return p;
};

// The page's globals (window.realm: the package; window.engine: the loaded model).
declare global {
  interface Window {
    realm: typeof import('../../npm/realm-web/dist/index.js');
    engine: import('../../npm/realm-web/dist/index.js').RealmEngine;
  }
}
