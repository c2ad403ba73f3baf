// Shared driver of the chaos tests: forks load workers (test/fixtures/chaos-worker.ts), kills the
// server at a planned time and restarts it on the same port, then returns the workers' reports.
import { fileURLToPath } from 'node:url';
import type { ChaosReport } from '../fixtures/chaos-worker.js';
import { startWorker } from '../helpers/workers.js';

export const chaosWorkerFile = fileURLToPath(new URL('../fixtures/chaos-worker.ts', import.meta.url));

export interface ChaosPlan {
  backend: string;
  args: Record<string, unknown>;
  workers: number;
  durationMs: number;
  outageFrom: number;
  outageTo: number;
  boundMs: number;
  /** Extra worker environment (LOCK_WAIT, WATCH_KEY, OUTAGE_FROM…). */
  env?: Record<string, string>;
  /** Runs before the workers are forked. */
  beforeStart?(): Promise<void>;
  /** Kills the server (SIGKILL). */
  kill(): Promise<void>;
  /** Starts it again on the same port; resolves once it accepts connections. */
  restart(): Promise<void>;
}

export async function runChaos(plan: ChaosPlan): Promise<ChaosReport[]> {
  await plan.beforeStart?.();
  const env = {
    BACKEND: plan.backend,
    BACKEND_ARGS: JSON.stringify(plan.args),
    DURATION_MS: String(plan.durationMs),
    OUTAGE_FROM: String(plan.outageFrom),
    OUTAGE_TO: String(plan.outageTo),
    BOUND_MS: String(plan.boundMs),
    ...plan.env,
  };
  const workers = Array.from({ length: plan.workers }, () => startWorker(env, chaosWorkerFile));
  // Start barrier: every worker has loaded and warmed every key up (so each holds a fallback copy)
  // before the clock of the plan starts. A fixed head start was missed at load ~10, and a worker
  // still warming up when the server died had keys with nothing to serve.
  await Promise.all(workers.map((w) => w.waitFor('READY', 120_000)));
  const startAt = Date.now() + 100;
  for (const w of workers) w.child.stdin?.end(`${startAt}\n`);
  const at = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, startAt + ms - Date.now())));
  await at(plan.outageFrom);
  await plan.kill();
  await at(plan.outageTo);
  await plan.restart();
  const outs = await Promise.all(workers.map((w) => w.done));
  return outs.map((o) => JSON.parse(o.trim().split('\n').pop() ?? '{}') as ChaosReport);
}

/** Sums one numeric field over reports. */
export function total(reports: ChaosReport[], pick: (r: ChaosReport) => number): number {
  return reports.reduce((n, r) => n + pick(r), 0);
}
