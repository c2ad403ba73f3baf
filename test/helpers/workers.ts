// Spawning test/fixtures/backend-lock-worker.ts processes for the cross-process backend tests.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const workerFile = fileURLToPath(new URL('../fixtures/backend-lock-worker.ts', import.meta.url));

/** A running worker and its output so far. */
export interface Worker {
  readonly child: ChildProcess;
  readonly done: Promise<string>;
  /** Resolves when the worker's stdout contains `text`. */
  waitFor(text: string, timeoutMs?: number): Promise<void>;
}

/** Starts one worker (by default backend-lock-worker.ts) with the given environment (BACKEND, BACKEND_ARGS, KEY, MODE). */
export function startWorker(env: Record<string, string>, file = workerFile): Worker {
  const child = spawn(process.execPath, ['--import', 'tsx', file], {
    env: { ...process.env, ...env },
    cwd: root,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const listeners: (() => void)[] = [];
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    for (const l of listeners) l();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const done = new Promise<string>((resolve, reject) => {
    child.on('exit', (code, signal) => {
      process.removeListener('exit', killOnExit);
      if (code === 0) resolve(out);
      else reject(new Error(`worker exited with ${code ?? signal}: ${err}`));
    });
  });
  done.catch(() => {});
  const waitFor = (text: string, timeoutMs = 20_000) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker did not print ${text} (stderr: ${err})`)), timeoutMs);
      const check = () => {
        if (out.includes(text)) {
          clearTimeout(timer);
          resolve();
        }
      };
      listeners.push(check);
      check();
    });
  return { child, done, waitFor };
}

/** Runs 4 stampede workers against one key and returns their parsed reports. */
export async function stampede(
  backend: string,
  args: Record<string, unknown>,
  key: string,
): Promise<{ calls: number; values: string[] }[]> {
  const env = { BACKEND: backend, BACKEND_ARGS: JSON.stringify(args), KEY: key, MODE: 'stampede' };
  const workers = Array.from({ length: 4 }, () => startWorker(env));
  // A start barrier, not a start time: on a loaded machine a worker can take seconds to load, and
  // one that starts after the others have finished finds the value and proves nothing.
  await Promise.all(workers.map((w) => w.waitFor('READY', 60_000)));
  for (const w of workers) w.child.stdin?.end('GO\n');
  const outs = await Promise.all(workers.map((w) => w.done));
  return outs.map((o) => JSON.parse(o.trim().split('\n').pop() ?? '{}') as { calls: number; values: string[] });
}
