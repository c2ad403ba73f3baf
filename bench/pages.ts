// The page-caching benchmark (`npm run bench:pages`): a 100-item Nunjucks list page over loopback
// HTTP (keep-alive, 8 requests in flight, client in the server's process), uncached versus a warm
// whole-page hit, for Express (the `dogpile.page` render option and the pageCache middleware) and
// Fastify (a route with `config.dogpile.page`). Every subject runs in a fresh process, interleaved
// over rounds; medians and ratios against the uncached page of the same framework. Saves
// bench/results/pages-<date>.md.

import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmtOps, median, runJsonWorker, saveReport, span, table, version } from './report.js';

const here = dirname(fileURLToPath(import.meta.url));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 300);
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 800);
const SUBJECTS = [
  'express-uncached',
  'express-render-page',
  'express-middleware',
  'fastify-uncached',
  'fastify-route-page',
] as const;
type Subject = (typeof SUBJECTS)[number];
const LABELS: Record<Subject, string> = {
  'express-uncached': 'Express, `res.render` uncached',
  'express-render-page': 'Express, `res.render(…, { dogpile: { page: true } })` hit',
  'express-middleware': 'Express, `pageCache()` middleware hit',
  'fastify-uncached': 'Fastify, `reply.view` uncached',
  'fastify-route-page': 'Fastify, route `config.dogpile.page` hit',
};
const BASELINE: Record<Subject, Subject> = {
  'express-uncached': 'express-uncached',
  'express-render-page': 'express-uncached',
  'express-middleware': 'express-uncached',
  'fastify-uncached': 'fastify-uncached',
  'fastify-route-page': 'fastify-uncached',
};

async function main(): Promise<void> {
  const started = new Date();
  const load = loadavg()[0] ?? 0;
  const rps = new Map<Subject, number[]>(SUBJECTS.map((s) => [s, []]));
  const p50 = new Map<Subject, number[]>(SUBJECTS.map((s) => [s, []]));
  const ratios = new Map<Subject, number[]>(SUBJECTS.map((s) => [s, []]));
  for (let r = 0; r < ROUNDS; r++) {
    const round = new Map<Subject, number>();
    for (const subject of SUBJECTS) {
      const result = (await runJsonWorker(join(here, 'pages-worker.ts'), [subject, String(WARMUP_MS), String(MEASURE_MS)])) as {
        rps: number;
        p50Ms: number;
      };
      round.set(subject, result.rps);
      rps.get(subject)?.push(result.rps);
      p50.get(subject)?.push(result.p50Ms);
    }
    for (const subject of SUBJECTS) ratios.get(subject)?.push((round.get(subject) ?? 0) / (round.get(BASELINE[subject]) ?? 1));
    process.stderr.write(`round ${r + 1}/${ROUNDS} done\n`);
  }
  const rows = SUBJECTS.map((s) => [
    LABELS[s],
    `${fmtOps(median(rps.get(s) ?? []))}/s`,
    `${median(p50.get(s) ?? []).toFixed(2)} ms`,
    `${median(ratios.get(s) ?? []).toFixed(2)}x`,
    span((ratios.get(s) ?? []).map((x) => Number(x.toFixed(2)))),
  ]);
  const text = [
    `# Page caching benchmark (${started.toISOString().slice(0, 10)})`,
    '',
    `A 100-item Nunjucks list over loopback HTTP, keep-alive, 8 requests in flight; client and server in one process; each subject in a fresh process, ${ROUNDS} interleaved rounds of ${MEASURE_MS} ms. Ratio: requests/s against the uncached page of the same framework in the same round (median, then the spread). Load average at start: ${load.toFixed(2)} (2 cores, shared). express ${version('express')}, fastify ${version('fastify')}, @fastify/view ${version('@fastify/view')}, nunjucks ${version('nunjucks')}.`,
    '',
    ...table(['subject', 'requests/s', 'p50 latency', 'ratio', 'ratio spread'], 'lrrrr', rows),
    '',
  ].join('\n');
  process.stdout.write(text);
  saveReport('pages', started, text);
}

await main();
