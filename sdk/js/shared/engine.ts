import { GamifyError, type RejectedEvent } from './errors.js';
import type { BatchItem, DeliveredEvent, DeliveredHandler, ErrorHandler, FetchLike, FetchResponseLike } from './types.js';
import { LIMITS, byteLength } from './validate.js';

/** A queued event plus the delivery bookkeeping that survives reloads. */
export interface QueueEntry {
  item: BatchItem;
  /** Failed (retryable) delivery attempts so far. */
  attempts: number;
  /** UTF-8 size of JSON.stringify(item). */
  bytes: number;
}

/** Where queued events live: memory (Node) or localStorage (browser). */
export interface QueueStore {
  all(): QueueEntry[];
  push(entry: QueueEntry): void;
  remove(messageIds: ReadonlySet<string>): void;
  /** Saves new `attempts` counts for these entries (matched by messageId). */
  update(entries: QueueEntry[]): void;
  size(): number;
}

export class MemoryStore implements QueueStore {
  private entries: QueueEntry[];
  constructor(entries: QueueEntry[] = []) {
    this.entries = entries.slice();
  }
  all(): QueueEntry[] {
    return this.entries.slice();
  }
  push(entry: QueueEntry): void {
    this.entries.push(entry);
  }
  remove(ids: ReadonlySet<string>): void {
    this.entries = this.entries.filter((e) => !ids.has(e.item.messageId));
  }
  update(entries: QueueEntry[]): void {
    const byId = new Map(entries.map((e) => [e.item.messageId, e.attempts]));
    for (const e of this.entries) {
      const a = byId.get(e.item.messageId);
      if (a !== undefined) e.attempts = a;
    }
  }
  size(): number {
    return this.entries.length;
  }
}

export interface EngineConfig {
  /** Base URL, e.g. http://localhost:3000 (no trailing /v1). */
  endpoint: string;
  apiKey: string;
  flushAt: number;
  flushInterval: number;
  maxQueueSize: number;
  maxRetries: number;
  maxBatchSize: number;
  maxBatchBytes: number;
  retryBaseDelay: number;
  maxRetryDelay: number;
  maxRetryAfter: number;
  /** Longest time spent retrying one batch, waits included; a wait that would end past it is not started. */
  maxRetryTime: number;
  requestTimeout: number;
  fetch: FetchLike;
  store: QueueStore;
  onError: ErrorHandler;
  onDelivered?: DeliveredHandler;
  /** Extra request headers (Node: user-agent). Browsers may only send CORS-allowed ones. */
  headers?: Record<string, string>;
  /** false while the device is known to be offline: flushing pauses without spending retries. */
  isOnline?: () => boolean;
  /** Do not keep a Node process alive just for the flush timer. */
  unrefTimer?: boolean;
  /** For tests: replaces Math.random in the jitter. */
  random?: () => number;
}

type Outcome =
  | { kind: 'ok'; status: number; body: any }
  | { kind: 'retry'; status?: number; retryAfterMs?: number; reason: string; cause?: unknown }
  | { kind: 'split'; status: number }
  | { kind: 'drop'; status: number; code: 'unauthorized' | 'forbidden' | 'bad_request' | 'http_error'; body: any; reason: string }
  | { kind: 'all-rejected'; status: number; body: any };

const ENVELOPE_BYTES = 200; // {"batch":[…],"sentAt":"…","writeKey":"…"} around the items

export function batchUrl(endpoint: string): string {
  return endpoint.replace(/\/+$/, '') + '/v1/events/batch';
}

