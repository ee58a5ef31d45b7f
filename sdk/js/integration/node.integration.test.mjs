// Integration test of @gamify/node against a real Boost server.
//
//   BOOST_URL=http://localhost:3000 BOOST_SECRET_KEY=sk_live_… BOOST_PROJECT_ID=… \
//   BOOST_ADMIN_TOKEN=… [BOOST_PUBLISHABLE_KEY=pk_live_…] npm run test:integration
//
// Sends 50 events (tracks, identifies, purchases, checkouts, referrals and
// other trusted events) in several batches, flushes, then reads each one
// back through the admin API and checks it arrived exactly once, was
// processed, and has exactly the properties sent. Finally resends a few items with the same messageIds and
// checks the server answers with the same ids (dedupe).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Gamify } from '@gamify/node';

const ENV = ['BOOST_URL', 'BOOST_SECRET_KEY', 'BOOST_PROJECT_ID', 'BOOST_ADMIN_TOKEN'];
const missing = ENV.filter((k) => !process.env[k]);
const skip = missing.length ? `set ${missing.join(', ')} to run the integration test (e.g. from \`go run ./cmd/boost dev\`)` : false;
if (skip) console.log(`# SKIP node integration: ${skip}`);

async function waitFor(what, cond, timeout = 60_000, interval = 250) {
  const t0 = Date.now();
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() - t0 > timeout) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

