import { Engine, MemoryStore, type QueueStore } from '../../shared/engine.js';
import { GamifyError } from '../../shared/errors.js';
import type { BatchItem, DeliveredHandler, ErrorHandler, FetchLike, Properties } from '../../shared/types.js';
import { uuidv7 } from '../../shared/uuid.js';
import {
  LIMITS,
  PAGE_EVENT,
  PUBLISHABLE_KEY,
  checkEventName,
  checkId,
  checkProperties,
  isTrustedEvent,
  redactKey,
} from '../../shared/validate.js';
import { KV, StorageQueue, type StorageLike } from './storage.js';

export { backoffDelay, parseRetryAfter } from '../../shared/engine.js';
export { GamifyError, uuidv7, StorageQueue };
export type { StorageLike };
export type { GamifyErrorCode, RejectedEvent } from '../../shared/errors.js';
export type { BatchItem, DeliveredEvent, FetchLike, FetchResponseLike, Properties } from '../../shared/types.js';
export { TRUSTED_EVENTS, PAGE_EVENT, isTrustedEvent } from '../../shared/validate.js';

export const VERSION = '0.1.0';

/** Largest body sent with navigator.sendBeacon / keepalive fetch (browsers cap in-flight beacons at 64 KiB). */
export const BEACON_MAX_BYTES = 60_000;

export interface GamifyConfig {
  /** Publishable key, `pk_live_` + 64 hex. Secret keys are refused. */
  apiKey: string;
  /** Base URL of the Boost API. Default `http://localhost:3000` (`boost dev`). */
  endpoint?: string;
  /** Flush when this many events are queued. Default 20. */
  flushAt?: number;
  /** Flush queued events every this many milliseconds. Default 5000. */
  flushInterval?: number;
  /** Events beyond this many queued are dropped (reported as `queue_full`). Default 1000. */
  maxQueueSize?: number;
  /** Retries after the first attempt (network errors, 408, 429, 5xx) while online. Default 10. */
  maxRetries?: number;
  /** Items per request (server limit 500). Default 100. */
  maxBatchSize?: number;
  /** Per-request timeout in milliseconds. Default 10000. */
  requestTimeout?: number;
  /** First backoff step in milliseconds (full jitter, doubling). Default 1000. */
  retryBaseDelay?: number;
  /** Backoff cap in milliseconds. Default 30000. */
  maxRetryDelay?: number;
  /** Longest Retry-After honoured, in milliseconds. Default 60000. */
  maxRetryAfter?: number;
  /** Longest time spent retrying one batch, waits included; then its events are dropped and reported. Default 60000. */
  maxRetryTime?: number;
  /** Keep the queue and ids in storage. Default true. */
  persist?: boolean;
  /** Storage to use instead of window.localStorage. */
  storage?: StorageLike;
  /** Prefix of the storage keys. Default `gamify:<first 8 hex of the key>:`. */
  storagePrefix?: string;
  /** Send what is queued with navigator.sendBeacon when the page is hidden or unloaded. Default true. */
  beacon?: boolean;
  /** Start the timer and page-lifecycle listeners in the constructor (browser only). Default true. */
  autoStart?: boolean;
  /** Defaults to window.fetch. */
  fetch?: FetchLike;
  /** Called with a GamifyError whenever events are dropped or refused. Default: console.error. */
  onError?: ErrorHandler;
  /** Called with the server ids of accepted events (debugging, tests). */
  onDelivered?: DeliveredHandler;
}

type Win = {
  addEventListener(type: string, fn: () => void): void;
  removeEventListener(type: string, fn: () => void): void;
  localStorage?: StorageLike;
  location?: { href: string; pathname: string };
  navigator?: {
    onLine?: boolean;
    sendBeacon?: (url: string, data?: string) => boolean;
  };
  document?: {
    title: string;
    referrer: string;
    visibilityState?: string;
    addEventListener(type: string, fn: () => void): void;
    removeEventListener(type: string, fn: () => void): void;
  };
  fetch?: FetchLike;
};