/** Parses Retry-After (delta seconds or an HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value == null || value.trim() === '') return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(parseFloat(v) * 1000);
  const date = Date.parse(v);
  if (!Number.isNaN(date)) return Math.max(0, date - now);
  return undefined;
}

/** Exponential backoff with full jitter: random in [0, min(cap, base * 2^(attempt-1))). */
export function backoffDelay(attempt: number, base: number, cap: number, random: () => number = Math.random): number {
  const exp = Math.min(cap, base * Math.pow(2, Math.max(0, attempt - 1)));
  return Math.floor(random() * exp);
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message} (${cause.message})` : err.message;
  }
  return String(err);
}

/**
 * The delivery pipeline shared by @gamify/node and @gamify/core: a queue,
 * batching, one flush at a time, retries with backoff, per-item rejection
 * handling, 413 splitting and the onError / onDelivered hooks.
 */
export class Engine {
  readonly url: string;
  private cfg: EngineConfig;
  private inflight: Promise<void> | null = null;
  private next: Promise<void> | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private halted = false;
  private sleeping = new Set<{ timer: ReturnType<typeof setTimeout>; resolve: () => void }>();

  constructor(cfg: EngineConfig) {
    this.cfg = cfg;
    this.url = batchUrl(cfg.endpoint);
  }

  get store(): QueueStore {
    return this.cfg.store;
  }

  set store(store: QueueStore) {
    this.cfg.store = store;
  }

  get flushing(): boolean {
    return this.inflight !== null;
  }

  report(err: GamifyError): void {
    try {
      this.cfg.onError(err);
    } catch {
      // a throwing onError must not break delivery
    }
  }

  /** Queues an event. Returns false (and reports `queue_full`) if the queue is full. */
  enqueue(item: BatchItem): boolean {
    const bytes = byteLength(JSON.stringify(item));
    const store = this.cfg.store;
    if (store.size() >= this.cfg.maxQueueSize) {
      this.report(
        new GamifyError(
          'queue_full',
          `queue is full (${this.cfg.maxQueueSize} events); dropped "${item.event}" ${item.messageId}`,
          { messageIds: [item.messageId] },
        ),
      );
      return false;
    }
    store.push({ item, attempts: 0, bytes });
    if (store.size() >= this.cfg.flushAt) void this.flush();
    return true;
  }

  startTimer(): void {
    if (this.timer || this.cfg.flushInterval <= 0 || !Number.isFinite(this.cfg.flushInterval)) return;
    this.timer = setInterval(() => {
      if (this.cfg.store.size() > 0) void this.flush();
    }, this.cfg.flushInterval);
    if (this.cfg.unrefTimer) (this.timer as { unref?: () => void }).unref?.();
  }

  stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Delivers every event queued at the time of the call (including retries).
   * Only one flush runs at a time; calls made while one runs share a single
   * follow-up flush. Never rejects: failures go to onError.
   */
  flush(): Promise<void> {
    if (this.inflight) {
      if (!this.next) {
        this.next = this.inflight.then(() => {
          this.next = null;
          return this.flush();
        });
      }
      return this.next;
    }
    const run = this.run().catch((err) => {
      this.report(new GamifyError('internal', `flush failed: ${describe(err)}`, { cause: err }));
    });
    this.inflight = run.finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  /**
   * Stops delivery: the running flush ends after its current request, backoff
   * sleeps end now, and later flushes do nothing. Queued events stay queued.
   */
  halt(): void {
    this.halted = true;
    this.stopTimer();
    this.wakeSleepers();
  }

  private wakeSleepers(): void {
    for (const s of this.sleeping) {
      clearTimeout(s.timer);
      s.resolve();
    }
    this.sleeping.clear();
  }

  private online(): boolean {
    return this.cfg.isOnline ? this.cfg.isOnline() : true;
  }

  private async run(): Promise<void> {
    const pending = new Set(this.cfg.store.all().map((e) => e.item.messageId));
    while (pending.size > 0) {
      if (this.halted) return;
      if (!this.online()) return; // resumed by the 'online' event or the timer
      const batch = this.nextBatch(pending);
      if (batch.length === 0) return;
      for (const e of batch) pending.delete(e.item.messageId);
      const result = await this.deliver(batch);
      if (result === 'stop') return;
    }
  }

  /** Oldest queued entries still pending, within the item and byte limits. */
  private nextBatch(pending: Set<string>): QueueEntry[] {
    const out: QueueEntry[] = [];
    let bytes = ENVELOPE_BYTES;
    for (const e of this.cfg.store.all()) {
      if (!pending.has(e.item.messageId)) continue;
      if (out.length >= this.cfg.maxBatchSize) break;
      if (out.length > 0 && bytes + e.bytes + 1 > this.cfg.maxBatchBytes) break;
      out.push(e);
      bytes += e.bytes + 1;
    }
    return out;
  }

  /** Sends one batch until it is delivered, dropped, or delivery must stop (offline). */
  private async deliver(batch: QueueEntry[], started: number = Date.now()): Promise<'done' | 'stop'> {
    let entries = batch;
    for (;;) {
      if (this.halted || !this.online()) return 'stop';
      const outcome = await this.post(entries);
      switch (outcome.kind) {
        case 'ok':
          this.handleAccepted(entries, outcome.body, outcome.status);
          return 'done';
        case 'all-rejected':
          this.handleAllRejected(entries, outcome.body, outcome.status);
          return 'done';
        case 'drop': {
          const ids = entries.map((e) => e.item.messageId);
          this.remove(entries);
          const serverMsg = outcome.body?.error?.message ? `: ${outcome.body.error.message}` : '';
          this.report(
            new GamifyError(
              outcome.code,
              `${outcome.reason} (HTTP ${outcome.status}${serverMsg}); dropped ${ids.length} event(s), not retried`,
              { status: outcome.status, messageIds: ids },
            ),
          );
          return 'done';
        }
        case 'split': {
          if (entries.length === 1) {
            const e = entries[0];
            this.remove(entries);
            this.report(
              new GamifyError(
                'too_large',
                `event "${e.item.event}" ${e.item.messageId} (${e.bytes} bytes) is too large for the server (HTTP 413); dropped`,
                { status: outcome.status, messageIds: [e.item.messageId] },
              ),
            );
            return 'done';
          }
          const mid = Math.ceil(entries.length / 2);
          if ((await this.deliver(entries.slice(0, mid), started)) === 'stop') return 'stop';
          return this.deliver(entries.slice(mid), started);
        }
        case 'retry': {
          if (outcome.status === undefined && !this.online()) {
            return 'stop'; // went offline mid-request: keep the events, spend no retry
          }
          for (const e of entries) e.attempts++;
          const attempt = Math.max(...entries.map((e) => e.attempts));
          const delay =
            outcome.retryAfterMs !== undefined
              ? Math.min(outcome.retryAfterMs, this.cfg.maxRetryAfter)
              : backoffDelay(attempt, this.cfg.retryBaseDelay, this.cfg.maxRetryDelay, this.cfg.random);
          const outOfTime = Date.now() + delay - started > this.cfg.maxRetryTime;
          const exhausted = entries.filter((e) => outOfTime || e.attempts > this.cfg.maxRetries);
          const remaining = entries.filter((e) => !outOfTime && e.attempts <= this.cfg.maxRetries);
          this.cfg.store.update(remaining);
          if (exhausted.length > 0) {
            this.remove(exhausted);
            const why = outOfTime
              ? `retrying would exceed maxRetryTime (${this.cfg.maxRetryTime} ms)`
              : `gave up after ${this.cfg.maxRetries + 1} attempts`;
            this.report(
              new GamifyError(
                'retries_exhausted',
                `${why} (last error: ${outcome.reason}); dropped ${exhausted.length} event(s)`,
                {
                  status: outcome.status,
                  messageIds: exhausted.map((e) => e.item.messageId),
                  cause: outcome.cause,
                },
              ),
            );
          }
          if (remaining.length === 0) return 'done';
          entries = remaining;
          await this.sleep(delay);
          if (this.halted) return 'stop';
          // Entries may have been delivered meanwhile by another tab sharing the store.
          const still = new Set(this.cfg.store.all().map((e) => e.item.messageId));
          entries = entries.filter((e) => still.has(e.item.messageId));
          if (entries.length === 0) return 'done';
          continue;
        }
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const s = {
        timer: setTimeout(() => {
          this.sleeping.delete(s);
          resolve();
        }, ms),
        resolve,
      };
      this.sleeping.add(s);
    });
  }

  private remove(entries: QueueEntry[]): void {
    this.cfg.store.remove(new Set(entries.map((e) => e.item.messageId)));
  }

  /** JSON body for a batch; `writeKey` only for beacons. */
  static body(entries: QueueEntry[], writeKey?: string): string {
    const payload: Record<string, unknown> = {
      batch: entries.map((e) => e.item),
      sentAt: new Date().toISOString(),
    };
    if (writeKey) payload.writeKey = writeKey;
    return JSON.stringify(payload);
  }

  private async post(entries: QueueEntry[]): Promise<Outcome> {
    const body = Engine.body(entries);
    const controller = typeof AbortController !== 'undefined' ? new AbortController() : undefined;
    const timeout = controller ? setTimeout(() => controller.abort(), this.cfg.requestTimeout) : undefined;
    let res: FetchResponseLike;
    let text = '';
    try {
      res = await this.cfg.fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': this.cfg.apiKey, ...this.cfg.headers },
        body,
        signal: controller?.signal,
      });
      text = await res.text();
    } catch (err) {
      const timedOut = controller?.signal.aborted;
      return {
        kind: 'retry',
        reason: timedOut ? `request timed out after ${this.cfg.requestTimeout} ms` : `network error: ${describe(err)}`,
        cause: err,
      };
    } finally {
      if (timeout !== undefined) clearTimeout(timeout);
    }
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    const s = res.status;
    if (s >= 200 && s < 300) return { kind: 'ok', status: s, body: json };
    if (s === 413) return { kind: 'split', status: s };
    if (s === 408 || s === 429 || s >= 500) {
      return {
        kind: 'retry',
        status: s,
        // Browsers can read Retry-After cross-origin only if the server exposes it.
        retryAfterMs: parseRetryAfter(res.headers.get('retry-after')),
        reason: `HTTP ${s}${json?.error?.message ? `: ${json.error.message}` : ''}`,
      };
    }
    if (s === 400 && Array.isArray(json?.rejected) && json.rejected.length > 0) {
      return { kind: 'all-rejected', status: s, body: json };
    }
    if (s === 400) return { kind: 'drop', status: s, code: 'bad_request', body: json, reason: 'the server refused the request' };
    if (s === 401) return { kind: 'drop', status: s, code: 'unauthorized', body: json, reason: 'invalid or revoked API key' };
    if (s === 403) return { kind: 'drop', status: s, code: 'forbidden', body: json, reason: 'the API key is not allowed to send these events' };
    return { kind: 'drop', status: s, code: 'http_error', body: json, reason: `unexpected HTTP ${s}` };
  }

  private rejectedList(entries: QueueEntry[], body: any): RejectedEvent[] {
    const list: RejectedEvent[] = [];
    if (!Array.isArray(body?.rejected)) return list;
    for (const r of body.rejected) {
      const e = entries[r?.index];
      if (!e) continue;
      list.push({
        index: r.index,
        messageId: e.item.messageId,
        event: e.item.event,
        code: String(r.code ?? 'rejected'),
        field: r.field,
        message: String(r.message ?? ''),
      });
    }
    return list;
  }

  private static summarize(rejected: RejectedEvent[]): string {
    const first = rejected
      .slice(0, 3)
      .map((r) => `"${r.event}" ${r.messageId}: ${r.code}${r.field ? ` (${r.field})` : ''} ${r.message}`.trim())
      .join('; ');
    return rejected.length > 3 ? `${first}; and ${rejected.length - 3} more` : first;
  }

  private handleAccepted(entries: QueueEntry[], body: any, status: number): void {
    this.remove(entries);
    const delivered: DeliveredEvent[] = [];
    if (Array.isArray(body?.accepted)) {
      for (const a of body.accepted) {
        const e = entries[a?.index];
        if (e && typeof a.id === 'string') delivered.push({ messageId: e.item.messageId, id: a.id, event: e.item.event });
      }
    }
    const rejected = this.rejectedList(entries, body);
    if (delivered.length > 0 && this.cfg.onDelivered) {
      try {
        this.cfg.onDelivered(delivered);
      } catch {
        // ignore hook errors
      }
    }
    if (rejected.length > 0) {
      this.report(
        new GamifyError(
          'rejected',
          `the server rejected ${rejected.length} of ${entries.length} event(s); they were dropped: ${Engine.summarize(rejected)}`,
          { status, messageIds: rejected.map((r) => r.messageId), rejected },
        ),
      );
    }
  }

  private handleAllRejected(entries: QueueEntry[], body: any, status: number): void {
    this.remove(entries);
    const rejected = this.rejectedList(entries, body);
    const named = new Set(rejected.map((r) => r.messageId));
    const ids = entries.map((e) => e.item.messageId);
    const msg = body?.error?.message ? ` (${body.error.message})` : '';
    this.report(
      new GamifyError(
        'invalid_batch',
        `the server rejected every event of the batch${msg}; dropped ${ids.length} event(s): ${Engine.summarize(rejected)}`,
        // every item of the batch was dropped, even any the server did not name
        { status, messageIds: [...ids.filter((id) => named.has(id)), ...ids.filter((id) => !named.has(id))], rejected },
      ),
    );
  }

  /**
   * Splits the queue into beacon-sized bodies (text/plain JSON with the
   * writeKey). Entries in `skip` are left out; the entries used are returned
   * so the caller can remember them.
   */
  beaconBodies(maxBytes: number, writeKey: string, skip: ReadonlySet<string>): { body: string; ids: string[] }[] {
    const out: { body: string; ids: string[] }[] = [];
    let chunk: QueueEntry[] = [];
    let bytes = ENVELOPE_BYTES + writeKey.length;
    const flushChunk = () => {
      if (chunk.length > 0) out.push({ body: Engine.body(chunk, writeKey), ids: chunk.map((e) => e.item.messageId) });
      chunk = [];
      bytes = ENVELOPE_BYTES + writeKey.length;
    };
    for (const e of this.cfg.store.all()) {
      if (skip.has(e.item.messageId)) continue;
      if (e.bytes + ENVELOPE_BYTES + writeKey.length > maxBytes) continue; // too big for any beacon; fetch will carry it
      if (chunk.length >= LIMITS.maxBatchItems || bytes + e.bytes + 1 > maxBytes) flushChunk();
      chunk.push(e);
      bytes += e.bytes + 1;
    }
    flushChunk();
    return out;
  }
}
