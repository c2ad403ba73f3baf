// Region events and counters: the typed event source behind `region.on/off` and `region.stats()`.
//
// Built on Node's EventEmitter rather than diagnostics_channel: events belong to one region object
// (regions need not have unique names, and a channel is a process-wide name), `on/off` is the API
// users expect of an object, and listeners are plain functions with no subscription objects to
// keep alive. Cost when nobody listens: every emitting site first tests a boolean field kept up to
// date by on/off (`hearsHit`, `heard[event]`), so no payload object is built and no emitter is
// entered for an event nobody hears. Counters are plain number fields bumped in place.

import { EventEmitter } from 'node:events';
import { type BackendError, describe, ValidationError } from './api.js';

/** Every payload names its region (the region's `name`, possibly undefined). */
export interface RegionEventBase {
  /** The region's name (`makeRegion({ name })`), or undefined. */
  readonly region: string | undefined;
}
/** A payload about one key (the key as the caller gave it, before the key mangler). */
export interface KeyEvent extends RegionEventBase {
  /** The key as the caller gave it. */
  readonly key: string;
  /** Extra attributes a caller attached (the template layer sets `template` and `block`). */
  readonly attributes?: Readonly<Record<string, string>> | undefined;
}
/** How a creation ended. */
export type CreateOutcome = 'ok' | 'error' | 'timeout';

/** Payload of the `create` event. */
export interface CreateEvent extends KeyEvent {
  /** Milliseconds from the creator call to its result or failure. */
  readonly durationMs: number;
  /** How the creation ended. */
  readonly outcome: CreateOutcome;
}
/** Payload of the `lockWait` event. */
export interface LockWaitEvent extends KeyEvent {
  /** Milliseconds the caller waited. */
  readonly durationMs: number;
}
/** Payload of the `failSafe` event. */
export interface FailSafeEvent extends KeyEvent {
  /** Why the creation failed; absent when the call was throttled (no creation ran). */
  readonly error?: unknown;
  /** True when the creator was not called because the key is within `retryAfter` of a failure. */
  readonly throttled: boolean;
}
/** Payload of the `backendError` event. */
export interface BackendErrorEvent extends RegionEventBase {
  /** The key concerned, when the operation had one. */
  readonly key: string | undefined;
  /** The backend operation that failed (`get`, `set`, `getMulti`, ...). */
  readonly operation: string;
  /** The failure. */
  readonly error: BackendError;
}
/** Payload of the `breaker` event. */
export interface BreakerEvent extends RegionEventBase {
  /** The circuit's new state. */
  readonly state: 'open' | 'half-open' | 'closed';
}
/** Payload of the `invalidate` event. */
export interface InvalidateEvent extends RegionEventBase {
  /** Hard (values read as missing) or soft (values read as stale). */
  readonly hard: boolean;
  /** The tags invalidated (`invalidateTags`); absent for a region-wide `invalidate`. */
  readonly tags?: readonly string[];
}

/** The events a region emits, with their payloads. */
export interface RegionEventMap {
  /** A fresh value was returned. */
  hit: KeyEvent;
  /** No usable value was found (a creation follows, for getOrCreate). */
  miss: KeyEvent;
  /** A stale value was returned while another caller (or a background task) regenerates it. */
  stale: KeyEvent;
  /** A creation started (the lock owner is about to call the creator). */
  createStart: KeyEvent;
  /** A creation ended: `durationMs` from creator call to result or failure. */
  create: CreateEvent;
  /** A caller waited for another caller's creation or for a distributed lock. */
  lockWait: LockWaitEvent;
  /** A wait for a lock or a creation gave up (LockTimeoutError). */
  lockTimeout: KeyEvent;
  /** A creator's distributed lock was lost while it ran (its signal aborted). */
  lockLost: KeyEvent;
  /** Fail-safe served a stale value instead of an error (`error` is why the creation failed; absent when throttled). */
  failSafe: FailSafeEvent;
  /** The region absorbed a backend failure (also passed to `onError`). */
  backendError: BackendErrorEvent;
  /** The circuit breaker changed state. */
  breaker: BreakerEvent;
  /** `region.invalidate()` was called. */
  invalidate: InvalidateEvent;
}
/** The names of region events. */
export type RegionEventName = keyof RegionEventMap;
/** A listener for event `E`. */
export type RegionListener<E extends RegionEventName> = (payload: RegionEventMap[E]) => void;

/** What `region.stats()` returns: counters since the region was made. */
export interface RegionStats {
  /** Fresh values returned by get/getOrCreate. */
  readonly hits: number;
  /** Reads that found no usable value. */
  readonly misses: number;
  /** Stale values returned (during a regeneration, a soft timeout or fail-safe). */
  readonly stale: number;
  /** Creator calls started. */
  readonly creations: number;
  /** Creator calls that threw or hit hardTimeout. */
  readonly creationErrors: number;
  /** Waits for another caller's creation or a distributed lock. */
  readonly lockWaits: number;
  /** Waits that gave up (LockTimeoutError). */
  readonly lockTimeouts: number;
  /** Backend failures the region absorbed (fail-open). */
  readonly backendErrors: number;
  /** Stale values served by fail-safe instead of an error (or while throttled). */
  readonly failSafeServed: number;
  /** Median creation time over the last 1,024 creations, ms (0 before any). */
  readonly creationP50Ms: number;
  /** 99th percentile creation time over the last 1,024 creations, ms (0 before any). */
  readonly creationP99Ms: number;
}

