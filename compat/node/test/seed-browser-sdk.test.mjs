// The Seed browser SDK's wire shape, sent as raw HTTP. No package of that SDK
// exists on npm, so this test sends exactly what it sends, by hand:
//   POST /events/batch and /events/track (no /v1), X-API-Key header,
//   {events: [{type, properties, …}]}; on unload a beacon whose body is
//   {events, apiKey} with Content-Type: text/plain; $identify carrying
//   properties.traits; amounts computed in floating point (19.99 * 100 =
//   1999.0000000000002) that Boost takes as 1999; zone-less ISO times
//   ("2026-11-28T10:00:00") taken as UTC.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { boostEnv, runId, waitStoredOnce, assertUser, assertNotStored, assertNear } from '../lib/boost.mjs';
import { once } from './segment-like.mjs';

const env = boostEnv();
const skip = env.skip;
const NAME = 'seed-browser-sdk (raw HTTP)';

async function post(path, { key, body, contentType = 'application/json' }) {
  const res = await fetch(`${env.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': contentType, ...(key ? { 'x-api-key': key } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { path, status: res.status, text: (await res.text()).trim() };
}

const sent = once(async () => {
  const id = runId();
  const ids = { user: `seed-${id}-user`, anon: `seed-${id}-anon`, pkUser: `seed-${id}-pk` };
  const now = () => new Date().toISOString();
  const ev = (type, properties, extra = {}) => ({ type, properties, userId: ids.user, anonymousId: ids.anon, messageId: randomUUID(), timestamp: now(), ...extra });
  const items = {
    view: ev('page_view', { path: '/shop', title: 'Shop' }),
    click: ev('click', { element: 'buy-button' }),
    zoneless: ev('cart_update', { items: 3 }, { timestamp: '2026-11-28T10:00:00' }),
    identify: ev('$identify', { traits: { email: `${id}@example.com`, plan: 'pro' } }),
    single: ev('search', { query: 'mug' }),
    beacon: ev('page_leave', { path: '/shop' }),
    purchase: ev('purchase', { orderId: `ord-${id}`, amount: 19.99 * 100, currency: 'EUR' }),
    pkGood1: ev('add_to_cart', { sku: 'sku-1' }, { userId: ids.pkUser, anonymousId: undefined }),
    pkPurchase: ev('purchase', { orderId: `pk-${id}`, amount: 500, currency: 'EUR' }, { userId: ids.pkUser, anonymousId: undefined }),
    pkGood2: ev('add_to_cart', { sku: 'sku-2' }, { userId: ids.pkUser, anonymousId: undefined }),
  };
  const answers = [
    await post('/events/batch', { key: env.pk, body: { events: [items.view, items.click, items.zoneless, items.identify] } }),
    await post('/events/track', { key: env.pk, body: items.single }),
    await post('/events/batch', { contentType: 'text/plain;charset=UTF-8', body: { events: [items.beacon], apiKey: env.pk } }),
    await post('/events/batch', { key: env.sk, body: { events: [items.purchase] } }),
    await post('/events/batch', { key: env.pk, body: { events: [items.pkGood1, items.pkPurchase, items.pkGood2] } }),
  ];
  return { ids, items, answers };
});

/** Fails at once with what Boost answered when the request was refused. */
function accepted(s, path, i) {
  const a = s.answers[i];
  assert.ok(a.status >= 200 && a.status < 300, `POST ${path} answered ${a.status} ${a.text.slice(0, 200)}`);
}

const stored = (s, item) => waitStoredOnce(env, { userId: item.userId }, [{ key: item.type, match: (e) => e.messageId === item.messageId }]);

test(`${NAME}: POST /events/batch with X-API-Key stores each event once with its type, ids and properties`, { skip }, async () => {
  const s = await sent();
  accepted(s, '/events/batch', 0);
  for (const item of [s.items.view, s.items.click]) {
    const [e] = await stored(s, item);
    assert.equal(e.event, item.type);
    assert.equal(e.anonymousId, s.ids.anon);
    assert.deepEqual(e.properties, item.properties);
    assertNear(e.occurredAt, item.timestamp, `${item.type}: occurredAt`);
  }
});

test(`${NAME}: a zone-less ISO time (2026-11-28T10:00:00) is taken as UTC`, { skip }, async () => {
  const s = await sent();
  accepted(s, '/events/batch', 0);
  const [e] = await stored(s, s.items.zoneless);
  assert.equal(new Date(e.occurredAt).toISOString(), '2026-11-28T10:00:00.000Z');
});

test(`${NAME}: $identify with properties.traits merges the traits and links the anonymous id`, { skip }, async () => {
  const s = await sent();
  accepted(s, '/events/batch', 0);
  await assertUser(env, s.ids.user, { traits: s.items.identify.properties.traits, anonymousIds: [s.ids.anon] }, '$identify');
});

test(`${NAME}: POST /events/track stores a single event`, { skip }, async () => {
  const s = await sent();
  accepted(s, '/events/track', 1);
  const [e] = await stored(s, s.items.single);
  assert.deepEqual(e.properties, s.items.single.properties);
});

test(`${NAME}: a beacon (text/plain body {events, apiKey}, no header) is stored`, { skip }, async () => {
  const s = await sent();
  accepted(s, '/events/batch (beacon)', 2);
  await stored(s, s.items.beacon);
});

test(`${NAME}: purchase amount 19.99*100 (1999.0000000000002) accepted as 1999 with the secret key`, { skip }, async () => {
  const s = await sent();
  accepted(s, '/events/batch (secret key, purchase)', 3);
  const [e] = await stored(s, s.items.purchase);
  assert.equal(e.properties.amount, 1999);
  assert.notEqual(e.status, 'failed', `purchase failed: ${JSON.stringify(e.errorDetails ?? e)}`);
});

test(`${NAME}: publishable key: purchase refused, the other events of the same batch stored`, { skip }, async () => {
  const s = await sent();
  accepted(s, '/events/batch (publishable key, mixed)', 4);
  await waitStoredOnce(env, { userId: s.ids.pkUser }, [s.items.pkGood1, s.items.pkGood2].map((i) => ({ key: i.properties.sku, match: (e) => e.messageId === i.messageId })));
  await assertNotStored(env, { userId: s.ids.pkUser }, 'a purchase sent with a publishable key', (e) => e.event === 'purchase');
});