/** The browser window, or undefined during SSR / in workers. Never touched at import time. */
function getWindow(): Win | undefined {
  return typeof window !== 'undefined' ? (window as unknown as Win) : undefined;
}

function num(name: string, v: number | undefined, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || Number.isNaN(v) || v < min || v > max) {
    throw new GamifyError('invalid_config', `${name} must be a number between ${min} and ${max} (got ${String(v)})`);
  }
  return v;
}

function defaultOnError(err: GamifyError): void {
  // eslint-disable-next-line no-console
  console.error(`[gamify] ${err.code}: ${err.message}`);
}

/**
 * Browser client for Boost (publishable key). Safe to import and construct
 * during SSR: it touches `window` only when it exists.
 *
 *   const gamify = new Gamify({ apiKey: 'pk_live_…', endpoint: 'http://localhost:3000' });
 *   gamify.page();
 *   gamify.track('lesson_started', { lesson: 3 });
 */
export class Gamify {
  readonly apiKey: string;
  readonly endpoint: string;
  private engine: Engine;
  private kv: KV;
  private prefix: string;
  private win: Win | undefined;
  private started = false;
  private beaconEnabled: boolean;
  private beaconed = new Set<string>();
  private lastPageUrl: string | undefined;
  private report: ErrorHandler;
  private fetchImpl: FetchLike;
  private listeners: [target: 'window' | 'document', type: string, fn: () => void][] = [];

  constructor(config: GamifyConfig) {
    if (!config || typeof config !== 'object') {
      throw new GamifyError('invalid_config', 'new Gamify({ apiKey }) needs a config object');
    }
    const { apiKey } = config;
    if (typeof apiKey !== 'string' || apiKey === '') {
      throw new GamifyError('invalid_config', '@gamify/core needs apiKey: the publishable key (pk_live_…)');
    }
    if (apiKey.startsWith('sk_')) {
      throw new GamifyError(
        'secret_key_in_browser',
        `@gamify/core was given a secret key (${redactKey(apiKey)}). Secret keys must never ship in a web page: ` +
          'use the publishable key (pk_live_…) here, send trusted events from your server with @gamify/node, ' +
          'and rotate this secret key if it was ever deployed.',
      );
    }
    if (!PUBLISHABLE_KEY.test(apiKey)) {
      throw new GamifyError(
        'invalid_config',
        `apiKey does not look like a Boost publishable key (expected pk_live_ followed by 64 hex characters, got ${redactKey(apiKey)})`,
      );
    }
    this.apiKey = apiKey;
    this.endpoint = (config.endpoint ?? 'http://localhost:3000').replace(/\/+$/, '');
    this.win = getWindow();
    this.beaconEnabled = config.beacon !== false;
    this.report = config.onError ?? defaultOnError;
    this.prefix = config.storagePrefix ?? `gamify:${apiKey.slice(apiKey.lastIndexOf('_') + 1).slice(0, 8)}:`;

    let storage: StorageLike | null = null;
    if (config.persist !== false) {
      if (config.storage) storage = config.storage;
      else if (this.win) {
        try {
          storage = this.win.localStorage ?? null; // the getter itself throws when storage is disabled
        } catch {
          storage = null;
        }
      }
    }
    this.kv = new KV(storage);
    const store: QueueStore = storage
      ? new StorageQueue(storage, this.prefix + 'queue', (err) =>
          this.safeReport(
            new GamifyError(
              'storage_unavailable',
              `could not write the event queue to storage (${(err as Error)?.message ?? err}); keeping it in memory for this page`,
              { cause: err },
            ),
          ),
        )
      : new MemoryStore();

    const win = this.win;
    const f = config.fetch ?? (win?.fetch ? (win.fetch.bind(win) as FetchLike) : (globalThis.fetch as unknown as FetchLike | undefined));
    if (typeof f !== 'function') throw new GamifyError('invalid_config', 'no fetch available: pass config.fetch');
    this.fetchImpl = f;

    this.engine = new Engine({
      endpoint: this.endpoint,
      apiKey,
      flushAt: num('flushAt', config.flushAt, 20, 1),
      flushInterval: num('flushInterval', config.flushInterval, 5_000, 0),
      maxQueueSize: num('maxQueueSize', config.maxQueueSize, 1_000, 1),
      maxRetries: num('maxRetries', config.maxRetries, 10, 0, 100),
      maxBatchSize: num('maxBatchSize', config.maxBatchSize, 100, 1, LIMITS.maxBatchItems),
      maxBatchBytes: LIMITS.maxRequestBytes,
      requestTimeout: num('requestTimeout', config.requestTimeout, 10_000, 1),
      retryBaseDelay: num('retryBaseDelay', config.retryBaseDelay, 1_000, 0),
      maxRetryDelay: num('maxRetryDelay', config.maxRetryDelay, 30_000, 0),
      maxRetryAfter: num('maxRetryAfter', config.maxRetryAfter, 60_000, 0),
      maxRetryTime: num('maxRetryTime', config.maxRetryTime, 60_000, 0),
      fetch: (url, init) => f(url, init),
      store,
      onError: (err) => this.safeReport(err),
      onDelivered: config.onDelivered,
      isOnline: () => this.online(),
    });

    if (this.win && config.autoStart !== false) this.start();
  }

