// dogpile/otel: OpenTelemetry metrics and spans for regions, built on the region events. Loading
// this module loads @opentelemetry/api (an optional peer); the core never imports it.
//
// Metrics (one meter "dogpile"): counters dogpile.hits, dogpile.misses, dogpile.stale,
// dogpile.creations, dogpile.errors and the histogram dogpile.creation.duration (ms), with the
// attributes dogpile.region, dogpile.backend and (creations, errors, duration) dogpile.outcome,
// plus dogpile.template / dogpile.block for template fragments. Spans: dogpile.create from the
// creator call to its end (a child of the caller's active span) and dogpile.lock.wait for each
// wait on another caller's creation or a distributed lock.

import {
  type Attributes,
  context,
  type MeterProvider,
  metrics,
  type Span,
  SpanStatusCode,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import { type CacheRegion, liveRegions, type RegionEventMap, ValidationError, watchRegions } from '../src/index.js';

/** Options of {@link instrumentRegion}. */
export interface InstrumentOptions {
  /** Where the metrics go. Default: the global meter provider (`metrics.getMeterProvider()`). */
  meterProvider?: MeterProvider;
  /** Where the spans go. Default: the global tracer provider (`trace.getTracerProvider()`). */
  tracerProvider?: TracerProvider;
}

const SCOPE = 'dogpile';

/**
 * Instruments one region (or several) with OpenTelemetry metrics and spans. Returns a function
 * that removes the instrumentation (the region's listeners) again; calling it twice is harmless.
 */
export function instrumentRegion(region: CacheRegion | Iterable<CacheRegion>, options: InstrumentOptions = {}): () => void {
  const setup = prepare(options, 'instrumentRegion');
  const isIterable = region !== null && typeof (region as Partial<Iterable<CacheRegion>>)[Symbol.iterator] === 'function';
  const regions: unknown[] = isRegion(region) ? [region] : isIterable ? [...region] : [region];
  for (const r of regions) {
    if (!isRegion(r)) {
      throw new ValidationError(`instrumentRegion: expected a CacheRegion (or an iterable of them), got ${describe(r)}`);
    }
  }
  const removers = (regions as CacheRegion[]).map((r) => instrumentOne(r, setup.instruments, setup.tracer));
  let removed = false;
  return () => {
    if (removed) return;
    removed = true;
    for (const remove of removers) remove();
  };
}

/**
 * Instruments every region of the process: those alive now and every region made afterwards
 * (through `watchRegions` of the core), with the same metrics and spans as
 * {@link instrumentRegion}. Regions stay weakly held: a region the application drops is collected
 * as usual. Returns a function that stops instrumenting new regions and removes the listeners from
 * every region it instrumented; calling it twice is harmless. Do not also pass the same regions to
 * {@link instrumentRegion} with the same providers, or their events are counted twice.
 */
export function instrumentAllRegions(options: InstrumentOptions = {}): () => void {
  const setup = prepare(options, 'instrumentAllRegions');
  const removers = new WeakMap<CacheRegion, () => void>();
  const stop = watchRegions((r) => {
    if (!removers.has(r)) removers.set(r, instrumentOne(r, setup.instruments, setup.tracer));
  });
  let removed = false;
  return () => {
    if (removed) return;
    removed = true;
    stop();
    for (const r of liveRegions()) {
      removers.get(r)?.();
      removers.delete(r);
    }
  };
}

/** Validates the options and makes the meter's instruments and the tracer. */
function prepare(options: InstrumentOptions, fn: string): { instruments: Instruments; tracer: Tracer } {
  if (options === null || typeof options !== 'object') {
    throw new ValidationError(`${fn}: options must be an object, got ${describe(options)}`);
  }
  for (const name of Object.keys(options)) {
    if (name !== 'meterProvider' && name !== 'tracerProvider') {
      throw new ValidationError(`${fn}: unknown option ${JSON.stringify(name)}; allowed: meterProvider, tracerProvider`);
    }
  }
  checkProvider(options.meterProvider, 'meterProvider', 'getMeter', fn);
  checkProvider(options.tracerProvider, 'tracerProvider', 'getTracer', fn);
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(SCOPE);
  const tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(SCOPE);
  const instruments: Instruments = {
    hits: meter.createCounter('dogpile.hits', { description: 'Fresh values returned' }),
    misses: meter.createCounter('dogpile.misses', { description: 'Reads that found no usable value' }),
    stale: meter.createCounter('dogpile.stale', { description: 'Stale values returned' }),
    creations: meter.createCounter('dogpile.creations', { description: 'Creator calls, by outcome' }),
    errors: meter.createCounter('dogpile.errors', { description: 'Failed creations and absorbed backend failures' }),
    duration: meter.createHistogram('dogpile.creation.duration', { description: 'Creator run time', unit: 'ms' }),
  };
  return { instruments, tracer };
}

type Tracer = ReturnType<TracerProvider['getTracer']>;

type Instruments = {
  hits: ReturnType<ReturnType<MeterProvider['getMeter']>['createCounter']>;
  misses: Instruments['hits'];
  stale: Instruments['hits'];
  creations: Instruments['hits'];
  errors: Instruments['hits'];
  duration: ReturnType<ReturnType<MeterProvider['getMeter']>['createHistogram']>;
};

function instrumentOne(region: CacheRegion, m: Instruments, tracer: Tracer): () => void {
  let backend: string | undefined;
  const base = (): Attributes => {
    backend ??= backendName(region);
    return { 'dogpile.region': region.name ?? '', 'dogpile.backend': backend ?? 'unknown' };
  };
  const withExtra = (attributes: Readonly<Record<string, string>> | undefined, extra?: Attributes): Attributes => {
    const out = base();
    if (attributes) for (const [k, v] of Object.entries(attributes)) out[`dogpile.${k}`] = v;
    return extra ? Object.assign(out, extra) : out;
  };
  // One creation per key at a time in a process (single flight), so spans are tracked by key.
  const open = new Map<string, Span>();

  const listeners: { [E in keyof RegionEventMap]?: (p: RegionEventMap[E]) => void } = {
    hit: (p) => m.hits.add(1, withExtra(p.attributes)),
    miss: (p) => m.misses.add(1, withExtra(p.attributes)),
    stale: (p) => m.stale.add(1, withExtra(p.attributes)),
    createStart: (p) => {
      const span = tracer.startSpan(
        'dogpile.create',
        { attributes: withExtra(p.attributes, { 'dogpile.key': p.key }) },
        context.active(),
      );
      open.get(p.key)?.end();
      open.set(p.key, span);
    },
    create: (p) => {
      const attrs = withExtra(p.attributes, { 'dogpile.outcome': p.outcome });
      m.creations.add(1, attrs);
      m.duration.record(p.durationMs, attrs);
      if (p.outcome !== 'ok') m.errors.add(1, attrs);
      const span = open.get(p.key);
      if (span) {
        open.delete(p.key);
        span.setAttribute('dogpile.outcome', p.outcome);
        if (p.outcome !== 'ok') span.setStatus({ code: SpanStatusCode.ERROR, message: p.outcome });
        span.end();
      }
    },
    lockWait: (p) => {
      const end = Date.now();
      const span = tracer.startSpan(
        'dogpile.lock.wait',
        { startTime: end - p.durationMs, attributes: withExtra(p.attributes, { 'dogpile.key': p.key }) },
        context.active(),
      );
      span.end(end);
    },
    backendError: (p) =>
      m.errors.add(1, withExtra(undefined, { 'dogpile.outcome': 'backend-error', 'dogpile.operation': p.operation })),
  };
  const entries = Object.entries(listeners) as [keyof RegionEventMap, (p: RegionEventMap[keyof RegionEventMap]) => void][];
  for (const [event, listener] of entries) region.on(event, listener);
  return () => {
    for (const [event, listener] of entries) region.off(event, listener);
    for (const span of open.values()) span.end();
    open.clear();
  };
}

function backendName(region: CacheRegion): string | undefined {
  try {
    const name = region.actualBackend.constructor?.name;
    return name ? name.replace(/Backend$/, '').toLowerCase() : undefined;
  } catch {
    return undefined; // not configured (or still loading) yet: asked again on the next event
  }
}

/** A provider option must have its factory method (`getMeter` / `getTracer`). */
function checkProvider(value: unknown, name: string, method: string, fn: string): void {
  if (value === undefined) return;
  if (value === null || typeof value !== 'object' || typeof (value as Record<string, unknown>)[method] !== 'function') {
    throw new ValidationError(`${fn}: ${name} must be an OpenTelemetry ${name} (with ${method}()), got ${describe(value)}`);
  }
}

/** A short description of a bad value for a message. */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object without them';
  return `${typeof value} ${String(value)}`;
}

function isRegion(value: unknown): value is CacheRegion {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as CacheRegion).on === 'function' &&
    typeof (value as CacheRegion).getOrCreate === 'function'
  );
}
