// One page-caching benchmark subject in a fresh process: a server on loopback rendering a 100-item
// Nunjucks list, and a keep-alive client in the same process sending requests 8 at a time for
// MEASURE_MS after a warm-up. Prints {"rps", "p50Ms"} as JSON. Run by bench/pages.ts.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import fastifyFactory from 'fastify';
import { dogpileViews, pageCache } from '../integrations/express.js';
import { dogpileFastify } from '../integrations/fastify.js';
import { makeRegion } from '../src/index.js';
import { median } from './report.js';

const [subject = 'express-uncached', warmupArg = '300', measureArg = '800'] = process.argv.slice(2);
const CONCURRENCY = 8;
const products = Array.from({ length: 100 }, (_, i) => ({ id: i, name: `Product <${i}> & "co"`, price: (i * 1.7).toFixed(2) }));
const SOURCE =
  '<html><body><h1>{{ title }}</h1><ul>{% for p in products %}<li data-id="{{ p.id }}"><b>{{ p.name }}</b> {{ p.price }}</li>{% endfor %}</ul></body></html>';

async function start(): Promise<{ port: number; close(): Promise<void> }> {
  const views = mkdtempSync(join(tmpdir(), 'dogpile-bench-pages-'));
  writeFileSync(join(views, 'list.njk'), SOURCE);
  const region = makeRegion().configure('memory');
  const cleanup = () => rmSync(views, { recursive: true, force: true });
  if (subject.startsWith('express')) {
    const app = express();
    app.set('view cache', true);
    dogpileViews(app, { engine: 'nunjucks', views, regions: region });
    const locals = { title: 'Products', products };
    if (subject === 'express-uncached') app.get('/', (_req, res) => res.render('list', locals));
    else if (subject === 'express-render-page')
      app.get('/', (_req, res) => res.render('list', { ...locals, dogpile: { page: true } }));
    else app.get('/', pageCache({ regions: region }), (_req, res) => res.render('list', locals));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    return {
      port: (server.address() as AddressInfo).port,
      close: async () => {
        server.close();
        cleanup();
      },
    };
  }
  const app = fastifyFactory();
  await app.register(dogpileFastify, { engine: 'nunjucks', templates: views, regions: region, view: { production: true } });
  const config = { dogpile: subject === 'fastify-route-page' ? { page: true as const } : {} };
  app.get('/', { config }, (_req, reply) => reply.view('list', { title: 'Products', products }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    port: (app.server.address() as AddressInfo).port,
    close: async () => {
      await app.close();
      cleanup();
    },
  };
}

async function run(port: number, ms: number): Promise<{ count: number; latencies: number[] }> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const latencies: number[] = [];
  const end = performance.now() + ms;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const t = performance.now();
      request({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
          latencies.push(performance.now() - t);
          resolve();
        });
      })
        .on('error', reject)
        .end();
    });
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < end) await one();
    }),
  );
  agent.destroy();
  return { count: latencies.length, latencies };
}

const server = await start();
await run(server.port, Number(warmupArg));
const measureMs = Number(measureArg);
const { count, latencies } = await run(server.port, measureMs);
await server.close();
console.log(JSON.stringify({ rps: (count / measureMs) * 1000, p50Ms: median(latencies) }));