  /** The anonymous id (created and persisted on first use). */
  get anonymousId(): string {
    let id = this.kv.get(this.prefix + 'anonymous_id');
    if (!id) {
      id = uuidv7();
      this.kv.set(this.prefix + 'anonymous_id', id);
    }
    return id;
  }

  /** The identified user id, if identify() was called (persisted). */
  get userId(): string | undefined {
    return this.kv.get(this.prefix + 'user_id') ?? undefined;
  }

  /** Number of events waiting to be delivered. */
  get queueSize(): number {
    return this.engine.store.size();
  }

  /** true when the queue fell back to memory (storage unavailable or full). */
  get persistent(): boolean {
    const s = this.engine.store;
    return s instanceof StorageQueue && !s.inMemory;
  }

  /**
   * Queues an event and returns its messageId. Throws a GamifyError for
   * invalid input and for trusted events (`purchase`, `referral_success`, …),
   * which only a server holding the secret key may send.
   */
  track(event: string, properties?: Properties): string {
    checkEventName(event);
    if (isTrustedEvent(event)) {
      throw new GamifyError(
        'trusted_event',
        `"${event}" is a trusted event: the server only accepts it with a secret key, so it cannot be sent from a browser. ` +
          'Send it from your server with @gamify/node (e.g. gamify.purchase({...})).',
      );
    }
    return this.enqueue(event, checkProperties(properties));
  }

  /** Identifies the user (persisted) and sends `$identify` linking the anonymous id. */
  identify(userId: string, traits?: Properties): string {
    const id = checkId('userId', userId);
    if (!id) throw new GamifyError('invalid_event', 'identify() needs a userId');
    const props = checkProperties(traits, 'traits');
    this.kv.set(this.prefix + 'user_id', id);
    return this.enqueue('$identify', props);
  }

  /** Sends `page_view` with url, path, title and referrer (overridable). */
  page(properties?: Properties): string {
    const extra = checkProperties(properties);
    const win = this.win;
    const url = win?.location?.href;
    const base: Properties = {
      url: url ?? '',
      path: win?.location?.pathname ?? '',
      title: win?.document?.title ?? '',
      // in a single-page app the previous page() is the referrer
      referrer: this.lastPageUrl ?? win?.document?.referrer ?? '',
    };
    const props = { ...base, ...extra };
    if (typeof props.url === 'string') this.lastPageUrl = props.url;
    return this.enqueue(PAGE_EVENT, checkProperties(props));
  }

