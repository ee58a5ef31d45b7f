import { GamifyError } from './errors.js';
import type { Properties } from './types.js';

/**
 * Server limits from the ingestion contract (contract/ingestion.json, which
 * node/test/contract.test.mjs compares these with).
 */
export const LIMITS = {
  maxBatchItems: 500,
  maxRequestBytes: 512 * 1024,
  maxEventNameChars: 255,
  maxIdChars: 255,
  maxPropertiesBytes: 32 * 1024,
  /** Objects/arrays nested deeper than this are refused by the server. */
  maxNesting: 32,
  /** Largest commerce amount, in minor units. */
  maxAmount: 100_000_000_000,
} as const;

/** The name page views are sent under (the contract's callEvents.page: Segment's page calls are stored so too). */
export const PAGE_EVENT = 'page_view';

/**
 * Events only a secret key may send. We pre-check trimmed and lower-cased;
 * the server also sees through invisible characters, compatibility forms
 * and look-alike letters, and decides.
 */
export const TRUSTED_EVENTS: ReadonlySet<string> = new Set([
  'purchase',
  'checkout_complete',
  'checkout_success',
  'commission.created',
  'referral_success',
  'user.leveled_up',
  'step.completed',
  'quest.completed',
]);

/** Trusted events that must carry orderId, amount (integer cents) and currency. */
export const COMMERCE_EVENTS: ReadonlySet<string> = new Set(['purchase', 'checkout_complete', 'checkout_success']);

export function normalizeEventName(event: string): string {
  return event.trim().toLowerCase();
}

export function isTrustedEvent(event: string): boolean {
  return TRUSTED_EVENTS.has(normalizeEventName(event));
}

export function isCommerceEvent(event: string): boolean {
  return COMMERCE_EVENTS.has(normalizeEventName(event));
}

const encoder = typeof TextEncoder !== 'undefined' ? new TextEncoder() : undefined;

/** UTF-8 byte length of a string. */
export function byteLength(s: string): number {
  if (encoder) return encoder.encode(s).length;
  return unescape(encodeURIComponent(s)).length;
}

function charCount(s: string): number {
  let n = 0;
  for (const _ of s) n++; // code points, not UTF-16 units
  return n;
}

export function checkEventName(event: unknown): string {
  if (typeof event !== 'string' || event.trim() === '') {
    throw new GamifyError('invalid_event', 'event must be a non-empty string');
  }
  if (charCount(event) > LIMITS.maxEventNameChars) {
    throw new GamifyError('invalid_event', `event must be at most ${LIMITS.maxEventNameChars} characters`);
  }
  return event;
}

/** Checks an optional id; returns it or undefined. */
export function checkId(name: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value === '') {
    throw new GamifyError('invalid_event', `${name} must be a non-empty string`);
  }
  if (charCount(value) > LIMITS.maxIdChars) {
    throw new GamifyError('invalid_event', `${name} must be at most ${LIMITS.maxIdChars} characters`);
  }
  return value;
}

function isPlainObject(v: unknown): v is Properties {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === null || proto === Object.prototype || Object.getPrototypeOf(proto) === null;
}

/**
 * Validates properties and returns a JSON deep copy (later mutations by the
 * caller do not change the queued event; Dates become ISO strings).
 */
export function checkProperties(props: unknown, name = 'properties'): Properties {
  if (props === undefined || props === null) return {};
  if (!isPlainObject(props)) {
    throw new GamifyError('invalid_event', `${name} must be a plain JSON object`);
  }
  let json: string;
  try {
    json = JSON.stringify(props);
  } catch (err) {
    throw new GamifyError('invalid_event', `${name} cannot be serialized to JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const size = byteLength(json);
  if (size > LIMITS.maxPropertiesBytes) {
    throw new GamifyError(
      'invalid_event',
      `${name} is ${size} bytes of JSON; the limit is ${LIMITS.maxPropertiesBytes}`,
    );
  }
  const copy = JSON.parse(json) as Properties;
  if (nesting(copy) > LIMITS.maxNesting) {
    throw new GamifyError('invalid_event', `${name} must nest objects and arrays at most ${LIMITS.maxNesting} levels deep`);
  }
  return copy;
}

/** Depth of nested objects/arrays in a JSON value ({} alone is 1). */
function nesting(v: unknown): number {
  if (v === null || typeof v !== 'object') return 0;
  let deepest = 0;
  for (const child of Array.isArray(v) ? v : Object.values(v as object)) {
    const d = nesting(child);
    if (d > deepest) deepest = d;
    if (deepest > LIMITS.maxNesting) break;
  }
  return 1 + deepest;
}

/** orderId (string), amount (integer cents >= 0), currency (3 letters). */
export function checkCommerce(event: string, props: Properties): void {
  const { orderId, amount, currency } = props;
  if (typeof orderId !== 'string' || orderId.trim() === '') {
    throw new GamifyError('invalid_event', `${event}: properties.orderId must be a non-empty string`);
  }
  if (typeof amount !== 'number' || !Number.isSafeInteger(amount) || amount < 0 || amount > LIMITS.maxAmount) {
    throw new GamifyError(
      'invalid_event',
      `${event}: properties.amount must be an integer number of cents from 0 to ${LIMITS.maxAmount} (got ${JSON.stringify(amount)})`,
    );
  }
  if (typeof currency !== 'string' || !/^[A-Za-z]{3}$/.test(currency)) {
    throw new GamifyError(
      'invalid_event',
      `${event}: properties.currency must be a 3-letter ISO 4217 code (got ${JSON.stringify(currency)})`,
    );
  }
}

export function checkTimestamp(ts: unknown): string {
  if (ts === undefined || ts === null) return new Date().toISOString();
  const d = ts instanceof Date ? ts : typeof ts === 'string' || typeof ts === 'number' ? new Date(ts) : undefined;
  if (!d || Number.isNaN(d.getTime())) {
    throw new GamifyError('invalid_event', 'timestamp must be a Date, an ISO 8601 string or epoch milliseconds');
  }
  return d.toISOString();
}

export const PUBLISHABLE_KEY = /^pk_[a-z]+_[0-9a-f]{64}$/i;
export const SECRET_KEY = /^sk_[a-z]+_[0-9a-f]{64}$/i;

/** Redacts a key for messages: keeps the prefix and the last 4 characters. */
export function redactKey(key: string): string {
  const m = /^([a-z]{2}_[a-z]+_)/i.exec(key);
  return (m ? m[1] : '') + '…' + key.slice(-4);
}
