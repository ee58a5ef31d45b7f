import { MemoryStore, type QueueEntry, type QueueStore } from '../../shared/engine.js';

/** The part of the Web Storage API the SDK uses (localStorage by default). */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

function isEntry(v: any): v is QueueEntry {
  return (
    v &&
    typeof v === 'object' &&
    v.item &&
    typeof v.item.event === 'string' &&
    typeof v.item.messageId === 'string' &&
    typeof v.attempts === 'number' &&
    typeof v.bytes === 'number'
  );
}

/**
 * Queue kept in Web Storage so events survive reloads and offline periods.
 * Storage is the source of truth (read-modify-write on every change), so
 * tabs of the same site share one queue; if a tab delivers another tab's
 * event twice, messageId dedupe on the server stores it once. If storage
 * throws (quota, Safari private mode, disabled), the queue moves to memory.
 */
export class StorageQueue implements QueueStore {
  private fallback: MemoryStore | null = null;
  private cacheRaw: string | null = null;
  private cache: QueueEntry[] = [];

  constructor(
    private storage: StorageLike,
    private key: string,
    private onFallback: (err: unknown) => void,
  ) {}

  get inMemory(): boolean {
    return this.fallback !== null;
  }

  private read(): QueueEntry[] {
    let raw: string | null;
    try {
      raw = this.storage.getItem(this.key);
    } catch (err) {
      this.fail(err, this.cache);
      return this.cache.slice();
    }
    if (raw === this.cacheRaw) return this.cache.map((e) => ({ ...e }));
    let entries: QueueEntry[] = [];
    if (raw) {
      try {
        const parsed = JSON.parse(raw);
        if (Array.isArray(parsed)) entries = parsed.filter(isEntry);
      } catch {
        entries = []; // corrupt value: start over
      }
    }
    this.cacheRaw = raw;
    this.cache = entries;
    return entries.map((e) => ({ ...e }));
  }

  private write(entries: QueueEntry[]): void {
    const raw = JSON.stringify(entries);
    try {
      if (entries.length === 0) this.storage.removeItem(this.key);
      else this.storage.setItem(this.key, raw);
      this.cacheRaw = entries.length === 0 ? null : raw;
      this.cache = entries;
    } catch (err) {
      this.fail(err, entries);
    }
  }

  private fail(err: unknown, entries: QueueEntry[]): void {
    if (this.fallback) return;
    this.fallback = new MemoryStore(entries);
    this.onFallback(err);
  }

  all(): QueueEntry[] {
    return this.fallback ? this.fallback.all() : this.read();
  }

  push(entry: QueueEntry): void {
    if (this.fallback) return this.fallback.push(entry);
    const entries = this.read();
    if (this.fallback) return (this.fallback as MemoryStore).push(entry); // the read just failed
    entries.push(entry);
    this.write(entries);
  }

  remove(ids: ReadonlySet<string>): void {
    if (this.fallback) return this.fallback.remove(ids);
    const entries = this.read();
    if (this.fallback) return (this.fallback as MemoryStore).remove(ids);
    const kept = entries.filter((e) => !ids.has(e.item.messageId));
    if (kept.length !== entries.length) this.write(kept);
  }

  update(list: QueueEntry[]): void {
    if (this.fallback) return this.fallback.update(list);
    const byId = new Map(list.map((e) => [e.item.messageId, e.attempts]));
    const entries = this.read();
    if (this.fallback) return (this.fallback as MemoryStore).update(list);
    let changed = false;
    for (const e of entries) {
      const a = byId.get(e.item.messageId);
      if (a !== undefined && a !== e.attempts) {
        e.attempts = a;
        changed = true;
      }
    }
    if (changed) this.write(entries);
  }

  size(): number {
    return this.all().length;
  }
}

/** Small key/value persistence with an in-memory fallback. */
export class KV {
  private mem = new Map<string, string>();
  constructor(private storage: StorageLike | null) {}
  get(key: string): string | null {
    if (this.storage) {
      try {
        const v = this.storage.getItem(key);
        if (v !== null) return v;
      } catch {
        // fall through to memory
      }
    }
    return this.mem.get(key) ?? null;
  }
  set(key: string, value: string): void {
    this.mem.set(key, value);
    try {
      this.storage?.setItem(key, value);
    } catch {
      // memory copy is enough
    }
  }
  remove(key: string): void {
    this.mem.delete(key);
    try {
      this.storage?.removeItem(key);
    } catch {
      // ignore
    }
  }
}
