import request from 'supertest';
import { createApp } from '../examples/express/app.js';
import { makeRegion } from '../src/index.js';
for (const engine of ['nunjucks', 'eta', 'handlebars'] as const) {
  const region = makeRegion({ name: 'pages', failOpen: false }).configure('memory');
  const { app, db } = createApp({ engine, region });
  const desc = Object.getOwnPropertyDescriptor(db.products[0], 'reviews')!;
  let calls = 0;
  for (const p of db.products) { const d = Object.getOwnPropertyDescriptor(p, 'reviews')!; Object.defineProperty(p, 'reviews', { get() { calls++; return d.get!.call(p); }, enumerable: true }); }
  const a = await request(app).get('/');
  const b = await request(app).get('/');
  await request(app).post('/products/3/bump');
  let t = performance.now();
  const c = await request(app).get('/?bumped=3');
  const took = performance.now() - t;
  const pick = (h: string) => [...h.matchAll(/data-stat="([a-z-]+)">([^<]*)</g)].map((m) => `${m[1]}=${m[2]}`).join(' ');
  console.log(engine, 'calls', calls, 'took', took.toFixed(1));
  console.log(' a', pick(a.text)); console.log(' b', pick(b.text)); console.log(' c', pick(c.text));
  console.log(c.text.match(/Render time<\/dt><dd>[^<]*/)?.[0]);
}
