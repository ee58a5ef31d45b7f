import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Gamify, GamifyError, uuidv7, backoffDelay, parseRetryAfter, isTrustedEvent } from '@gamify/node';
import { startFakeBoost, testKeys } from '../../test-support/fake-boost.mjs';

const UUIDV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

let server;
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
  server.maxBodyBytes = 512 * 1024;
  server.maxConcurrent = 0;
});

/** A client against the fake server that records errors and deliveries. */
function client(opts = {}) {
  const errors = [];
  const delivered = [];
  const g = new Gamify({
    apiKey: server.secretKey,
    endpoint: server.url,
    flushAt: 1000,
    flushInterval: 0,
    retryBaseDelay: 5,
    maxRetryDelay: 20,
    onError: (e) => errors.push(e),
    onDelivered: (d) => delivered.push(...d),
    ...opts,
  });
  return { g, errors, delivered };
}

describe('key discipline', () => {
  test('refuses a publishable key with a clear error', () => {
    assert.throws(
      () => new Gamify({ apiKey: testKeys.publishable() }),
      (err) => err instanceof GamifyError && err.code === 'publishable_key_on_server' && /secret key/.test(err.message),
    );
  });
  test('refuses a malformed or missing key', () => {
    assert.throws(() => new Gamify({ apiKey: 'sk_live_nothex' }), /does not look like a Boost secret key/);
    assert.throws(() => new Gamify({}), /needs apiKey/);
  });
  test('the error message does not echo the whole key', () => {
    const key = testKeys.publishable();
    try {
      new Gamify({ apiKey: key });
      assert.fail('should throw');
    } catch (err) {
      assert.ok(!err.message.includes(key));
    }
  });
  test('accepts a secret key', () => {
    const g = new Gamify({ apiKey: testKeys.secret(), flushInterval: 0 });
    assert.equal(g.queueSize, 0);
  });
});

