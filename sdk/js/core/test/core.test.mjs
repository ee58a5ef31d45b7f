import { test, describe, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { startFakeBoost, testKeys } from '../../test-support/fake-boost.mjs';
import { installBrowser, MemoryStorage, waitFor } from '../../test-support/browser-env.mjs';

const UUIDV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

let server;
let env;
let clients = [];
let core;

before(async () => {
  server = await startFakeBoost();
});
after(async () => {
  await server.close();
});
beforeEach(() => {
  server.requests.length = 0;
  server.faults.length = 0;
  server.events.clear();
  server.receipts.clear();
  server.validate = null;
  server.maxConcurrent = 0;
});
afterEach(async () => {
  for (const c of clients) await c.g.shutdown().catch(() => {});
  clients = [];
  env?.uninstall();
  env = undefined;
});

async function load() {
  core ??= await import('@gamify/core');
  return core;
}

/** A browser client against the fake server, recording errors and deliveries. */
async function client(opts = {}) {
  const { Gamify } = await load();
  const errors = [];
  const delivered = [];
  const g = new Gamify({
    apiKey: server.publishableKey,
    endpoint: server.url,
    flushAt: 1000,
    flushInterval: 0,
    retryBaseDelay: 5,
    maxRetryDelay: 20,
    onError: (e) => errors.push(e),
    onDelivered: (d) => delivered.push(...d),
    ...opts,
  });
  const c = { g, errors, delivered };
  clients.push(c);
  return c;
}

describe('SSR safety', () => {
  test('importing and constructing without window touches no browser global', async () => {
    assert.equal(typeof globalThis.window, 'undefined');
    const traps = ['document', 'localStorage', 'sessionStorage', 'location', 'navigator'];
    const saved = traps.map((k) => [k, Object.getOwnPropertyDescriptor(globalThis, k)]);
    for (const k of traps) {
      Object.defineProperty(globalThis, k, {
        configurable: true,
        get() {
          throw new Error(`SSR: touched ${k}`);
        },
      });
    }
    try {
      const { Gamify } = await import(import.meta.resolve('@gamify/core') + '?ssr');
      const g = new Gamify({ apiKey: server.publishableKey, endpoint: server.url, flushInterval: 0 });
      assert.match(g.anonymousId, UUIDV7);
      g.track('rendered', { on: 'server' });
      assert.equal(g.queueSize, 1);
      assert.equal(g.persistent, false);
    } finally {
      for (const [k, d] of saved) {
        if (d) Object.defineProperty(globalThis, k, d);
        else delete globalThis[k];
      }
    }
  });
});

describe('key discipline', () => {
  test('refuses a secret key: it must never ship in a page', async () => {
    const { Gamify } = await load();
    assert.throws(
      () => new Gamify({ apiKey: testKeys.secret() }),
      (e) => e.code === 'secret_key_in_browser' && /never ship/.test(e.message) && /rotate/.test(e.message),
    );
  });

  test('refuses a malformed key', async () => {
    const { Gamify } = await load();
    assert.throws(() => new Gamify({ apiKey: 'pk_live_123' }), (e) => e.code === 'invalid_config');
  });

  test('refuses trusted events before sending (case-insensitive, trimmed)', async () => {
    env = installBrowser();
    const { g } = await client();
    for (const name of ['purchase', ' Purchase ', 'CHECKOUT_COMPLETE', 'checkout_success', 'commission.created', 'referral_success', 'User.Leveled_Up', 'step.completed', 'quest.completed']) {
      assert.throws(
        () => g.track(name, { orderId: 'o', amount: 1, currency: 'USD' }),
        (e) => e.code === 'trusted_event' && /secret key/.test(e.message),
        name,
      );
    }
    assert.equal(g.queueSize, 0);
    await g.flush();
    assert.equal(server.requests.length, 0);
    // a non-trusted look-alike is fine
    g.track('purchase_button_clicked');
    assert.equal(g.queueSize, 1);
  });
});

describe('events', () => {
  test('track, page and identify produce contract-shaped items', async () => {
    env = installBrowser();
    const { g, delivered, errors } = await client();
    const anon = g.anonymousId;
    assert.match(anon, UUIDV7);
    const t1 = g.track('button_clicked', { button: 'buy' });
    const p1 = g.page();
    const i1 = g.identify('user-42', { plan: 'pro' });
    const t2 = g.track('after_identify');
    await g.flush();
    assert.deepEqual(errors, []);
    const req = server.requests[0];
    assert.equal(req.headers['x-api-key'], server.publishableKey);
    assert.match(req.body.sentAt, ISO_MS);
    const [a, b, c, d] = req.body.batch;
    assert.deepEqual(
      [a.messageId, b.messageId, c.messageId, d.messageId],
      [t1, p1, i1, t2],
    );
    assert.deepEqual(a, { event: 'button_clicked', anonymousId: anon, properties: { button: 'buy' }, timestamp: a.timestamp, messageId: t1 });
    assert.match(a.timestamp, ISO_MS);
    assert.deepEqual(b.properties, { url: 'https://app.example/shop?x=1', path: '/shop', title: 'Test page', referrer: 'https://ref.example/' });
    assert.equal(b.event, 'page_view');
    assert.deepEqual(c, { event: '$identify', userId: 'user-42', anonymousId: anon, properties: { plan: 'pro' }, timestamp: c.timestamp, messageId: i1 });
    assert.equal(d.userId, 'user-42');
    assert.equal(d.anonymousId, anon);
    assert.equal(delivered.length, 4);
  });

  test('page() in a single-page app uses the previous page as referrer; properties override', async () => {
    env = installBrowser();
    const { g } = await client();
    g.page();
    env.window.location = { href: 'https://app.example/cart', pathname: '/cart' };
    g.page({ title: 'Cart', section: 'checkout' });
    await g.flush();
    const second = server.sentItems()[1].properties;
    assert.deepEqual(second, { url: 'https://app.example/cart', path: '/cart', title: 'Cart', referrer: 'https://app.example/shop?x=1', section: 'checkout' });
  });

  test('anonymous id and user id persist in localStorage; reset() starts over', async () => {
    env = installBrowser();
    const { g } = await client();
    const anon = g.anonymousId;
    g.identify('u1');
    const { g: g2 } = await client();
    assert.equal(g2.anonymousId, anon, 'same anonymous id after a reload');
    assert.equal(g2.userId, 'u1');
    g2.reset();
    assert.notEqual(g2.anonymousId, anon);
    assert.equal(g2.userId, undefined);
    const { g: g3 } = await client();
    assert.equal(g3.anonymousId, g2.anonymousId);
    assert.equal(g3.userId, undefined);
  });

  test('invalid input throws a GamifyError and queues nothing', async () => {
    env = installBrowser();
    const { g } = await client();
    const { GamifyError } = await load();
    assert.throws(() => g.track(''), GamifyError);
    assert.throws(() => g.track('x', 'not an object'), /plain JSON object/);
    assert.throws(() => g.identify(''), /userId/);
    assert.equal(g.queueSize, 0);
  });
});

describe('persistence', () => {
  test('the queue survives a reload and is sent by the next page with the same messageIds', async () => {
    env = installBrowser();
    const first = await client({ beacon: false });
    const ids = [first.g.track('a'), first.g.track('b')];
    assert.equal(server.requests.length, 0);
    const keys = [...env.storage.map.keys()];
    assert.ok(keys.some((k) => k.endsWith(':queue')), 'queue written to localStorage');
    // "reload": a new client on the same storage; start() flushes what was persisted
    // (a reload runs no shutdown(): the first client just stops being used)
    const second = await client();
    await waitFor(() => second.delivered.length === 2, 3000, 'persisted events delivered');
    assert.deepEqual(second.delivered.map((d) => d.messageId), ids);
    assert.equal(second.g.queueSize, 0);
  });

  test('falls back to memory when storage throws on write, and reports it', async () => {
    env = installBrowser();
    env.storage.failWrites = true;
    const { g, errors, delivered } = await client();
    g.track('a');
    assert.equal(g.persistent, false);
    assert.equal(errors[0].code, 'storage_unavailable');
    g.track('b');
    await g.flush();
    assert.equal(delivered.length, 2);
  });

  test('storage that starts failing mid-session keeps what was queued', async () => {
    env = installBrowser();
    const { g, delivered, errors } = await client();
    const a = g.track('a');
    env.storage.failReads = true;
    env.storage.failWrites = true;
    const b = g.track('b');
    assert.equal(g.queueSize, 2);
    await g.flush();
    assert.deepEqual(delivered.map((d) => d.messageId), [a, b]);
    assert.deepEqual(errors.map((e) => e.code), ['storage_unavailable']);
  });

  test('falls back to memory when localStorage itself is inaccessible', async () => {
    env = installBrowser({ storageThrows: true });
    const { g, delivered, errors } = await client();
    g.track('a');
    await g.flush();
    assert.equal(delivered.length, 1);
    assert.deepEqual(errors, []);
    assert.equal(g.persistent, false);
  });

  test('a corrupt stored queue is ignored', async () => {
    const storage = new MemoryStorage();
    env = installBrowser({ storage });
    const { g } = await client();
    storage.setItem(`gamify:${server.publishableKey.slice(8, 16)}:queue`, '{not json');
    assert.equal(g.queueSize, 0);
    g.track('a');
    assert.equal(g.queueSize, 1);
  });
});

describe('offline and unload', () => {
  test('offline: flush sends nothing and spends no retries; the online event flushes', async () => {
    env = installBrowser();
    const { g, delivered, errors } = await client({ maxRetries: 0 });
    env.setOnline(false);
    const id = g.track('while_offline');
    await g.flush();
    assert.equal(server.requests.length, 0);
    assert.equal(g.queueSize, 1);
    env.setOnline(true); // dispatches 'online'
    await waitFor(() => delivered.length === 1, 3000, 'delivery after online');
    assert.equal(delivered[0].messageId, id);
    assert.deepEqual(errors, []);
  });

  test('hidden page: sendBeacon with text/plain + writeKey; events stay queued until a fetch confirms them', async () => {
    env = installBrowser();
    const { g, delivered } = await client();
    const ids = [g.track('a'), g.track('b', { n: 1 })];
    env.setVisibility('hidden');
    assert.equal(env.beacons.length, 1);
    const beacon = env.beacons[0];
    assert.equal(beacon.url, `${server.url}/v1/events/batch`);
    const body = JSON.parse(beacon.data);
    assert.equal(body.writeKey, server.publishableKey);
    assert.match(body.sentAt, ISO_MS);
    assert.deepEqual(body.batch.map((i) => i.messageId), ids);
    await waitFor(() => server.events.size === 2, 3000, 'beacon stored');
    const beaconReq = server.requests.find((r) => r.body?.writeKey);
    assert.match(beaconReq.contentType, /^text\/plain/);
    assert.equal(beaconReq.headers['x-api-key'], undefined);
    // pagehide right after: nothing new to beacon
    env.pagehide();
    assert.equal(env.beacons.length, 1);
    assert.equal(g.queueSize, 2, 'beaconed events remain queued');
    // the page comes back; the regular flush resends and is confirmed; stored once
    env.setVisibility('visible');
    await g.flush();
    assert.deepEqual(delivered.map((d) => d.messageId), ids);
    assert.equal(server.events.size, 2);
    assert.deepEqual(ids.map((id) => server.receipts.get(id)), [2, 2]);
    assert.equal(g.queueSize, 0);
  });

  test('falls back to fetch keepalive when sendBeacon refuses', async () => {
    env = installBrowser();
    env.navigator.beaconResult = false;
    const seen = [];
    const { g } = await client({
      fetch: (url, init) => {
        seen.push(init);
        return fetch(url, init);
      },
    });
    g.track('a');
    env.pagehide();
    await waitFor(() => server.events.size === 1, 3000, 'keepalive delivery');
    assert.equal(seen.length, 1, 'the fallback goes through the configured fetch');
    assert.equal(seen[0].keepalive, true);
    assert.equal(seen[0].credentials, 'omit');
    assert.equal(seen[0].headers['x-api-key'], undefined, 'no custom header, so no preflight');
    const req = server.requests.at(-1);
    assert.match(req.contentType, /^text\/plain/);
    assert.equal(req.body.writeKey, server.publishableKey);
  });

  test('shutdown() detaches listeners and flushes', async () => {
    env = installBrowser();
    const { g, delivered } = await client();
    g.track('a');
    await g.shutdown();
    assert.equal(delivered.length, 1);
    g.track('b');
    env.setVisibility('hidden');
    assert.equal(env.beacons.length, 0);
    g.start();
    env.setVisibility('visible');
    env.setVisibility('hidden');
    assert.equal(env.beacons.length, 1);
  });
});

describe('delivery', () => {
  test('one flush in flight; retries reuse messageIds; rejections drop only their event', async () => {
    env = installBrowser();
    const { g, delivered, errors } = await client({ flushAt: 4 });
    server.faults.push({ delayMs: 50 }, { status: 503 }, { delayMs: 30 });
    server.validate = (item) => (item.properties?.bad ? { code: 'invalid_request', field: 'properties.bad', message: 'bad' } : null);
    const ids = [];
    for (let i = 0; i < 20; i++) ids.push(g.track(`e${i}`, i === 7 ? { bad: true } : { i }));
    await g.flush();
    await g.flush();
    assert.equal(server.maxConcurrent, 1);
    assert.equal(delivered.length, 19);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].code, 'rejected');
    assert.deepEqual(errors[0].messageIds, [ids[7]]);
    assert.equal(server.events.size, 19);
    assert.equal(g.queueSize, 0);
  });

  test('network errors while online spend retries (persisted) and then drop with a report', async () => {
    env = installBrowser();
    const { g, errors } = await client({
      maxRetries: 2,
      fetch: () => Promise.reject(new TypeError('Failed to fetch')),
    });
    const id = g.track('a');
    await g.flush();
    assert.equal(errors.length, 1);
    assert.equal(errors[0].code, 'retries_exhausted');
    assert.deepEqual(errors[0].messageIds, [id]);
    assert.match(errors[0].message, /Failed to fetch/);
    assert.equal(g.queueSize, 0);
  });

  test('401 is reported and not retried', async () => {
    env = installBrowser();
    const { g, errors } = await client();
    server.revoked.add(server.publishableKey);
    try {
      g.track('a');
      await g.flush();
      assert.equal(server.requests.length, 1);
      assert.equal(errors[0].code, 'unauthorized');
    } finally {
      server.revoked.clear();
    }
  });

  test('the flush timer sends queued events', async () => {
    env = installBrowser();
    const { g, delivered } = await client({ flushInterval: 30 });
    g.track('a');
    await waitFor(() => delivered.length === 1, 2000, 'timer flush');
  });

  test('maxQueueSize drops new events with a report', async () => {
    env = installBrowser();
    const { g, errors } = await client({ maxQueueSize: 2 });
    g.track('a');
    g.track('b');
    const dropped = g.track('c');
    assert.equal(g.queueSize, 2);
    assert.equal(errors[0].code, 'queue_full');
    assert.deepEqual(errors[0].messageIds, [dropped]);
  });
});

test('the CommonJS build exposes the same API', () => {
  const require = createRequire(import.meta.url);
  const cjs = require('@gamify/core');
  assert.equal(typeof cjs.Gamify, 'function');
  assert.throws(() => new cjs.Gamify({ apiKey: testKeys.secret() }), /secret key/);
});
