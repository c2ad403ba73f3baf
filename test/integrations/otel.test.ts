// dogpile/otel against the real OpenTelemetry SDK: metrics collected through an in-memory
// exporter, spans through InMemorySpanExporter.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { instrumentAllRegions, instrumentRegion } from '../../integrations/otel.js';
import { makeRegion, ValidationError } from '../../src/index.js';

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

function setup() {
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const spanExporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] });
  const collect = async () => {
    await reader.forceFlush();
    const all = metricExporter.getMetrics();
    const last = all[all.length - 1];
    const byName = new Map<string, { attributes: Record<string, unknown>; value: unknown }[]>();
    for (const scope of last?.scopeMetrics ?? []) {
      for (const metric of scope.metrics) {
        byName.set(
          metric.descriptor.name,
          metric.dataPoints.map((d) => ({ attributes: d.attributes as Record<string, unknown>, value: d.value })),
        );
      }
    }
    return byName;
  };
  return { meterProvider, tracerProvider, spanExporter, collect, shutdown: () => meterProvider.shutdown() };
}

const sum = (points: { value: unknown }[] | undefined) => (points ?? []).reduce((n, p) => n + (p.value as number), 0);

describe('dogpile/otel', () => {
  it('records counters, the duration histogram and spans with region, backend and outcome attributes', async () => {
    const o = setup();
    const region = makeRegion({ name: 'users' }).configure('memory', { expirationTime: 60 });
    const uninstall = instrumentRegion(region, { meterProvider: o.meterProvider, tracerProvider: o.tracerProvider });
    const parent = o.tracerProvider.getTracer('test').startSpan('request');
    await context.with(trace.setSpan(context.active(), parent), async () => {
      await region.getOrCreate('a', () => 1);
      await region.getOrCreate('a', () => 1);
      await region.getOrCreate('a', () => 1);
      await assert.rejects(
        region.getOrCreate('b', () => {
          throw new Error('db');
        }),
      );
    });
    parent.end();
    const m = await o.collect();
    assert.equal(sum(m.get('dogpile.hits')), 2);
    assert.equal(sum(m.get('dogpile.misses')), 2);
    assert.equal(sum(m.get('dogpile.errors')), 1);
    const creations = m.get('dogpile.creations') ?? [];
    assert.deepEqual(creations.map((p) => p.attributes['dogpile.outcome']).sort(), ['error', 'ok']);
    assert.deepEqual(m.get('dogpile.hits')?.[0]?.attributes, { 'dogpile.region': 'users', 'dogpile.backend': 'memory' });
    const histogram = m.get('dogpile.creation.duration') ?? [];
    assert.equal(
      histogram.reduce((n, p) => n + (p.value as { count: number }).count, 0),
      2,
    );

    const spans = o.spanExporter.getFinishedSpans().filter((s) => s.name === 'dogpile.create');
    assert.equal(spans.length, 2);
    assert.ok(spans.every((s) => s.parentSpanContext?.spanId === parent.spanContext().spanId));
    assert.deepEqual(spans.map((s) => s.attributes['dogpile.outcome']).sort(), ['error', 'ok']);
    assert.equal(spans.find((s) => s.attributes['dogpile.outcome'] === 'error')?.status.code, 2);

    uninstall();
    uninstall();
    assert.equal(region.listenerCount('hit'), 0);
    assert.equal(region.listenerCount('create'), 0);
    await region.getOrCreate('a', () => 1);
    assert.equal(sum((await o.collect()).get('dogpile.hits')), 2, 'nothing recorded after uninstall');
    await o.shutdown();
  });

  it('spans lock waits and counts stale values; instruments several regions at once', async () => {
    const o = setup();
    const a = makeRegion({ name: 'a' }).configure('memory', { expirationTime: 60 });
    const b = makeRegion({ name: 'b' }).configure('memory', { expirationTime: 0 });
    const uninstall = instrumentRegion([a, b], { meterProvider: o.meterProvider, tracerProvider: o.tracerProvider });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const owner = a.getOrCreate('k', async () => {
      await gate;
      return 1;
    });
    const waiter = a.getOrCreate('k', () => 2);
    setTimeout(release, 20);
    assert.deepEqual(await Promise.all([owner, waiter]), [1, 1]);
    await b.set('s', 'old');
    let releaseB!: () => void;
    const gateB = new Promise<void>((r) => {
      releaseB = r;
    });
    const regen = b.getOrCreate('s', async () => {
      await gateB;
      return 'new';
    });
    assert.equal(await b.getOrCreate('s', () => 'x'), 'old');
    releaseB();
    await regen;
    const waits = o.spanExporter.getFinishedSpans().filter((s) => s.name === 'dogpile.lock.wait');
    assert.equal(waits.length, 1);
    assert.ok(waits[0] && waits[0].duration[1] + waits[0].duration[0] * 1e9 >= 10e6, 'the wait span covers the wait');
    const m = await o.collect();
    const stale = m.get('dogpile.stale') ?? [];
    assert.equal(sum(stale), 1);
    assert.equal(stale[0]?.attributes['dogpile.region'], 'b');
    uninstall();
    await o.shutdown();
  });

  it('rejects what is not a region, and bad options, with a ValidationError naming them', () => {
    assert.throws(() => instrumentRegion({} as never), ValidationError);
    assert.throws(() => instrumentRegion(42 as never), /expected a CacheRegion/);
    const r = makeRegion().configure('memory');
    assert.throws(() => instrumentRegion(r, null as never), /instrumentRegion: options must be an object/);
    assert.throws(() => instrumentRegion(r, { meterProvider: {} as never }), /instrumentRegion: meterProvider must be/);
    assert.throws(() => instrumentRegion(r, { tracerProvider: 'x' as never }), /instrumentRegion: tracerProvider must be/);
    assert.throws(() => instrumentRegion(r, { meterprovider: 1 } as never), /unknown option "meterprovider"/);
    assert.equal(r.listenerCount('hit'), 0, 'nothing was installed');
  });

  it('instrumentAllRegions covers regions alive now and regions made later, and uninstalls from all', async () => {
    const o = setup();
    const before = makeRegion({ name: 'before' }).configure('memory', { expirationTime: 60 });
    const uninstall = instrumentAllRegions({ meterProvider: o.meterProvider, tracerProvider: o.tracerProvider });
    const after = makeRegion({ name: 'after' }).configure('memory', { expirationTime: 60 });
    assert.equal(before.listenerCount('hit'), 1);
    assert.equal(after.listenerCount('hit'), 1);
    await before.getOrCreate('k', () => 1);
    await before.getOrCreate('k', () => 1);
    await after.getOrCreate('k', () => 1);
    await after.getOrCreate('k', () => 1);
    await after.getOrCreate('k', () => 1);
    const hits = (await o.collect()).get('dogpile.hits') ?? [];
    const byRegion = (name: string) => sum(hits.filter((p) => p.attributes['dogpile.region'] === name));
    assert.equal(byRegion('before'), 1);
    assert.equal(byRegion('after'), 2);
    assert.equal(o.spanExporter.getFinishedSpans().filter((s) => s.name === 'dogpile.create').length, 2);
    uninstall();
    uninstall();
    assert.equal(before.listenerCount('hit'), 0, 'removed from a region alive at install time');
    assert.equal(after.listenerCount('hit'), 0, 'removed from a region made after install');
    const later = makeRegion({ name: 'later' }).configure('memory');
    assert.equal(later.listenerCount('hit'), 0, 'regions made after uninstall are not instrumented');
    await o.shutdown();
  });

  it('instrumentAllRegions validates its options like instrumentRegion', () => {
    assert.throws(() => instrumentAllRegions(null as never), /instrumentAllRegions: options must be an object/);
    assert.throws(() => instrumentAllRegions({ meterProvider: {} as never }), /instrumentAllRegions: meterProvider must be/);
    assert.throws(() => instrumentAllRegions({ tracer: 1 } as never), /unknown option "tracer"/);
  });
});
