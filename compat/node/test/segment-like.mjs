// The checks shared by the Segment and RudderStack Node libraries (same calls,
// same message shapes): each client sends a set of distinct calls to Boost
// (through a recording proxy), then every check reads back what Boost stored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  boostEnv,
  runId,
  startProxy,
  assertSomeDelivered,
  refusals,
  waitStoredOnce,
  assertNotStored,
  assertNear,
  assertIncludes,
  assertUser,
  containsDeep,
  PAGE_EVENT,
  SCREEN_EVENT,
} from '../lib/boost.mjs';

/** Runs `fn` once, the first time the returned function is called. */
export function once(fn) {
  let p;
  return () => (p ??= fn());
}

/** The items of every batch the client sent, by messageId. */
function wireItems(exchanges) {
  const items = new Map();
  for (const x of exchanges) {
    const d = x.decoded;
    for (const item of d?.batch ?? (d && d.type ? [d] : [])) items.set(item.messageId, { ...item, sentAt: item.sentAt ?? d.sentAt });
  }
  return [...items.values()];
}

/**
 * @param {object} c
 * @param {string} c.name           client name in check names
 * @param {(key, host) => object} c.make   a client sending to host with key
 * @param {(client) => Promise} c.close    flushes and waits for delivery
 * @param {string} c.timestampField  the field the library stamps the call's time in
 * @param {boolean} [c.firstCallAlone]  the library sends a client's first call on its own
 */
