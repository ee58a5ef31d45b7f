import { Engine, MemoryStore } from '../../shared/engine.js';
import { GamifyError } from '../../shared/errors.js';
import type { BatchItem, DeliveredHandler, ErrorHandler, FetchLike, Properties } from '../../shared/types.js';
import { uuidv7 } from '../../shared/uuid.js';
import {
  LIMITS,
  PUBLISHABLE_KEY,
  SECRET_KEY,
  checkCommerce,
  checkEventName,
  checkId,
  checkProperties,
  checkTimestamp,
  isCommerceEvent,
  redactKey,
} from '../../shared/validate.js';

export { backoffDelay, parseRetryAfter } from '../../shared/engine.js';
export { GamifyError, uuidv7 };
export type { GamifyErrorCode, RejectedEvent } from '../../shared/errors.js';
export type { BatchItem, DeliveredEvent, FetchLike, FetchResponseLike, Properties } from '../../shared/types.js';
export { TRUSTED_EVENTS, COMMERCE_EVENTS, LIMITS, PAGE_EVENT, isTrustedEvent } from '../../shared/validate.js';

export const VERSION = '0.1.0';

export interface GamifyOptions {
  /** Secret key, `sk_live_` + 64 hex. Publishable keys are refused. */
  apiKey: string;
  /** Base URL of the Boost API. Default `http://localhost:3000` (`boost dev`). */
  endpoint?: string;
  /** Flush when this many events are queued. Default 100. */
  flushAt?: number;
  /** Flush queued events every this many milliseconds (0: never). Default 1000. */
  flushInterval?: number;
  /** Events beyond this many queued are dropped (reported as `queue_full`). Default 10000. */
  maxQueueSize?: number;
  /** Retries after the first attempt on network errors, 408, 429 and 5xx. Default 7 (8 attempts). */
  maxRetries?: number;
  /** Items per request, at most 500 (the server limit). Default 500. */
  maxBatchSize?: number;
  /** Per-request timeout in milliseconds. Default 10000. */
  requestTimeout?: number;
  /** First backoff step in milliseconds (full jitter, doubling). Default 200. */
  retryBaseDelay?: number;
  /** Backoff cap in milliseconds. Default 10000. */
  maxRetryDelay?: number;
  /** Longest Retry-After honoured, in milliseconds. Default 60000. */
  maxRetryAfter?: number;
  /** Longest time spent retrying one batch, waits included; then its events are dropped and reported. Default 60000. */
  maxRetryTime?: number;
  /** Defaults to the global fetch (Node >= 18). */
  fetch?: FetchLike;
  /** Called with a GamifyError whenever events are dropped or refused. Default: console.error. */
  onError?: ErrorHandler;
  /** Called with the server ids of accepted events. */
  onDelivered?: DeliveredHandler;
}

/** Exactly one of userId / anonymousId is required (both may be given). */
export interface TrackParams {
  userId?: string;
  anonymousId?: string;
  event: string;
  properties?: Properties;
  /** When the event happened. Default: now. */
  timestamp?: Date | string | number;
}

export interface IdentifyParams {
  userId: string;
  traits?: Properties;
  /** Links this anonymous id to the user. */
  anonymousId?: string;
  timestamp?: Date | string | number;
}

export interface PurchaseParams {
  userId?: string;
  anonymousId?: string;
  orderId: string;
  /** Integer amount in the currency's minor unit (cents). */
  amount: number;
  /** ISO 4217 code, e.g. "USD". Sent upper-cased. */
  currency: string;
  items?: unknown[];
  properties?: Properties;
  timestamp?: Date | string | number;
}

export interface ReferralSuccessParams {
  userId: string;
  referredUserId: string;
  referralCode: string;
  properties?: Properties;
  timestamp?: Date | string | number;
}

export interface CloseOptions {
  /** Give up delivering after this many ms; what is left is dropped and reported. Default: no limit. */
  timeout?: number;
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
 * Server-side client for Boost. Batches events, retries safely (every event
 * has a messageId the server dedupes on) and reports drops via onError.
 *
 *   const gamify = new Gamify({ apiKey: process.env.BOOST_SECRET_KEY! });
 *   gamify.track({ userId: 'u1', event: 'lesson_finished', properties: { lesson: 3 } });
 *   await gamify.close();
 */
export class Gamify {
  private engine: Engine;
  private closed = false;
  private closing: Promise<void> | null = null;

