// The start handshake of the multi-process bench workers (bench/redis.ts, bench/tiers.ts): a
// worker says "ready" on stdout and waits for the start time the runner sends on stdin, so that
// every process begins at the same moment. Kept free of library imports (workers load only what
// they measure).

/** Says "ready" on stdout and resolves to the start time the runner sends back on stdin. */
export function startSignal(): Promise<number> {
  return new Promise((resolve) => {
    let buffered = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.includes('\n')) {
        process.stdin.pause();
        resolve(Number(buffered.trim()));
      }
    });
    process.stdout.write('ready\n');
  });
}
