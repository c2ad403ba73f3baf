// Test helpers for private server processes: free loopback ports, spawning a server, waiting until
// it accepts connections, and stopping it by PID. Tests never touch a server they did not start.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on `port`, or rejects after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A server process this test run started. */
export interface ServerProcess {
  readonly port: number;
  readonly child: ChildProcess;
  readonly dir: string;
  /** Stops the process (SIGTERM, then SIGKILL) and removes its temp dir. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Spawns `command args` (its own temp dir as cwd), waits for `port` to accept connections, and
 * returns a handle. The process is killed when the test process exits, whatever happens.
 */
export async function startServer(command: string, args: (dir: string) => string[], port: number): Promise<ServerProcess> {
  const dir = mkdtempSync(join(tmpdir(), `dogpile-${command.replace(/\W/g, '')}-`));
  const child = spawn(command, args(dir), { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= new Promise<void>((resolve) => {
      process.removeListener('exit', killOnExit);
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const force = setTimeout(() => child.kill('SIGKILL'), 3000);
      child.once('exit', () => {
        clearTimeout(force);
        resolve();
      });
      child.kill('SIGTERM');
    }).then(() => rmSync(dir, { recursive: true, force: true }));
    return stopped;
  };
  try {
    await Promise.race([
      waitForPort(port),
      new Promise((_, reject) => child.once('exit', (code) => reject(new Error(`${command} exited with ${code}: ${stderr}`)))),
    ]);
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, child, dir, stop };
}

/** Starts a private redis-server (no persistence) on `port` (default: a free one). */
export async function startRedis(extraArgs: string[] = [], port?: number): Promise<ServerProcess> {
  port ??= await freePort();
  return startServer(
    'redis-server',
    (dir) => ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extraArgs],
    port,
  );
}

/** Starts a private memcached on `port` (default: a free one). */
export async function startMemcached(extraArgs: string[] = [], port?: number): Promise<ServerProcess> {
  port ??= await freePort();
  return startServer(
    'memcached',
    () => [
      '-l',
      '127.0.0.1',
      '-p',
      String(port),
      '-U',
      '0',
      '-m',
      '64',
      ...extraArgs,
      ...(process.getuid?.() === 0 ? ['-u', 'root'] : []),
    ],
    port,
  );
}
