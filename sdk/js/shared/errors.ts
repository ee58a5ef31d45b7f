/**
 * Error type shared by every Gamify SDK. `code` is stable and machine
 * readable; `messageIds` names the events concerned (so a caller can
 * correlate with what `track()` returned).
 */
export type GamifyErrorCode =
  /** Bad constructor options (missing/malformed key, bad numbers). */
  | 'invalid_config'
  /** A secret key (`sk_…`) was given to the browser SDK. */
  | 'secret_key_in_browser'
  /** A publishable key (`pk_…`) was given to the server SDK. */
  | 'publishable_key_on_server'
  /** The event failed client-side validation and was not queued. */
  | 'invalid_event'
  /** A trusted (secret-key-only) event was tracked with a publishable key. */
  | 'trusted_event'
  /** The client was closed; the event was not queued. */
  | 'closed'
  /** The server rejected some items of a batch (see `rejected`); they were dropped. */
  | 'rejected'
  /** The server rejected every item of a batch (see `rejected`); they were dropped. */
  | 'invalid_batch'
  /** The server answered 400 to the request as a whole; the batch was dropped. */
  | 'bad_request'
  /** 401: bad or revoked key. The batch was dropped (not retried). */
  | 'unauthorized'
  /** 403: the key may not do this. The batch was dropped (not retried). */
  | 'forbidden'
  /** 413 for a single event: it can never be accepted and was dropped. */
  | 'too_large'
  /** Network errors / 429 / 5xx persisted past `maxRetries`; the events were dropped. */
  | 'retries_exhausted'
  /** The queue held `maxQueueSize` events; the new event was dropped. */
  | 'queue_full'
  /** Any other unexpected HTTP status; the batch was dropped. */
  | 'http_error'
  /** Persistent storage failed (quota, privacy mode); the SDK fell back to memory. */
  | 'storage_unavailable'
  /** `close({ timeout })` gave up before the queue was delivered; the rest was dropped. */
  | 'shutdown_timeout'
  /** A bug or an unexpected exception inside the SDK. */
  | 'internal';

/** One event the server refused, as reported by the batch endpoint. */
export interface RejectedEvent {
  /** Index of the item in the batch that was sent. */
  index: number;
  messageId: string;
  event: string;
  /** Server error code, e.g. `invalid_request`. */
  code: string;
  /** Offending field, e.g. `properties.amount`, when the server names one. */
  field?: string;
  message: string;
}

export interface GamifyErrorInit {
  status?: number;
  messageIds?: string[];
  rejected?: RejectedEvent[];
  cause?: unknown;
}

export class GamifyError extends Error {
  readonly code: GamifyErrorCode;
  /** HTTP status of the answer that caused this error, if any. */
  readonly status?: number;
  /** messageIds of the events that were dropped or refused. */
  readonly messageIds: string[];
  /** Per-event server rejections (codes `rejected` and `invalid_batch`). */
  readonly rejected?: RejectedEvent[];
  override readonly cause?: unknown;

  constructor(code: GamifyErrorCode, message: string, init: GamifyErrorInit = {}) {
    super(message);
    this.name = 'GamifyError';
    this.code = code;
    this.status = init.status;
    this.messageIds = init.messageIds ?? [];
    this.rejected = init.rejected;
    this.cause = init.cause;
  }
}
