// Capture scenarios of the three Node libraries: each call flushed on its own
// (one request per call, so each capture shows one call type), then the
// library's default batching, then a retry after an injected 503.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Analytics as SegmentAnalytics } from '@segment/analytics-node';
import RudderAnalytics from '@rudderstack/rudder-sdk-node';
import { PostHog } from 'posthog-node';
import { Steps } from './steps.mjs';

const nodeModules = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'node_modules');
/** The installed version of an npm package (read from its package.json; some packages do not export it). */
export const versionOf = (pkg) => JSON.parse(readFileSync(path.join(nodeModules, pkg, 'package.json'), 'utf8')).version;

export const WRITE_KEY = 'pk_live_capture_write_key';
const HOUR_AGO = () => new Date(Date.now() - 3600_000);
const PRODUCT = { productId: 'sku-123', name: 'Blue mug', price: 12.5, tags: ['kitchen', 'gift'], dims: { h: 10, w: 8 } };
const PURCHASE = { orderId: 'ord-1001', amount: 1999, currency: 'EUR', items: [{ sku: 'sku-123', qty: 2 }] };
const TRAITS = { email: 'ada@example.com', name: 'Ada Lovelace', plan: 'pro', logins: 3 };

/** Calls shared by Segment and RudderStack (same method names and message shapes). */
async function segmentLikeCalls(steps, client, call) {
  await steps.run('track', call(client, 'track', {
    userId: 'user-42',
    anonymousId: 'anon-7f3c',
    event: 'Product Viewed',
    properties: PRODUCT,
    context: { ip: '203.0.113.9', locale: 'en-GB', campaign: { source: 'newsletter' } },
    integrations: { All: true, Mixpanel: false },
  }));
  await steps.run('track purchase', call(client, 'track', { userId: 'user-42', event: 'purchase', properties: PURCHASE }));
  await steps.run('track with timestamp and messageId', call(client, 'track', {
    userId: 'user-42',
    event: 'Cart Viewed',
    properties: { items: 2 },
    timestamp: HOUR_AGO(),
    messageId: 'msg-fixed-0001',
  }), { note: 'timestamp set by the caller (an hour ago) and a caller-chosen messageId' });
  await steps.run('identify', call(client, 'identify', { userId: 'user-42', anonymousId: 'anon-7f3c', traits: TRAITS }));
  await steps.run('page', call(client, 'page', {
    userId: 'user-42',
    category: 'Docs',
    name: 'Pricing',
    properties: { path: '/pricing', referrer: 'https://example.org/' },
  }));
  await steps.run('screen', call(client, 'screen', { userId: 'user-42', name: 'Settings', properties: { tab: 'privacy' } }));
  await steps.run('alias', call(client, 'alias', { userId: 'user-42', previousId: 'anon-7f3c' }));
  await steps.run('group', call(client, 'group', { userId: 'user-42', groupId: 'org-9', traits: { name: 'Acme Inc', employees: 120 } }));
}

/** @segment/analytics-node: flushAt 1; each call's callback fires after delivery. */
export async function segmentNode(rec) {
  const steps = new Steps(rec);
  const call = (client, method, msg) => () =>
    new Promise((resolve, reject) => client[method](msg, (err) => (err ? reject(err) : resolve())));
  const a = new SegmentAnalytics({ writeKey: WRITE_KEY, host: rec.url, flushAt: 1 });
  await segmentLikeCalls(steps, a, call);
  await a.closeAndFlush();

  const b = new SegmentAnalytics({ writeKey: WRITE_KEY, host: rec.url });
  await steps.run('batch of 3 (closeAndFlush)', async () => {
    for (let i = 1; i <= 3; i++) b.track({ anonymousId: 'anon-batch', event: `Batch Event ${i}`, properties: { i } });
    await b.closeAndFlush();
  }, { note: 'three calls queued with the default settings (flushAt 15, flushInterval 10 s), sent by closeAndFlush()' });

  rec.failNext(/\/v1\/batch/, { status: 503 });
  const c = new SegmentAnalytics({ writeKey: WRITE_KEY, host: rec.url, flushAt: 1 });
  await steps.run('retry after 503', call(c, 'track', { userId: 'user-42', event: 'Retried Event' }), {
    expect: 2,
    note: 'the recorder answered the first attempt with 503; the library retried after a backoff',
  });
  await c.closeAndFlush();
  return steps.entries;
}

