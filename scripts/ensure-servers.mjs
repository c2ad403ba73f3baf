// Before the tests: make sure redis-server, redis-cli and memcached exist (the tests start their own
// private instances on free ports; this only checks the binaries), and chromium for the example
// site's headless-browser test. Running as root on a Debian-like machine, it installs what is
// missing with apt-get. Without root, missing servers are an error; a missing chromium is only a
// note (that one test skips itself).
import { execFileSync, spawnSync } from 'node:child_process';

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const required = { 'redis-server': 'redis-server', 'redis-cli': 'redis-tools', memcached: 'memcached' };
const optional = { chromium: 'chromium' };
const missing = Object.entries(required).filter(([cmd]) => !has(cmd));
const missingOptional = Object.entries(optional).filter(([cmd]) => !has(cmd));
if (missing.length === 0 && missingOptional.length === 0) process.exit(0);

const packages = [...new Set([...missing, ...missingOptional].map(([, pkg]) => pkg))];
if (process.getuid?.() === 0 && has('apt-get')) {
  console.log(`Installing ${packages.join(', ')} with apt-get (needed by the tests)...`);
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', ...packages], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
} else if (missing.length > 0) {
  console.error(`The tests need ${missing.map(([cmd]) => cmd).join(', ')}. Install: apt-get install ${packages.join(' ')}`);
  process.exit(1);
} else {
  console.log("chromium is not installed (apt-get install chromium): the example site's browser test will be skipped.");
}
