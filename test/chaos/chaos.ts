// Shared driver of the chaos tests: forks load workers (test/fixtures/chaos-worker.ts), kills the
// server at a planned time and restarts it on the same port, then returns the workers' reports.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import type { ChaosReport } from '../fixtures/chaos-worker.js';
import { freePort, type ServerProcess } from '../helpers/servers.js';
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

/** A private server that a chaos run kills (SIGKILL) and starts again on the same port. */
export interface KillableServer {
  readonly port: number;
  /** SIGKILLs the running process and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts the server again on the same port; resolves once it accepts connections. */
  restart(): Promise<void>;
  /** Stops whatever is running. */
  stop(): Promise<void>;
}

/** Starts a server with `start(port)` on a free port, killable and restartable there. */
export async function killableServer(start: (port: number) => Promise<ServerProcess>): Promise<KillableServer> {
  const port = await freePort();
  const started: ServerProcess[] = [await start(port)];
  const current = () => started[started.length - 1] as ServerProcess;
  return {
    port,
    kill: async () => {
      const s = current();
      const exited = new Promise((r) => s.child.once('exit', r));
      s.child.kill('SIGKILL');
      await exited;
    },
    restart: async () => {
      started.push(await start(port));
    },
    stop: async () => {
      for (const s of started) await s.stop();
    },
  };
}

/**
 * The figures every kill-and-restart run must show: no wrong value, no call over the bound, no
 * error during the outage (fail-safe served stale values instead), backend hits again within 2 s
 * of the restart. Prints the per-process summary (it is the test's report) and returns it.
 */
export function assertChaosFigures(reports: ChaosReport[]): string {
  const summary = JSON.stringify(
    reports.map((r) => ({
      ops: r.ops,
      maxMs: r.maxMs,
      errors: r.errors,
      stale: r.stale,
      failSafe: r.failSafe,
      firstHit: r.firstBackendHitAfterRestartMs,
      breaker: r.breaker.length,
      samples: r.errorSamples,
    })),
  );
  console.log(summary);
  assert.deepEqual(
    reports.flatMap((r) => r.wrong),
    [],
    'wrong values',
  );
  assert.equal(
    total(reports, (r) => r.slow),
    0,
    `calls over the bound: ${summary}`,
  );
  assert.ok(total(reports, (r) => r.ops) > 1000, `the load ran: ${summary}`);
  assert.equal(
    total(reports, (r) => r.errors.outage),
    0,
    `errors during the outage: ${summary}`,
  );
  assert.ok(total(reports, (r) => r.failSafe.outage) > 0, `fail-safe served stale values during the outage: ${summary}`);
  for (const r of reports) {
    assert.ok(
      r.firstBackendHitAfterRestartMs >= 0 && r.firstBackendHitAfterRestartMs <= 2000,
      `backend hits again within 2 s of the restart: ${r.firstBackendHitAfterRestartMs} ms`,
    );
  }
  return summary;
}