describe('delivery', () => {
  test('track → flush sends one batch with messageId, timestamp, sentAt and x-api-key', async () => {
    const { g, errors, delivered } = client();
    const ids = [
      g.track({ userId: 'u1', event: 'lesson_finished', properties: { lesson: 3 } }),
      g.track({ anonymousId: 'a1', event: 'page_view', properties: { path: '/' } }),
      g.identify({ userId: 'u1', traits: { plan: 'pro' }, anonymousId: 'a1' }),
    ];
    for (const id of ids) assert.match(id, UUIDV7);
    assert.equal(g.queueSize, 3);
    await g.flush();
    assert.equal(g.queueSize, 0);
    assert.deepEqual(errors, []);
    assert.equal(server.requests.length, 1);
    const req = server.requests[0];
    assert.equal(req.headers['x-api-key'], server.secretKey);
    assert.match(req.headers['content-type'], /application\/json/);
    assert.match(req.headers['user-agent'], /^gamify-node\//);
    assert.match(req.body.sentAt, ISO_MS);
    assert.equal(req.body.writeKey, undefined);
    assert.deepEqual(req.body.batch.map((i) => i.messageId), ids);
    for (const item of req.body.batch) assert.match(item.timestamp, ISO_MS);
    assert.deepEqual(req.body.batch[2], {
      event: '$identify',
      userId: 'u1',
      anonymousId: 'a1',
      properties: { plan: 'pro' },
      timestamp: req.body.batch[2].timestamp,
      messageId: ids[2],
    });
    assert.deepEqual(delivered.map((d) => d.messageId), ids);
    for (const d of delivered) assert.ok(server.events.has(d.id));
  });

  test('properties are copied at track time', async () => {
    const { g } = client();
    const props = { n: 1 };
    g.track({ userId: 'u', event: 'e', properties: props });
    props.n = 2;
    await g.flush();
    assert.equal(server.sentItems()[0].properties.n, 1);
  });

  test('explicit timestamp is kept', async () => {
    const { g } = client();
    g.track({ userId: 'u', event: 'e', timestamp: new Date('2024-01-02T03:04:05.006Z') });
    await g.flush();
    assert.equal(server.sentItems()[0].timestamp, '2024-01-02T03:04:05.006Z');
  });

  test('flushAt triggers a flush by size', async () => {
    const { g, delivered } = client({ flushAt: 3 });
    g.track({ userId: 'u', event: 'a' });
    g.track({ userId: 'u', event: 'b' });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(server.requests.length, 0);
    g.track({ userId: 'u', event: 'c' });
    await waitFor(() => delivered.length === 3);
    assert.equal(server.requests.length, 1);
  });

  test('flushInterval triggers a flush by time', async () => {
    const { g, delivered } = client({ flushInterval: 30 });
    g.track({ userId: 'u', event: 'a' });
    await waitFor(() => delivered.length === 1);
    await g.close();
  });

  test('batches respect maxBatchSize', async () => {
    const { g, delivered } = client({ maxBatchSize: 4 });
    for (let i = 0; i < 10; i++) g.track({ userId: 'u', event: `e${i}` });
    await g.flush();
    assert.deepEqual(server.requests.map((r) => r.body.batch.length), [4, 4, 2]);
    assert.equal(delivered.length, 10);
  });

  test('one flush in flight at a time, no double sends', async () => {
    const { g, delivered } = client({ flushAt: 5 });
    for (let i = 0; i < 3; i++) server.faults.push({ delayMs: 60 });
    const flushes = [];
    for (let i = 0; i < 40; i++) {
      g.track({ userId: 'u', event: `e${i}` }); // every 5th track triggers a flush
      if (i % 7 === 0) flushes.push(g.flush());
    }
    await Promise.all(flushes);
    await g.flush();
    assert.equal(server.maxConcurrent, 1);
    const sent = server.sentItems().map((i) => i.messageId);
    assert.equal(sent.length, 40, 'each event sent exactly once');
    assert.equal(new Set(sent).size, 40);
    assert.equal(delivered.length, 40);
  });

  test('flush() while a flush runs resolves after the follow-up flush', async () => {
    const { g, delivered } = client();
    server.faults.push({ delayMs: 80 });
    g.track({ userId: 'u', event: 'first' });
    const p1 = g.flush();
    await new Promise((r) => setTimeout(r, 10));
    g.track({ userId: 'u', event: 'second' });
    const p2 = g.flush();
    const p3 = g.flush();
    assert.equal(p2, p3, 'calls during a flush share one follow-up');
    await p2;
    await p1;
    assert.deepEqual(delivered.map((d) => d.event), ['first', 'second']);
  });
});

describe('retries', () => {
  test('5xx then success: same messageIds resent, stored once', async () => {
    const { g, errors, delivered } = client();
    server.faults.push({ status: 503 }, { status: 500 });
    const id = g.track({ userId: 'u', event: 'e' });
    await g.flush();
    assert.equal(server.requests.length, 3);
    assert.deepEqual(server.requests.map((r) => r.body.batch[0].messageId), [id, id, id]);
    assert.deepEqual(errors, []);
    assert.equal(delivered.length, 1);
    assert.equal(server.events.size, 1);
  });

  test('network error (connection reset) is retried; the event is stored once', async () => {
    const { g, errors, delivered } = client();
    server.faults.push({ network: true });
    const id = g.track({ userId: 'u', event: 'e' });
    await g.flush();
    assert.deepEqual(errors, []);
    assert.equal(delivered[0].messageId, id);
    assert.equal(server.events.size, 1);
  });

  test('a request that times out is retried with the same messageId', async () => {
    const { g, errors, delivered } = client({ requestTimeout: 50 });
    server.faults.push({ delayMs: 300 });
    const id = g.track({ userId: 'u', event: 'e' });
    await g.flush();
    assert.deepEqual(errors, []);
    assert.equal(delivered[0].messageId, id);
    assert.ok(server.requests.length >= 2);
  });

  test('429 honours Retry-After (seconds)', async () => {
    const { g, errors, delivered } = client({ retryBaseDelay: 0, maxRetryDelay: 0 });
    server.faults.push({ status: 429, retryAfter: 1 });
    g.track({ userId: 'u', event: 'e' });
    const t0 = Date.now();
    await g.flush();
    const elapsed = Date.now() - t0;
    assert.ok(elapsed >= 950, `waited ${elapsed} ms`);
    assert.deepEqual(errors, []);
    assert.equal(delivered.length, 1);
  });

  test('503 with Retry-After is honoured too', async () => {
    const { g, delivered } = client({ retryBaseDelay: 0, maxRetryDelay: 0 });
    server.faults.push({ status: 503, retryAfter: 1 });
    g.track({ userId: 'u', event: 'e' });
    const t0 = Date.now();
    await g.flush();
    assert.ok(Date.now() - t0 >= 950);
    assert.equal(delivered.length, 1);
  });

  test('maxRetryAfter caps a huge Retry-After', async () => {
    const { g, delivered } = client({ maxRetryAfter: 20 });
    server.faults.push({ status: 429, retryAfter: 3600 });
    g.track({ userId: 'u', event: 'e' });
    const t0 = Date.now();
    await g.flush();
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(delivered.length, 1);
  });

  test('attempts are capped: maxRetries exhausted drops and reports messageIds', async () => {
    const { g, errors } = client({ maxRetries: 2 });
    for (let i = 0; i < 5; i++) server.faults.push({ status: 503 });
    const id = g.track({ userId: 'u', event: 'e' });
    await g.flush();
    assert.equal(server.requests.length, 3, '1 attempt + 2 retries');
    assert.equal(g.queueSize, 0);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].code, 'retries_exhausted');
    assert.equal(errors[0].status, 503);
    assert.deepEqual(errors[0].messageIds, [id]);
  });

  test('retrying is bounded in time: a wait past maxRetryTime is not started', async () => {
    const { g, errors } = client({ maxRetryTime: 300 });
    server.faults.push({ status: 503, retryAfter: 2 });
    const id = g.track({ userId: 'u', event: 'e' });
    const t0 = Date.now();
    await g.flush();
    assert.ok(Date.now() - t0 < 1000, 'did not wait the 2 s Retry-After');
    assert.equal(server.requests.length, 1);
    assert.equal(errors[0].code, 'retries_exhausted');
    assert.match(errors[0].message, /maxRetryTime/);
    assert.deepEqual(errors[0].messageIds, [id]);
  });

  test('backoff is exponential with full jitter and a cap', () => {
    assert.equal(backoffDelay(1, 100, 10_000, () => 0.999), 99);
    assert.equal(backoffDelay(3, 100, 10_000, () => 0.5), 200);
    assert.equal(backoffDelay(20, 100, 1000, () => 0.999), 999);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(4, 100, 10_000);
      assert.ok(d >= 0 && d < 800);
    }
  });

  test('Retry-After parsing', () => {
    assert.equal(parseRetryAfter('2'), 2000);
    assert.equal(parseRetryAfter(null), undefined);
    assert.equal(parseRetryAfter('soon'), undefined);
    const now = Date.now();
    const d = parseRetryAfter(new Date(now + 5000).toUTCString(), now);
    assert.ok(d > 3000 && d <= 5000);
  });
});

