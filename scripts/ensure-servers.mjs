// Before the tests: make sure redis-server, redis-cli and memcached exist. The tests start their own
// private instances on free ports; this only checks the binaries (and installs them with apt-get
// when running as root on a Debian-like machine).
import { execFileSync, spawnSync } from 'node:child_process';

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const wanted = { 'redis-server': 'redis-server', 'redis-cli': 'redis-tools', memcached: 'memcached' };
const missing = Object.entries(wanted).filter(([cmd]) => !has(cmd));
if (missing.length === 0) process.exit(0);

const packages = [...new Set(missing.map(([, pkg]) => pkg))];
if (process.getuid?.() === 0 && has('apt-get')) {
  console.log(`Installing ${packages.join(', ')} with apt-get (needed by the tests)...`);
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', ...packages], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
} else {
  console.error(`The tests need ${missing.map(([cmd]) => cmd).join(', ')}. Install: apt-get install ${packages.join(' ')}`);
  process.exit(1);
}