test('@gamify/node: 50 events delivered and stored exactly once', { skip, timeout: 300_000 }, async (t) => {
  const BOOST_URL = process.env.BOOST_URL.replace(/\/+$/, '');
  const PROJECT = process.env.BOOST_PROJECT_ID;
  const ADMIN = process.env.BOOST_ADMIN_TOKEN;
  const runId = randomUUID();

  if (process.env.BOOST_PUBLISHABLE_KEY) {
    assert.throws(() => new Gamify({ apiKey: process.env.BOOST_PUBLISHABLE_KEY, endpoint: BOOST_URL }), (e) => e.code === 'publishable_key_on_server');
  }

  const errors = [];
  const serverIds = new Map(); // messageId -> Set(server id)
  const gamify = new Gamify({
    apiKey: process.env.BOOST_SECRET_KEY,
    endpoint: BOOST_URL,
    flushAt: 20,
    flushInterval: 1000,
    onError: (e) => errors.push(e),
    onDelivered: (events) => {
      for (const d of events) {
        if (!serverIds.has(d.messageId)) serverIds.set(d.messageId, new Set());
        serverIds.get(d.messageId).add(d.id);
      }
    },
  });

  const expected = new Map(); // messageId -> { event, userId, anonymousId, properties }
  const add = (messageId, event, userId, anonymousId, properties) =>
    expected.set(messageId, { event, userId, anonymousId, properties });
  const user = (i) => `it-${runId}-u${i % 5}`;

  for (let i = 0; i < 25; i++) {
    const properties = { runId, i, lesson: `l${i}`, nested: { ok: true, list: [i, 'x'] } };
    const anonymousId = i % 4 === 0 ? `it-${runId}-anon${i}` : undefined;
    const userId = anonymousId ? undefined : user(i);
    add(gamify.track({ userId, anonymousId, event: 'lesson_finished', properties }), 'lesson_finished', userId, anonymousId, properties);
  }
  for (let i = 0; i < 5; i++) {
    const traits = { runId, plan: i % 2 ? 'pro' : 'free' };
    add(gamify.identify({ userId: user(i), traits, anonymousId: `it-${runId}-anon${i * 4}` }), '$identify', user(i), `it-${runId}-anon${i * 4}`, traits);
  }
  for (let i = 0; i < 10; i++) {
    const p = { userId: user(i), orderId: `it-${runId}-o${i}`, amount: 1000 + i, currency: 'usd', items: [{ sku: `sku${i}`, qty: 1 }], properties: { runId } };
    add(gamify.purchase(p), 'purchase', p.userId, undefined, { runId, orderId: p.orderId, amount: p.amount, currency: 'USD', items: p.items });
  }
  for (let i = 0; i < 4; i++) {
    const p = { userId: user(i), orderId: `it-${runId}-c${i}`, amount: 500 * i, currency: 'EUR' };
    add(gamify.checkoutComplete(p), 'checkout_complete', p.userId, undefined, { orderId: p.orderId, amount: p.amount, currency: 'EUR' });
  }
  for (let i = 0; i < 3; i++) {
    const p = { userId: user(i), referredUserId: `it-${runId}-ref${i}`, referralCode: `CODE${i}` };
    add(gamify.referralSuccess(p), 'referral_success', p.userId, undefined, { referredUserId: p.referredUserId, referralCode: p.referralCode });
  }
  for (const [i, event] of ['step.completed', 'quest.completed', 'user.leveled_up'].entries()) {
    const properties = { runId, level: i + 2 };
    add(gamify.track({ userId: user(i), event, properties }), event, user(i), undefined, properties);
  }
  assert.equal(expected.size, 50);

  await gamify.flush();
  await gamify.close();
  assert.deepEqual(errors.map((e) => `${e.code}: ${e.message}`), [], 'no event was rejected or dropped');
  assert.equal(gamify.queueSize, 0);

  const idOf = new Map();
  for (const messageId of expected.keys()) {
    const ids = serverIds.get(messageId);
    assert.ok(ids, `no server id for ${messageId}`);
    assert.equal(ids.size, 1);
    idOf.set(messageId, [...ids][0]);
  }
  assert.equal(new Set(idOf.values()).size, 50, '50 distinct server ids');

  // Polls until the event is stored and the processor has recorded its
  // outcome (pending -> processed or failed).
  const read = async (id) =>
    waitFor(`event ${id} processed`, async () => {
      const res = await fetch(`${BOOST_URL}/v1/projects/${encodeURIComponent(PROJECT)}/events/${encodeURIComponent(id)}`, {
        headers: { authorization: `Bearer ${ADMIN}` },
      });
      if (res.status === 200) {
        const ev = await res.json();
        return ev.status === 'pending' ? null : ev;
      }
      if (res.status !== 404) t.diagnostic(`GET ${id}: HTTP ${res.status}`);
      return null;
    });
  const queue = [...idOf];
  const seen = [];
  await Promise.all(
    Array.from({ length: 5 }, async () => {
      while (queue.length) {
        const [messageId, id] = queue.shift();
        seen.push([messageId, await read(id)]);
      }
    }),
  );
  for (const [messageId, ev] of seen) {
    const want = expected.get(messageId);
    assert.equal(ev.id, idOf.get(messageId));
    assert.equal(ev.event, want.event);
    assert.equal(ev.status, 'processed', `${want.event} ${messageId}: status ${ev.status} ${ev.errorDetails ?? ''}`);
    assert.equal(ev.userId, want.userId);
    if (want.anonymousId) assert.equal(ev.anonymousId, want.anonymousId);
    assert.equal(ev.messageId, messageId);
    assert.deepEqual(ev.properties, want.properties, `${want.event} ${messageId}: properties as stored`);
  }

  // Idempotency: resending items with the same messageIds yields the same ids.
  const resend = [...expected.entries()].slice(0, 5).map(([messageId, w]) => ({
    event: w.event,
    ...(w.userId ? { userId: w.userId } : {}),
    ...(w.anonymousId ? { anonymousId: w.anonymousId } : {}),
    properties: w.properties,
    timestamp: new Date().toISOString(),
    messageId,
  }));
  const res = await fetch(`${BOOST_URL}/v1/events/batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': process.env.BOOST_SECRET_KEY },
    body: JSON.stringify({ batch: resend, sentAt: new Date().toISOString() }),
  });
  assert.equal(res.status, 202);
  const body = await res.json();
  for (const a of body.accepted) assert.equal(a.id, idOf.get(resend[a.index].messageId), 'a resend maps to the same stored event');
  t.diagnostic(`run ${runId}: 50 events read back exactly once`);
});