describe('rejections', () => {
  test('a per-item rejection drops only that event (202 partial)', async () => {
    const { g, errors, delivered } = client();
    server.validate = (item) => (item.properties?.bad ? { code: 'invalid_request', field: 'properties.bad', message: 'no bad' } : null);
    const ok1 = g.track({ userId: 'u', event: 'ok1' });
    const bad = g.track({ userId: 'u', event: 'nope', properties: { bad: true } });
    const ok2 = g.track({ userId: 'u', event: 'ok2' });
    await g.flush();
    assert.equal(server.requests.length, 1, 'not retried');
    assert.deepEqual(delivered.map((d) => d.messageId), [ok1, ok2]);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].code, 'rejected');
    assert.deepEqual(errors[0].messageIds, [bad]);
    assert.deepEqual(errors[0].rejected, [
      { index: 1, messageId: bad, event: 'nope', code: 'invalid_request', field: 'properties.bad', message: 'no bad' },
    ]);
    assert.equal(g.queueSize, 0);
  });

  test('400 invalid_batch: every item dropped and reported, not retried', async () => {
    const { g, errors } = client();
    server.validate = () => ({ code: 'invalid_request', field: 'event', message: 'nope' });
    const ids = [g.track({ userId: 'u', event: 'a' }), g.track({ userId: 'u', event: 'b' })];
    await g.flush();
    assert.equal(server.requests.length, 1);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].code, 'invalid_batch');
    assert.equal(errors[0].status, 400);
    assert.deepEqual(errors[0].messageIds, ids);
    assert.equal(errors[0].rejected.length, 2);
    assert.equal(g.queueSize, 0);
  });

  test('401 (revoked key) is not retried and is reported', async () => {
    const { g, errors } = client();
    server.revoked.add(server.secretKey);
    try {
      const id = g.track({ userId: 'u', event: 'a' });
      await g.flush();
      assert.equal(server.requests.length, 1);
      assert.equal(errors[0].code, 'unauthorized');
      assert.equal(errors[0].status, 401);
      assert.deepEqual(errors[0].messageIds, [id]);
    } finally {
      server.revoked.clear();
    }
  });

  test('403 is not retried', async () => {
    const { g, errors } = client();
    server.faults.push({ status: 403 });
    g.track({ userId: 'u', event: 'a' });
    await g.flush();
    assert.equal(server.requests.length, 1);
    assert.equal(errors[0].code, 'forbidden');
  });

  test('400 without per-item results (malformed request) is dropped, not retried', async () => {
    const { g, errors } = client();
    server.faults.push({ status: 400 });
    g.track({ userId: 'u', event: 'a' });
    await g.flush();
    assert.equal(server.requests.length, 1);
    assert.equal(errors[0].code, 'bad_request');
  });

  test('413 splits the batch in two until it fits; a single too-large event is dropped', async () => {
    const { g, errors, delivered } = client();
    server.maxBodyBytes = 3000;
    const small = [];
    for (let i = 0; i < 12; i++) small.push(g.track({ userId: 'u', event: `e${i}`, properties: { pad: 'x'.repeat(150) } }));
    const big = g.track({ userId: 'u', event: 'big', properties: { pad: 'y'.repeat(5000) } });
    await g.flush();
    assert.ok(server.requests.some((r) => r.status === 413));
    assert.deepEqual(new Set(delivered.map((d) => d.messageId)), new Set(small));
    assert.equal(server.events.size, 12);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].code, 'too_large');
    assert.deepEqual(errors[0].messageIds, [big]);
    assert.equal(g.queueSize, 0);
  });
});