/** Every region event name (internal; the soak bench counts listeners by it). */
export const EVENT_NAMES: readonly RegionEventName[] = [
  'hit',
  'miss',
  'stale',
  'createStart',
  'create',
  'lockWait',
  'lockTimeout',
  'lockLost',
  'failSafe',
  'backendError',
  'breaker',
  'invalidate',
];
const KNOWN = new Set<string>(EVENT_NAMES);
const DURATION_SAMPLES = 1024;

/** The event source and counters of one region. Internal: regions expose `on`, `off` and `stats`. */
export class RegionEvents {
  hits = 0;
  misses = 0;
  stale = 0;
  creations = 0;
  creationErrors = 0;
  lockWaits = 0;
  lockTimeouts = 0;
  backendErrors = 0;
  failSafeServed = 0;
  /**
   * Whether anyone listens for `hit`, or the region has work on every hit ({@link hookHits}): the
   * one flag read on the fresh-hit path. Emit `hit` only when `heard.hit`.
   */
  hearsHit = false;
  private hitsHooked = false;
  /** Whether anyone listens, by event. */
  readonly heard: Record<RegionEventName, boolean> = Object.fromEntries(EVENT_NAMES.map((e) => [e, false])) as Record<
    RegionEventName,
    boolean
  >;
  /** Whether anyone listens for any event. */
  anyHeard = false;
  private emitter: EventEmitter | undefined;
  private readonly durations = new Float64Array(DURATION_SAMPLES);
  private durationCount = 0;
  private warned = false;

  constructor(readonly region: string | undefined) {}

  on<E extends RegionEventName>(event: E, listener: RegionListener<E>): void {
    checkListener(event, listener, 'on');
    this.emitter ??= new EventEmitter();
    this.emitter.setMaxListeners(0);
    this.emitter.on(event, listener);
    this.refresh(event);
  }

  off<E extends RegionEventName>(event: E, listener: RegionListener<E>): void {
    checkListener(event, listener, 'off');
    this.emitter?.off(event, listener);
    this.refresh(event);
  }

  /** Listener count for `event` (for tests and leak checks). */
  listenerCount(event: RegionEventName): number {
    return this.emitter?.listenerCount(event) ?? 0;
  }

  /** Calls the listeners of `event`. Call only after testing `heard[event]`. A throwing listener is reported once and ignored. */
  emit<E extends RegionEventName>(event: E, payload: RegionEventMap[E]): void {
    try {
      this.emitter?.emit(event, payload);
    } catch (err) {
      if (this.warned) return;
      this.warned = true;
      process.emitWarning(
        `dogpile: a ${event} listener of region ${JSON.stringify(this.region)} threw (${err instanceof Error ? err.message : String(err)}); listener errors are ignored`,
        'DogpileWarning',
      );
    }
  }

  /**
   * Counts a fresh value returned for `key` and tells the `hit` listeners (payload without
   * attributes). The getOrCreate and get fast paths write this out instead, for speed.
   */
  hit(key: string): void {
    this.hits++;
    if (this.hearsHit) this.emit('hit', { region: this.region, key });
  }

  /** Records a creation's duration for the percentiles. */
  recordDuration(ms: number): void {
    this.durations[this.durationCount % DURATION_SAMPLES] = ms;
    this.durationCount++;
  }

  snapshot(): RegionStats {
    const n = Math.min(this.durationCount, DURATION_SAMPLES);
    const sorted = Array.from(this.durations.subarray(0, n)).sort((a, b) => a - b);
    const pick = (q: number): number => (n === 0 ? 0 : (sorted[Math.min(n - 1, Math.ceil(q * n) - 1)] as number));
    return {
      hits: this.hits,
      misses: this.misses,
      stale: this.stale,
      creations: this.creations,
      creationErrors: this.creationErrors,
      lockWaits: this.lockWaits,
      lockTimeouts: this.lockTimeouts,
      backendErrors: this.backendErrors,
      failSafeServed: this.failSafeServed,
      creationP50Ms: pick(0.5),
      creationP99Ms: pick(0.99),
    };
  }

  /** Keeps `hearsHit` true: the region runs a hook on every fresh hit (early refresh). */
  hookHits(): void {
    this.hitsHooked = true;
    this.hearsHit = true;
  }

  private refresh(event: RegionEventName): void {
    const count = this.emitter?.listenerCount(event) ?? 0;
    this.heard[event] = count > 0;
    if (event === 'hit') this.hearsHit = count > 0 || this.hitsHooked;
    this.anyHeard = EVENT_NAMES.some((e) => this.heard[e]);
  }
}

function checkListener(event: unknown, listener: unknown, where: string): void {
  if (typeof event !== 'string' || !KNOWN.has(event)) {
    throw new ValidationError(`region.${where}: unknown event ${describe(event)} (known: ${EVENT_NAMES.join(', ')})`);
  }
  if (typeof listener !== 'function') {
    throw new ValidationError(
      `region.${where}(${JSON.stringify(event)}): listener must be a function, got ${describe(listener)}`,
    );
  }
}
