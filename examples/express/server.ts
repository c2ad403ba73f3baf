// Runs the example site: `node --import tsx examples/express/server.ts` (or `npm start`).
// ENGINE=nunjucks|eta|handlebars (default nunjucks), PORT (default 3000), REDIS_URL to store
// fragments in Redis instead of process memory.

import { makeRegion } from '../../src/index.js';
import { createApp } from './app.js';

const engine = (process.env.ENGINE ?? 'nunjucks') as 'nunjucks' | 'eta' | 'handlebars';
if (!['nunjucks', 'eta', 'handlebars'].includes(engine)) {
  console.error(`ENGINE must be nunjucks, eta or handlebars, got ${engine}`);
  process.exit(1);
}
const port = Number(process.env.PORT ?? 3000);
const redisUrl = process.env.REDIS_URL;

// failOpen: false lets the TemplateCache see backend failures (it still renders inline and logs).
const region = makeRegion({ name: 'pages', failOpen: false });
try {
  if (redisUrl) region.configure('redis', { expirationTime: 600, arguments: { url: redisUrl, distributedLock: true } });
  else region.configure('memory', { expirationTime: 600 });
} catch (err) {
  console.error(`cannot configure the cache region: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}

const backend = redisUrl ? 'redis' : 'memory';
const { app } = createApp({ engine, region, backend });
const server = app.listen(port, () => {
  console.log(`dogpile example (${engine}, ${backend} backend): http://localhost:${port}/`);
  console.log('Try ?user=bob, ?annotate=1, the "Bump version" buttons, and /stats.json.');
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