describe('queue bounds', () => {
  test('maxQueueSize: new events beyond it are dropped and reported', async () => {
    const { g, errors, delivered } = client({ maxQueueSize: 3 });
    const ids = [1, 2, 3, 4].map((i) => g.track({ userId: 'u', event: `e${i}` }));
    assert.equal(g.queueSize, 3);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].code, 'queue_full');
    assert.deepEqual(errors[0].messageIds, [ids[3]]);
    await g.flush();
    assert.equal(delivered.length, 3);
  });
});

describe('validation', () => {
  test('track needs an event and a userId or anonymousId', () => {
    const { g } = client();
    assert.throws(() => g.track({ event: 'x' }), /needs a userId or an anonymousId/);
    assert.throws(() => g.track({ userId: 'u', event: '' }), (e) => e.code === 'invalid_event');
    assert.throws(() => g.track({ userId: 'u', event: 'x'.repeat(256) }), /at most 255/);
    assert.throws(() => g.track({ userId: 'u'.repeat(256), event: 'x' }), /userId must be at most 255/);
    assert.throws(() => g.track({ userId: 'u', event: 'x', properties: [1] }), /plain JSON object/);
    assert.throws(() => g.track({ userId: 'u', event: 'x', properties: { s: 'z'.repeat(33 * 1024) } }), /limit is 32768/);
    assert.equal(typeof g.track({ userId: 'é'.repeat(255), event: 'x' }), 'string', 'ids are limited in characters, like the server');
    assert.throws(() => g.track({ userId: 'é'.repeat(256), event: 'x' }), /userId must be at most 255 characters/);
    let deep = { leaf: 1 };
    for (let i = 0; i < 32; i++) deep = { d: deep };
    assert.throws(() => g.track({ userId: 'u', event: 'x', properties: deep }), /32 levels/);
    assert.equal(typeof g.track({ userId: 'u', event: 'x', properties: deep.d }), 'string', '32 levels are fine');
    const cyclic = {};
    cyclic.self = cyclic;
    assert.throws(() => g.track({ userId: 'u', event: 'x', properties: cyclic }), /cannot be serialized/);
    assert.equal(g.queueSize, 2, 'only the valid events were queued');
  });

  test('purchase validates orderId, integer cents and currency; upper-cases currency', async () => {
    const { g, errors } = client();
    assert.throws(() => g.purchase({ userId: 'u', orderId: 'o1', amount: 9.99, currency: 'USD' }), /integer number of cents/);
    assert.throws(() => g.purchase({ userId: 'u', orderId: 'o1', amount: -1, currency: 'USD' }), /amount/);
    assert.throws(() => g.purchase({ userId: 'u', orderId: '', amount: 1, currency: 'USD' }), /orderId/);
    assert.throws(() => g.purchase({ userId: 'u', orderId: 'o1', amount: 1, currency: 'US' }), /currency/);
    // track() with a commerce event name gets the same check, whatever the case/whitespace
    assert.throws(() => g.track({ userId: 'u', event: ' Checkout_Success ', properties: { orderId: 'o' } }), /amount/);
    g.purchase({ userId: 'u', orderId: 'o1', amount: 1999, currency: 'usd', items: [{ sku: 'a', qty: 1 }], properties: { coupon: 'X' } });
    g.checkoutComplete({ userId: 'u', orderId: 'o2', amount: 0, currency: 'EUR' });
    g.referralSuccess({ userId: 'u', referredUserId: 'u2', referralCode: 'ABC' });
    await g.flush();
    assert.deepEqual(errors, []);
    const items = server.sentItems();
    assert.deepEqual(items.map((i) => i.event), ['purchase', 'checkout_complete', 'referral_success']);
    assert.deepEqual(items[0].properties, { coupon: 'X', orderId: 'o1', amount: 1999, currency: 'USD', items: [{ sku: 'a', qty: 1 }] });
    assert.deepEqual(items[2].properties, { referredUserId: 'u2', referralCode: 'ABC' });
    assert.equal(server.events.size, 3, 'trusted events accepted with the secret key');
  });

  test('trusted event names are matched case-insensitively after trimming', () => {
    assert.ok(isTrustedEvent(' PURCHASE '));
    assert.ok(isTrustedEvent('Quest.Completed'));
    assert.ok(!isTrustedEvent('purchased'));
  });
});