  constructor(options: GamifyOptions) {
    if (!options || typeof options !== 'object') {
      throw new GamifyError('invalid_config', 'new Gamify({ apiKey }) needs an options object');
    }
    const { apiKey } = options;
    if (typeof apiKey !== 'string' || apiKey === '') {
      throw new GamifyError('invalid_config', '@gamify/node needs apiKey: a secret key (sk_live_…)');
    }
    if (apiKey.startsWith('pk_') || PUBLISHABLE_KEY.test(apiKey)) {
      throw new GamifyError(
        'publishable_key_on_server',
        `@gamify/node was given a publishable key (${redactKey(apiKey)}). Servers must use the project's secret key (sk_live_…); ` +
          'publishable keys are for @gamify/core in browsers and cannot send trusted events.',
      );
    }
    if (!SECRET_KEY.test(apiKey)) {
      throw new GamifyError(
        'invalid_config',
        `apiKey does not look like a Boost secret key (expected sk_live_ followed by 64 hex characters, got ${redactKey(apiKey)})`,
      );
    }
    const f = options.fetch ?? (globalThis.fetch as unknown as FetchLike | undefined);
    if (typeof f !== 'function') {
      throw new GamifyError('invalid_config', 'no global fetch: use Node >= 18 or pass options.fetch');
    }
    const endpoint = options.endpoint ?? 'http://localhost:3000';
    if (!/^https?:\/\//.test(endpoint)) {
      throw new GamifyError('invalid_config', `endpoint must be an http(s) URL (got ${endpoint})`);
    }
    this.engine = new Engine({
      endpoint,
      apiKey,
      flushAt: num('flushAt', options.flushAt, 100, 1),
      flushInterval: num('flushInterval', options.flushInterval, 1_000, 0),
      maxQueueSize: num('maxQueueSize', options.maxQueueSize, 10_000, 1),
      maxRetries: num('maxRetries', options.maxRetries, 7, 0, 100),
      maxBatchSize: num('maxBatchSize', options.maxBatchSize, LIMITS.maxBatchItems, 1, LIMITS.maxBatchItems),
      maxBatchBytes: LIMITS.maxRequestBytes,
      requestTimeout: num('requestTimeout', options.requestTimeout, 10_000, 1),
      retryBaseDelay: num('retryBaseDelay', options.retryBaseDelay, 200, 0),
      maxRetryDelay: num('maxRetryDelay', options.maxRetryDelay, 10_000, 0),
      maxRetryAfter: num('maxRetryAfter', options.maxRetryAfter, 60_000, 0),
      maxRetryTime: num('maxRetryTime', options.maxRetryTime, 60_000, 0),
      fetch: (url, init) => f(url, init),
      store: new MemoryStore(),
      onError: options.onError ?? defaultOnError,
      onDelivered: options.onDelivered,
      headers: { 'user-agent': `gamify-node/${VERSION} node/${typeof process !== 'undefined' ? process.version : '?'}` },
      unrefTimer: true,
    });
  }

  /** Number of events waiting to be delivered (including the batch in flight). */
  get queueSize(): number {
    return this.engine.store.size();
  }

  /** Queues an event; returns its messageId. Throws GamifyError on invalid input. */
  track(params: TrackParams): string {
    if (!params || typeof params !== 'object') throw new GamifyError('invalid_event', 'track() needs { event, userId | anonymousId }');
    const event = checkEventName(params.event);
    const properties = checkProperties(params.properties);
    if (isCommerceEvent(event)) checkCommerce(event, properties);
    return this.enqueue(event, params.userId, params.anonymousId, properties, params.timestamp);
  }

  /** Sends `$identify`: traits for userId, and links anonymousId to it when given. */
  identify(params: IdentifyParams): string {
    if (!params || typeof params !== 'object') throw new GamifyError('invalid_event', 'identify() needs { userId }');
    if (params.userId === undefined || params.userId === null) throw new GamifyError('invalid_event', 'identify() needs userId');
    const traits = checkProperties(params.traits, 'traits');
    return this.enqueue('$identify', params.userId, params.anonymousId, traits, params.timestamp);
  }