export function segmentLikeTests(c) {
  const env = boostEnv();
  const skip = env.skip;

  const sent = once(async () => {
    const proxy = await startProxy(env.url);
    const id = runId();
    const ids = {
      user: `${c.name}-${id}-user`,
      anon: `${c.name}-${id}-anon`,
      aliasFrom: `${c.name}-${id}-previous`,
      pkUser: `${c.name}-${id}-pk`,
    };
    const client = c.make(env.sk, proxy.url);
    const tracks = [
      { event: 'Product Viewed', properties: { productId: 'sku-1', price: 12.5, tags: ['a', 'b'] } },
      { event: 'Product Added', properties: { productId: 'sku-1', quantity: 2, options: { color: 'blue' } } },
      { event: 'Search', properties: { query: 'mug', results: 7 } },
      { event: 'Coupon Applied', properties: { code: 'WELCOME', discount: 0.1 } },
    ];
    for (const t of tracks) {
      client.track({
        userId: ids.user,
        anonymousId: ids.anon,
        ...t,
        context: { ip: '203.0.113.9', locale: 'en-GB', campaign: { source: 'newsletter' } },
        integrations: { All: true, Mixpanel: false },
      });
    }
    const past = new Date(Date.now() - 3600_000);
    client.track({ userId: ids.user, event: 'Cart Viewed', properties: { items: 2 }, timestamp: past });
    client.track({ userId: ids.user, event: 'purchase', properties: { orderId: `ord-${id}`, amount: 1999, currency: 'EUR' } });
    const traits = { email: `${id}@example.com`, plan: 'pro', logins: 3 };
    client.identify({ userId: ids.user, anonymousId: ids.anon, traits });
    client.page({ userId: ids.user, category: 'Docs', name: 'Pricing', properties: { path: '/pricing', referrer: 'https://example.org/' } });
    client.screen({ userId: ids.user, name: 'Settings', properties: { tab: 'privacy' } });
    client.alias({ userId: ids.user, previousId: ids.aliasFrom });
    client.group({ userId: ids.user, groupId: `org-${id}`, traits: { name: 'Acme Inc', employees: 120 } });
    await c.close(client);

    // A publishable key: purchase is refused, the other items of the batch are kept.
    const pk = c.make(env.pk, proxy.url);
    if (c.firstCallAlone) pk.track({ userId: ids.pkUser, event: 'Warm Up' });
    pk.track({ userId: ids.pkUser, event: 'Good Before', properties: { n: 1 } });
    pk.track({ userId: ids.pkUser, event: 'purchase', properties: { orderId: `pk-${id}`, amount: 500, currency: 'EUR' } });
    pk.track({ userId: ids.pkUser, event: 'Good After', properties: { n: 2 } });
    await c.close(pk);
    await proxy.close();
    const wire = wireItems(proxy.exchanges);
    const find = (pred, what) => {
      const w = wire.find(pred);
      assert.ok(w, `${what}: the client did not send it (${proxy.exchanges.length} requests)`);
      return w;
    };
    return { proxy, ids, tracks, traits, past, wire, find };
  });

  const delivered = async () => {
    const s = await sent();
    assertSomeDelivered(s.proxy.exchanges, c.name);
    return s;
  };

  test(`${c.name}: every request answered 2xx`, { skip }, async () => {
    const s = await sent();
    const bad = refusals(s.proxy.exchanges);
    assert.ok(bad.length === 0, `${c.name}: ${bad.length} of ${s.proxy.exchanges.length} requests refused:\n  ${bad.slice(0, 5).join('\n  ')}`);
  });

  test(`${c.name}: track calls stored exactly once with name, ids, properties, context, integrations and time`, { skip }, async () => {
    const s = await delivered();
    const wire = s.tracks.map((t) => s.find((w) => w.type === 'track' && w.event === t.event, t.event));
    const stored = await waitStoredOnce(env, { userId: s.ids.user }, wire.map((w) => ({ key: w.event, match: (e) => e.messageId === w.messageId })));
    stored.forEach((ev, i) => {
      const w = wire[i];
      assert.equal(ev.event, w.event);
      assert.equal(ev.userId, s.ids.user);
      assert.equal(ev.anonymousId, s.ids.anon);
      assert.deepEqual(ev.properties, w.properties, `${w.event}: properties`);
      assertIncludes(ev.context, w.context, `${w.event}: context`);
      assert.ok(containsDeep(ev, w.integrations), `${w.event}: integrations ${JSON.stringify(w.integrations)} are nowhere on the stored event ${JSON.stringify(ev)}`);
      assertNear(ev.occurredAt, w[c.timestampField], `${w.event}: occurredAt vs the client's ${c.timestampField}`);
    });
  });

  test(`${c.name}: a call stamped an hour ago is stored at that time (clock-skew correction from sentAt)`, { skip }, async () => {
    const s = await delivered();
    const w = s.find((x) => x.event === 'Cart Viewed', 'Cart Viewed');
    const [ev] = await waitStoredOnce(env, { userId: s.ids.user, event: 'Cart Viewed' }, [{ key: 'Cart Viewed', match: (e) => e.messageId === w.messageId }]);
    assertNear(ev.occurredAt, s.past, 'occurredAt of a call stamped an hour ago');
  });

  test(`${c.name}: purchase with the secret key stored with orderId, amount in cents and currency`, { skip }, async () => {
    const s = await delivered();
    const w = s.find((x) => x.event === 'purchase' && x.userId === s.ids.user, 'purchase');
    const [ev] = await waitStoredOnce(env, { userId: s.ids.user, event: 'purchase' }, [{ key: 'purchase', match: (e) => e.messageId === w.messageId }]);
    assert.deepEqual(ev.properties, w.properties);
    assert.notEqual(ev.status, 'failed', `purchase failed: ${JSON.stringify(ev.errorDetails ?? ev)}`);
  });

  test(`${c.name}: identify merges the traits into the user and links the anonymous id`, { skip }, async () => {
    const s = await delivered();
    const w = s.find((x) => x.type === 'identify', 'identify');
    await waitStoredOnce(env, { userId: s.ids.user, event: '$identify' }, [{ key: '$identify', match: (e) => e.messageId === w.messageId }]);
    await assertUser(env, s.ids.user, { traits: s.traits, anonymousIds: [s.ids.anon] }, 'identify');
  });

  test(`${c.name}: alias links previousId to userId`, { skip }, async () => {
    const s = await delivered();
    await assertUser(env, s.ids.user, { anonymousIds: [s.ids.aliasFrom] }, 'alias');
  });

  test(`${c.name}: page stored as "${PAGE_EVENT}" keeping name, category and properties`, { skip }, async () => {
    const s = await delivered();
    const w = s.find((x) => x.type === 'page', 'page');
    const [ev] = await waitStoredOnce(env, { userId: s.ids.user }, [{ key: 'page', match: (e) => e.messageId === w.messageId }]);
    assert.equal(ev.event, PAGE_EVENT);
    assertIncludes(ev.properties, w.properties, 'page properties');
    assert.ok(containsDeep(ev, 'Pricing'), `page name "Pricing" is nowhere on the stored event ${JSON.stringify(ev)}`);
    assert.ok(containsDeep(ev, 'Docs'), `page category "Docs" is nowhere on the stored event ${JSON.stringify(ev)}`);
  });

  test(`${c.name}: screen stored as "${SCREEN_EVENT}" keeping name and properties`, { skip }, async () => {
    const s = await delivered();
    const w = s.find((x) => x.type === 'screen', 'screen');
    const [ev] = await waitStoredOnce(env, { userId: s.ids.user }, [{ key: 'screen', match: (e) => e.messageId === w.messageId }]);
    assert.equal(ev.event, SCREEN_EVENT);
    assertIncludes(ev.properties, w.properties, 'screen properties');
    assert.ok(containsDeep(ev, 'Settings'), `screen name "Settings" is nowhere on the stored event ${JSON.stringify(ev)}`);
  });

  test(`${c.name}: group keeps groupId and traits on the stored event`, { skip }, async () => {
    const s = await delivered();
    const w = s.find((x) => x.type === 'group', 'group');
    const [ev] = await waitStoredOnce(env, { userId: s.ids.user }, [{ key: 'group', match: (e) => e.messageId === w.messageId }]);
    assert.ok(containsDeep(ev, w.groupId), `groupId ${w.groupId} is nowhere on the stored event ${JSON.stringify(ev)}`);
    for (const [k, v] of Object.entries(w.traits)) {
      assert.ok(containsDeep(ev, { [k]: v }) || containsDeep(ev, v), `group trait ${k}=${JSON.stringify(v)} is nowhere on the stored event ${JSON.stringify(ev)}`);
    }
  });

  test(`${c.name}: publishable key: purchase refused, the other items of the same batch stored`, { skip }, async () => {
    const s = await delivered();
    const batch = s.proxy.exchanges.find((x) => x.decoded?.batch?.some((i) => i.event === 'purchase' && i.userId === s.ids.pkUser));
    assert.ok(batch, 'the publishable-key batch was not sent');
    assert.deepEqual(batch.decoded.batch.map((i) => i.event), ['Good Before', 'purchase', 'Good After'], 'the three calls went in one batch');
    const good = batch.decoded.batch.filter((i) => i.event !== 'purchase');
    await waitStoredOnce(env, { userId: s.ids.pkUser }, good.map((g) => ({ key: g.event, match: (e) => e.messageId === g.messageId })));
    await assertNotStored(env, { userId: s.ids.pkUser }, 'a purchase sent with a publishable key', (e) => e.event === 'purchase');
  });
}
