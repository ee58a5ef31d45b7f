// posthog-node against a running Boost: POST /batch/ with api_key in a gzip
// JSON body; the Boost key is what a migrating user sets as the project API key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PostHog } from 'posthog-node';
import { boostEnv, runId, startProxy, assertSomeDelivered, refusals, waitStoredOnce, assertNear, assertUser } from '../lib/boost.mjs';
import { once } from './segment-like.mjs';
import {
  posthogWireItems,
  wireEvent,
  assertCapturesStored,
  assertIdentified,
  assertAliased,
  assertGroupIdentify,
  assertPublishableRules,
} from './posthog-like.mjs';

const env = boostEnv();
const skip = env.skip;
const NAME = 'posthog-node';

const sent = once(async () => {
  const proxy = await startProxy(env.url);
  const id = runId();
  const ids = { user: `${NAME}-${id}-user`, anon: `${NAME}-${id}-anon`, alias: `${NAME}-${id}-alias`, pkUser: `${NAME}-${id}-pk`, group: `org-${id}` };
  const make = (key) => new PostHog(key, { host: proxy.url, flushAt: 50, flushInterval: 0, fetchRetryCount: 1, fetchRetryDelay: 200 });
  const ph = make(env.sk);
  const captures = [
    { event: 'Product Viewed', properties: { productId: 'sku-1', price: 12.5, tags: ['a', 'b'] } },
    { event: 'Product Added', properties: { productId: 'sku-1', quantity: 2, options: { color: 'blue' } } },
    { event: 'Search', properties: { query: 'mug', results: 7 } },
  ];
  for (const c of captures) ph.capture({ distinctId: ids.user, ...c });
  const past = new Date(Date.now() - 3600_000);
  ph.capture({ distinctId: ids.user, event: 'Cart Viewed', properties: { items: 2 }, timestamp: past });
  ph.capture({ distinctId: ids.user, event: 'purchase', properties: { orderId: `ord-${id}`, amount: 1999, currency: 'EUR' } });
  ph.capture({ distinctId: ids.user, event: 'Plan Changed', properties: { to: 'pro', $set: { plan: 'pro' }, $set_once: { first_plan: 'free' } } });
  const traits = { email: `${id}@example.com`, name: 'Ada' };
  ph.identify({ distinctId: ids.user, properties: { $set: traits, $set_once: { signup_source: 'ad' }, $anon_distinct_id: ids.anon } });
  ph.alias({ distinctId: ids.user, alias: ids.alias });
  ph.groupIdentify({ groupType: 'company', groupKey: ids.group, properties: { name: 'Acme Inc', employees: 120 } });
  await ph.shutdown();

  const pk = make(env.pk);
  pk.capture({ distinctId: ids.pkUser, event: 'Good Before', properties: { n: 1 } });
  pk.capture({ distinctId: ids.pkUser, event: 'purchase', properties: { orderId: `pk-${id}`, amount: 500, currency: 'EUR' } });
  pk.capture({ distinctId: ids.pkUser, event: 'Good After', properties: { n: 2 } });
  await pk.shutdown();
  await proxy.close();
  return { proxy, ids, captures, traits, past, items: posthogWireItems(proxy.exchanges) };
});

const delivered = async () => {
  const s = await sent();
  assertSomeDelivered(s.proxy.exchanges, NAME);
  return s;
};

test(`${NAME}: every request answered 2xx`, { skip }, async () => {
  const s = await sent();
  const bad = refusals(s.proxy.exchanges);
  assert.ok(bad.length === 0, `${bad.length} of ${s.proxy.exchanges.length} requests refused:\n  ${bad.slice(0, 5).join('\n  ')}`);
});

test(`${NAME}: captures stored exactly once by uuid with name, distinct_id as userId, properties and time`, { skip }, async () => {
  const s = await delivered();
  const items = s.captures.map((c) => wireEvent(s.items, c.event, s.ids.user));
  await assertCapturesStored(env, items, s.ids.user, s.captures.map((c) => c.properties));
});

test(`${NAME}: a capture stamped an hour ago is stored at that time`, { skip }, async () => {
  const s = await delivered();
  const w = wireEvent(s.items, 'Cart Viewed', s.ids.user);
  const [ev] = await waitStoredOnce(env, { userId: s.ids.user }, [{ key: 'Cart Viewed', match: (e) => e.messageId === w.uuid }]);
  assertNear(ev.occurredAt, s.past, 'occurredAt of a capture stamped an hour ago');
});

test(`${NAME}: purchase with the secret key stored with orderId, amount and currency`, { skip }, async () => {
  const s = await delivered();
  const w = wireEvent(s.items, 'purchase', s.ids.user);
  await assertCapturesStored(env, [w], s.ids.user, [{ orderId: w.properties.orderId, amount: 1999, currency: 'EUR' }]);
});

test(`${NAME}: $set and $set_once on a capture become the user's traits`, { skip }, async () => {
  const s = await delivered();
  await assertUser(env, s.ids.user, { traits: { plan: 'pro', first_plan: 'free' } }, '$set/$set_once');
});

test(`${NAME}: identify ($identify with $anon_distinct_id) merges traits and links the anonymous id`, { skip }, async () => {
  const s = await delivered();
  await assertIdentified(env, s.items, s.ids.user, s.ids.anon, { ...s.traits, signup_source: 'ad' });
});

test(`${NAME}: alias ($create_alias) links the alias to the distinct id`, { skip }, async () => {
  const s = await delivered();
  await assertAliased(env, s.ids.user, s.ids.alias);
});

test(`${NAME}: groupIdentify ($groupidentify) keeps group type, key and properties`, { skip }, async () => {
  const s = await delivered();
  await assertGroupIdentify(env, s.items, 'company', s.ids.group, { name: 'Acme Inc', employees: 120 });
});

test(`${NAME}: publishable key: purchase refused, the other events of the same batch stored`, { skip }, async () => {
  const s = await delivered();
  await assertPublishableRules(env, s.items, s.ids.pkUser, ['Good Before', 'Good After']);
});