  /** Forgets the user: new anonymous id, no user id (e.g. on logout). Queued events are kept. */
  reset(): void {
    this.kv.remove(this.prefix + 'user_id');
    this.kv.set(this.prefix + 'anonymous_id', uuidv7());
  }

  /** Delivers what is queued (one flush at a time). Never rejects; failures go to onError. */
  flush(): Promise<void> {
    return this.engine.flush();
  }

  /** Starts the flush timer and the visibilitychange / pagehide / online listeners. Idempotent. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.engine.startTimer();
    const win = this.win;
    if (!win) return;
    const onVisibility = () => {
      if (win.document?.visibilityState === 'hidden') this.beacon();
      else this.beaconed.clear();
    };
    const onPageHide = () => this.beacon();
    const onOnline = () => {
      void this.flush();
    };
    this.listen('document', 'visibilitychange', onVisibility);
    this.listen('window', 'pagehide', onPageHide);
    this.listen('window', 'online', onOnline);
    // events persisted by an earlier page go out now
    if (this.engine.store.size() > 0) setTimeout(() => void this.flush(), 0);
  }

  /**
   * Stops the timer and listeners and flushes what is queued. Anything still
   * undelivered stays persisted for the next page. start() resumes.
   */
  async shutdown(): Promise<void> {
    if (this.started) {
      this.started = false;
      this.engine.stopTimer();
      for (const [target, type, fn] of this.listeners) {
        const t = target === 'window' ? this.win : this.win?.document;
        t?.removeEventListener(type, fn);
      }
      this.listeners = [];
    }
    await this.engine.flush();
  }

  /**
   * Sends everything queued with navigator.sendBeacon (text/plain JSON with
   * `writeKey`, so no CORS preflight), falling back to fetch keepalive.
   *
   * A beacon's delivery cannot be confirmed, so the events stay queued and
   * are sent again by the next regular flush (this page if it comes back,
   * or the next page load). The server stores each messageId once, so the
   * resend is harmless, and its answer is what confirms delivery.
   */
  beacon(): void {
    if (!this.beaconEnabled || !this.online()) return;
    let bodies: { body: string; ids: string[] }[];
    try {
      bodies = this.engine.beaconBodies(BEACON_MAX_BYTES, this.apiKey, this.beaconed);
    } catch {
      return;
    }
    const nav = this.win?.navigator;
    const f = this.fetchImpl;
    const url = this.engine.url;
    for (const { body, ids } of bodies) {
      let sent = false;
      try {
        sent = typeof nav?.sendBeacon === 'function' && nav.sendBeacon(url, body);
      } catch {
        sent = false;
      }
      if (!sent) {
        try {
          void f(url, {
            method: 'POST',
            headers: { 'content-type': 'text/plain;charset=UTF-8' },
            body,
            keepalive: true,
            credentials: 'omit',
          }).catch(() => undefined);
          sent = true;
        } catch {
          sent = false;
        }
      }
      if (!sent) break; // beacon quota used up; the rest waits for the next flush
      for (const id of ids) this.beaconed.add(id);
    }
  }

  private enqueue(event: string, properties: Properties): string {
    const userId = this.userId;
    const item: BatchItem = {
      event,
      ...(userId ? { userId } : {}),
      anonymousId: this.anonymousId,
      properties,
      timestamp: new Date().toISOString(),
      messageId: uuidv7(),
    };
    this.engine.enqueue(item);
    return item.messageId;
  }

  private online(): boolean {
    return this.win?.navigator?.onLine !== false;
  }

  private listen(target: 'window' | 'document', type: string, fn: () => void): void {
    const t = target === 'window' ? this.win : this.win?.document;
    if (!t) return;
    t.addEventListener(type, fn);
    this.listeners.push([target, type, fn]);
  }

  private safeReport(err: GamifyError): void {
    try {
      this.report(err);
    } catch {
      // a throwing onError must not break the page
    }
  }
}