  /** Trusted `purchase` event: orderId, amount (integer cents), currency. */
  purchase(params: PurchaseParams): string {
    return this.commerce('purchase', params);
  }

  /** Trusted `checkout_complete` event, same fields as purchase(). */
  checkoutComplete(params: PurchaseParams): string {
    return this.commerce('checkout_complete', params);
  }

  /** Trusted `referral_success` event. */
  referralSuccess(params: ReferralSuccessParams): string {
    if (!params || typeof params !== 'object') throw new GamifyError('invalid_event', 'referralSuccess() needs { userId, referredUserId, referralCode }');
    if (typeof params.referredUserId !== 'string' || params.referredUserId === '') {
      throw new GamifyError('invalid_event', 'referral_success: referredUserId must be a non-empty string');
    }
    if (typeof params.referralCode !== 'string' || params.referralCode === '') {
      throw new GamifyError('invalid_event', 'referral_success: referralCode must be a non-empty string');
    }
    if (params.userId === undefined || params.userId === null) throw new GamifyError('invalid_event', 'referralSuccess() needs userId');
    const properties = checkProperties({
      ...(params.properties ?? {}),
      referredUserId: params.referredUserId,
      referralCode: params.referralCode,
    });
    return this.enqueue('referral_success', params.userId, undefined, properties, params.timestamp);
  }

  /** Delivers everything queued now (with retries). Never rejects; failures go to onError. */
  flush(): Promise<void> {
    return this.engine.flush();
  }

  /**
   * Stops the timer, delivers what is queued and refuses new events.
   * With `timeout`, gives up after that long and reports what was dropped.
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.engine.stopTimer();
    const done = this.engine.flush();
    if (options.timeout === undefined) {
      this.closing = done;
      return done;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), options.timeout);
    });
    this.closing = Promise.race([done.then(() => 'done' as const), deadline]).then((r) => {
      if (timer) clearTimeout(timer);
      if (r !== 'timeout') return;
      this.engine.halt();
      const left = this.engine.store.all();
      if (left.length > 0) {
        this.engine.store.remove(new Set(left.map((e) => e.item.messageId)));
        this.engine.report(
          new GamifyError(
            'shutdown_timeout',
            `close() timed out after ${options.timeout} ms; dropped ${left.length} undelivered event(s)`,
            { messageIds: left.map((e) => e.item.messageId) },
          ),
        );
      }
    });
    return this.closing;
  }

  private commerce(event: 'purchase' | 'checkout_complete', params: PurchaseParams): string {
    if (!params || typeof params !== 'object') throw new GamifyError('invalid_event', `${event} needs { userId, orderId, amount, currency }`);
    if (params.items !== undefined && !Array.isArray(params.items)) {
      throw new GamifyError('invalid_event', `${event}: items must be an array`);
    }
    const properties = checkProperties({
      ...(params.properties ?? {}),
      orderId: params.orderId,
      amount: params.amount,
      currency: typeof params.currency === 'string' ? params.currency.toUpperCase() : params.currency,
      ...(params.items !== undefined ? { items: params.items } : {}),
    });
    checkCommerce(event, properties);
    return this.enqueue(event, params.userId, params.anonymousId, properties, params.timestamp);
  }

  private enqueue(
    event: string,
    userIdIn: unknown,
    anonymousIdIn: unknown,
    properties: Properties,
    timestamp: unknown,
  ): string {
    if (this.closed) throw new GamifyError('closed', `the client is closed; "${event}" was not queued`);
    const userId = checkId('userId', userIdIn);
    const anonymousId = checkId('anonymousId', anonymousIdIn);
    if (!userId && !anonymousId) throw new GamifyError('invalid_event', `"${event}" needs a userId or an anonymousId`);
    const item: BatchItem = {
      event,
      ...(userId ? { userId } : {}),
      ...(anonymousId ? { anonymousId } : {}),
      properties,
      timestamp: checkTimestamp(timestamp),
      messageId: uuidv7(),
    };
    this.engine.enqueue(item);
    this.engine.startTimer();
    return item.messageId;
  }
}