/** @rudderstack/rudder-sdk-node: flushAt 1; callbacks fire after delivery. */
export async function rudderNode(rec) {
  const steps = new Steps(rec);
  const call = (client, method, msg) => () =>
    new Promise((resolve, reject) => client[method](msg, (err) => (err ? reject(err) : resolve())));
  const a = new RudderAnalytics(WRITE_KEY, { dataPlaneUrl: rec.url, flushAt: 1, logLevel: 'error' });
  await segmentLikeCalls(steps, a, call);
  await a.flush();

  const b = new RudderAnalytics(WRITE_KEY, { dataPlaneUrl: rec.url, logLevel: 'error' });
  await steps.run('batch of 3 (flush)', async () => {
    for (let i = 1; i <= 3; i++) b.track({ anonymousId: 'anon-batch', event: `Batch Event ${i}`, properties: { i } });
    await b.flush();
  }, {
    expect: 2,
    note: 'three calls queued with the default settings (flushAt 20, flushInterval 10 s), then flush().\nThe first call of a client is always sent at once on its own (enqueue() flushes when this.flushed is false).',
  });

  rec.failNext(/\/v1\/batch/, { status: 503 });
  const c = new RudderAnalytics(WRITE_KEY, { dataPlaneUrl: rec.url, flushAt: 1, logLevel: 'error' });
  await steps.run('retry after 503', call(c, 'track', { userId: 'user-42', event: 'Retried Event' }), {
    expect: 2,
    note: 'the recorder answered the first attempt with 503; axios-retry resent the same bytes after a backoff',
  });
  return steps.entries;
}

/** posthog-node: flushAt 1; flush() after each call resolves once the request is answered. */
export async function posthogNode(rec, { captureMode } = {}) {
  const steps = new Steps(rec);
  const saved = process.env.POSTHOG_CAPTURE_MODE;
  if (captureMode) process.env.POSTHOG_CAPTURE_MODE = captureMode;
  const make = (opts = {}) => new PostHog(WRITE_KEY, { host: rec.url, flushAt: 1, flushInterval: 0, ...opts });
  const ph = make();
  const run = (name, fn, opts) => steps.run(name, async () => {
    fn(ph);
    await ph.flush();
  }, opts);
  try {
    await run('capture', (c) => c.capture({ distinctId: 'user-42', event: 'Product Viewed', properties: PRODUCT }));
    await run('capture purchase', (c) => c.capture({ distinctId: 'user-42', event: 'purchase', properties: PURCHASE }));
    await run('capture with timestamp and uuid', (c) => c.capture({
      distinctId: 'user-42',
      event: 'Cart Viewed',
      properties: { items: 2 },
      timestamp: HOUR_AGO(),
      uuid: '0190a3c4-0000-7000-8000-000000000001',
    }), { note: 'timestamp set by the caller (an hour ago) and a caller-chosen uuid' });
    await run('capture with $set and $set_once', (c) => c.capture({
      distinctId: 'user-42',
      event: 'Plan Changed',
      properties: { from: 'free', to: 'pro', $set: { plan: 'pro' }, $set_once: { first_plan: 'free' } },
    }));
    await run('identify ($identify with $anon_distinct_id)', (c) => c.identify({
      distinctId: 'user-42',
      properties: { $set: TRAITS, $set_once: { signup_source: 'ad' }, $anon_distinct_id: 'anon-7f3c' },
    }));
    await run('identify (plain properties)', (c) => c.identify({ distinctId: 'user-43', properties: { email: 'bob@example.com' } }), {
      note: 'properties without $set: the library moves them under $set',
    });
    await run('alias ($create_alias)', (c) => c.alias({ distinctId: 'user-42', alias: 'anon-7f3c' }));
    await run('groupIdentify ($groupidentify)', (c) => c.groupIdentify({ groupType: 'company', groupKey: 'org-9', properties: { name: 'Acme Inc', employees: 120 } }));
    await run('capture with groups', (c) => c.capture({ distinctId: 'user-42', event: 'Report Exported', properties: { format: 'csv' }, groups: { company: 'org-9' } }));
    await ph.shutdown();

    const b = make({ flushAt: 20, flushInterval: 10_000 });
    await steps.run('batch of 3 (shutdown)', async () => {
      for (let i = 1; i <= 3; i++) b.capture({ distinctId: 'anon-batch', event: `Batch Event ${i}`, properties: { i } });
      await b.shutdown();
    }, { note: 'three calls queued (flushAt 20), sent by shutdown()' });

    const path = captureMode === 'v1' ? /\/i\/v1\/analytics\/events/ : /\/batch\//;
    rec.failNext(path, { status: 503 });
    const c = make();
    await steps.run('retry after 503', async () => {
      c.capture({ distinctId: 'user-42', event: 'Retried Event' });
      await c.flush();
    }, { expect: 2, note: 'the recorder answered the first attempt with 503; the library retried after its fetchRetryDelay' });
    await c.shutdown();
  } finally {
    if (captureMode) {
      if (saved === undefined) delete process.env.POSTHOG_CAPTURE_MODE;
      else process.env.POSTHOG_CAPTURE_MODE = saved;
    }
  }
  return steps.entries;
}
