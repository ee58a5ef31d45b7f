// A minimal fake browser for unit-testing @gamify/core under Node: window
// (an EventTarget), document (visibilityState), navigator (onLine,
// sendBeacon that really POSTs as text/plain), location and a localStorage
// that can be made to throw. install() sets globalThis.window; uninstall()
// removes it.

export class MemoryStorage {
  constructor() {
    this.map = new Map();
    this.failWrites = false;
    this.failReads = false;
  }
  getItem(k) {
    if (this.failReads) throw new Error('SecurityError: storage disabled');
    return this.map.has(k) ? this.map.get(k) : null;
  }
  setItem(k, v) {
    if (this.failWrites) {
      const e = new Error('QuotaExceededError: storage is full');
      e.name = 'QuotaExceededError';
      throw e;
    }
    this.map.set(k, String(v));
  }
  removeItem(k) {
    this.map.delete(k);
  }
  get length() {
    return this.map.size;
  }
}

export function installBrowser(opts = {}) {
  const storage = opts.storage ?? new MemoryStorage();
  const beacons = [];
  const win = new EventTarget();
  const doc = new EventTarget();
  doc.title = opts.title ?? 'Test page';
  doc.referrer = opts.referrer ?? 'https://ref.example/';
  doc.visibilityState = 'visible';
  const nav = {
    onLine: true,
    beaconResult: true,
    sendBeacon(url, data) {
      beacons.push({ url, data });
      if (!nav.beaconResult) return false;
      // a real beacon: POST, text/plain, no custom headers, response unreadable
      globalThis
        .fetch(url, { method: 'POST', body: data, headers: { 'content-type': 'text/plain;charset=UTF-8' } })
        .then((r) => r.text())
        .catch(() => undefined);
      return true;
    },
  };
  Object.assign(win, {
    document: doc,
    navigator: nav,
    location: { href: opts.href ?? 'https://app.example/shop?x=1', pathname: '/shop' },
    fetch: (...args) => globalThis.fetch(...args),
  });
  if (opts.storageThrows) {
    Object.defineProperty(win, 'localStorage', {
      get() {
        throw new Error('SecurityError: access denied');
      },
    });
  } else {
    win.localStorage = storage;
  }
  globalThis.window = win;
  return {
    window: win,
    document: doc,
    navigator: nav,
    storage,
    beacons,
    setVisibility(state) {
      doc.visibilityState = state;
      doc.dispatchEvent(new Event('visibilitychange'));
    },
    pagehide() {
      win.dispatchEvent(new Event('pagehide'));
    },
    setOnline(on) {
      nav.onLine = on;
      win.dispatchEvent(new Event(on ? 'online' : 'offline'));
    },
    uninstall() {
      delete globalThis.window;
    },
  };
}

export async function waitFor(cond, timeout = 4000, what = 'condition') {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeout) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