describe('close', () => {
  test('close() flushes what is left and refuses new events', async () => {
    const { g, delivered } = client({ flushInterval: 60_000 });
    g.track({ userId: 'u', event: 'a' });
    g.track({ userId: 'u', event: 'b' });
    await g.close();
    assert.equal(delivered.length, 2);
    assert.throws(() => g.track({ userId: 'u', event: 'c' }), (e) => e.code === 'closed');
    assert.equal(g.close(), g.close(), 'close is idempotent');
  });

  test('close({ timeout }) gives up and reports what it dropped', async () => {
    const { g, errors } = client({ retryBaseDelay: 1000, maxRetryDelay: 1000, random: undefined });
    for (let i = 0; i < 20; i++) server.faults.push({ status: 503, retryAfter: 5 });
    const id = g.track({ userId: 'u', event: 'a' });
    const t0 = Date.now();
    await g.close({ timeout: 200 });
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(errors.at(-1).code, 'shutdown_timeout');
    assert.deepEqual(errors.at(-1).messageIds, [id]);
  });
});

describe('ids and packaging', () => {
  test('uuidv7 is well-formed, unique and time-ordered', () => {
    const ids = Array.from({ length: 2000 }, () => uuidv7());
    for (const id of ids) assert.match(id, UUIDV7);
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual([...ids].sort(), ids);
    const ms = parseInt(ids[0].replace(/-/g, '').slice(0, 12), 16);
    assert.ok(Math.abs(ms - Date.now()) < 5000);
  });

  test('the CommonJS build exposes the same API', () => {
    const require = createRequire(import.meta.url);
    const cjs = require('@gamify/node');
    assert.equal(typeof cjs.Gamify, 'function');
    assert.throws(() => new cjs.Gamify({ apiKey: testKeys.publishable() }), /publishable key/);
  });
});

async function waitFor(cond, timeout = 3000) {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeout) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}
