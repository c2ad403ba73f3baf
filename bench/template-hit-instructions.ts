// Instructions per block hit, counted by valgrind (exact where timings on a shared machine are
// not). Renders one engine's page of bench/template-subjects.ts (`page`: 10 cached blocks, all
// hits after the first render; `bare`: the same page without the blocks) `renders` times:
//   valgrind --tool=callgrind node --single-threaded --import tsx bench/template-hit-instructions.ts <engine> <page|bare> <renders>
// Run each subject with two render counts: the difference of the totals divided by the difference
// of the counts is one render (start-up and the first, cold render cancel out); (page − bare) / 10
// is one block hit.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { subjects } from './template-subjects.js';

const [engine = 'nunjucks', which = 'page', rendersArg = '1000'] = process.argv.slice(2);
const renders = Number(rendersArg);
const dir = mkdtempSync(join(tmpdir(), 'dogpile-bench-tpl-cg-'));
try {
  const subject = subjects(dir).find((s) => s.engine === engine);
  if (subject === undefined || (which !== 'page' && which !== 'bare')) {
    throw new Error('usage: template-hit-instructions.ts <nunjucks|eta|handlebars> <page|bare> <renders>');
  }
  const render = which === 'page' ? subject.page : subject.bare;
  const ctx = { title: 'Bench <page>', user: { id: 42 } };
  for (let i = 0; i < renders; i++) await render(ctx);
  process.stdout.write(`${engine} ${which}: ${renders} renders\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
