// The resilience benchmark (`npm run bench:resilience`): what the fail-safe, timeout, breaker and
// event features cost on the fresh-hit path (with the options on, with one listener), a failing-
// creator storm with fail-safe on, and getOrCreate latency with the backend down and the circuit
// open against the memory-backend miss path. Every measurement runs in a fresh process, rounds
// interleaved; ratios are against the raw lru-cache wrapper / the memory miss path of the same
// round. Prints markdown and saves bench/results/resilience-<date>.md.

import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmtOps, median, runJsonWorker, saveReport, table } from './report.js';

const range = (xs: readonly number[]): string => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;

const here = dirname(fileURLToPath(import.meta.url));
const worker = join(here, 'resilience-worker.ts');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const MEASURE_MS = Number(process.env.BENCH_MEASURE_MS ?? 600);
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 300);
const SUBJECTS = ['raw', 'plain', 'options', 'listener', 'guarded', 'all'] as const;
const LABELS: Record<(typeof SUBJECTS)[number], string> = {
  raw: 'raw lru-cache wrapper',
  plain: 'region, no new options',
  options: 'region, failSafe + softTimeout + hardTimeout',
  listener: 'region, one `hit` listener',
  guarded: 'region, those options + breaker (guarded backend)',
  all: 'region, every option: those + backendTimeout',
};
const KEY_COUNTS = [1000, 10_000];

async function main(): Promise<void> {
  const started = new Date();
  const load0 = loadavg()[0] ?? 0;
  const lines: string[] = [
    `# Resilience benchmark, ${started.toISOString()}`,
    '',
    `Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, load average at start ${load0.toFixed(2)}.`,
    '',
  ];

  // Fresh hits.
  for (const keys of KEY_COUNTS) {
    const ratios = new Map<string, number[]>();
    const ops = new Map<string, number[]>();
    for (let r = 0; r < ROUNDS; r++) {
      const round = new Map<string, number>();
      for (const s of SUBJECTS) {
        const res = (await runJsonWorker(worker, ['hit', s, String(keys), String(WARMUP_MS), String(MEASURE_MS)])) as {
          opsPerSec: number;
        };
        round.set(s, res.opsPerSec);
      }
      const raw = round.get('raw') as number;
      for (const s of SUBJECTS) {
        ops.set(s, [...(ops.get(s) ?? []), round.get(s) as number]);
        ratios.set(s, [...(ratios.get(s) ?? []), (round.get(s) as number) / raw]);
      }
      process.stderr.write(
        `hits ${keys} keys round ${r + 1}/${ROUNDS}: ${SUBJECTS.map((s) => `${s} ${((round.get(s) as number) / raw).toFixed(3)}x`).join(', ')}\n`,
      );
    }
    lines.push(`## Fresh hits, ${keys} warm keys round-robin (~200-byte objects), ${ROUNDS} rounds`, '');
    lines.push(
      ...table(
        ['subject', 'median hits/s', 'median ratio to raw', 'ratio range'],
        'lrrr',
        SUBJECTS.map((s) => [
          LABELS[s],
          fmtOps(median(ops.get(s) ?? [])),
          `${median(ratios.get(s) ?? []).toFixed(3)}x`,
          range(ratios.get(s) ?? []),
        ]),
      ),
      '',
    );
  }

  // Storm.
  const storm = (await runJsonWorker(worker, ['storm', '5', '1'])) as Record<string, number>;
  lines.push(
    '## Failing-creator storm (fail-safe on, retryAfter 1 s, 1,000 callers/s for 5 s, creator fails after 20 ms)',
    '',
    ...table(['callers', 'creator calls', 'target', 'served stale', 'errors'], 'rrrrr', [
      [
        String(storm.callers),
        String(storm.creatorCalls),
        `about ${5 / (storm.retryAfter ?? 1)}`,
        String(storm.stale),
        String(storm.errors),
      ],
    ]),
    '',
  );

  // Backend down, circuit open.
  const down: Record<string, number[]> = { memory: [], 'redis-open': [], memoryP99: [], redisP99: [] };
  const ratio: number[] = [];
  for (let r = 0; r < Math.min(ROUNDS, 5); r++) {
    const m = (await runJsonWorker(worker, ['down', 'memory', '20000'])) as { medianUs: number; p99Us: number };
    const d = (await runJsonWorker(worker, ['down', 'redis-open', '20000'])) as { medianUs: number; p99Us: number };
    down.memory?.push(m.medianUs);
    down['redis-open']?.push(d.medianUs);
    down.memoryP99?.push(m.p99Us);
    down.redisP99?.push(d.p99Us);
    ratio.push(d.medianUs / m.medianUs);
    process.stderr.write(`down round ${r + 1}: memory ${m.medianUs.toFixed(2)} µs, redis open ${d.medianUs.toFixed(2)} µs\n`);
  }
  lines.push(
    '## Backend down, circuit open: getOrCreate on missing keys (creator + skipped write), per call',
    '',
    ...table(['path', 'median µs/call', 'p99 µs/call'], 'lrr', [
      ['memory backend, miss path', median(down.memory ?? []).toFixed(2), median(down.memoryP99 ?? []).toFixed(2)],
      [
        'redis backend, server gone, circuit open',
        median(down['redis-open'] ?? []).toFixed(2),
        median(down.redisP99 ?? []).toFixed(2),
      ],
    ]),
    '',
    `Ratio redis-open / memory miss: median ${median(ratio).toFixed(2)}x (${range(ratio)}); target within 2x.`,
    '',
    `Load average at end ${(loadavg()[0] ?? 0).toFixed(2)}.`,
    '',
  );
  const text = lines.join('\n');
  process.stdout.write(`${text}\n`);
  saveReport('resilience', started, text);
}

await main();
