/** A JSON object of event properties (or identify traits). */
export type Properties = Record<string, unknown>;

/** One item of `POST /v1/events/batch`, exactly as sent. */
export interface BatchItem {
  event: string;
  userId?: string;
  anonymousId?: string;
  properties: Properties;
  /** ISO 8601 with milliseconds, set when the event was created. */
  timestamp: string;
  /** UUIDv7 set when the event was created; reused by every retry and beacon. */
  messageId: string;
}

/** An event the server accepted, with the id it stored it under. */
export interface DeliveredEvent {
  messageId: string;
  /** Server id (derived from project + messageId: a resend returns the same id). */
  id: string;
  event: string;
}

/** The subset of the Fetch API Response the SDKs read. */
export interface FetchResponseLike {
  status: number;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}

/** The subset of `fetch` the SDKs use; pass your own to `fetch` in the options. */
export type FetchLike = (
  url: string,
  init: {
    method: string;
    headers: Record<string, string>;
    body: string;
    signal?: AbortSignal;
    keepalive?: boolean;
    credentials?: 'omit' | 'same-origin' | 'include';
  },
) => Promise<FetchResponseLike>;

export type ErrorHandler = (err: import('./errors.js').GamifyError) => void;
export type DeliveredHandler = (events: DeliveredEvent[]) => void;
