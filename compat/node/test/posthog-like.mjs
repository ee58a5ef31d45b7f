// Checks shared by the PostHog clients (posthog-node and posthog-js): what
// each event of the wire batch must become in Boost. The wire items come from
// the recording proxy in front of Boost, so the checks compare against exactly
// what the library sent (uuid, timestamp, properties).
import assert from 'node:assert/strict';
import {
  waitStoredOnce,
  assertNear,
  assertIncludes,
  assertUser,
  assertNotStored,
  containsDeep,
  listEvents,
  eventually,
} from '../lib/boost.mjs';

/** distinct_id is top-level in posthog-node's and posthog-go's events, inside properties in posthog-js's. */
export const distinctOf = (item) => item.distinct_id ?? item.properties?.distinct_id;

/** Every event of every batch (or single event) sent to a PostHog capture path. */
export function posthogWireItems(exchanges) {
  const out = [];
  for (const x of exchanges) {
    if (x.method !== 'POST' || !/^\/(batch|e|i\/v0\/e|capture|track)\//.test(x.url)) continue;
    const d = x.decoded;
    if (!d) continue;
    const items = Array.isArray(d) ? d : (d.batch ?? [d]);
    for (const item of items) out.push({ ...item, sent_at: d.sent_at });
  }
  return out;
}

/** A sent event by name (and distinct id), failing clearly when the library did not send it. */
export function wireEvent(items, event, distinctId) {
  const found = items.filter((i) => i.event === event && (!distinctId || distinctOf(i) === distinctId));
  assert.ok(found.length > 0, `${event} (${distinctId ?? 'any distinct_id'}): the library did not send it (sent: ${[...new Set(items.map((i) => i.event))].join(', ')})`);
  return found[found.length - 1];
}

/**
 * Each wire event is stored exactly once under its uuid, with its name, its
 * distinct_id as userId, the given properties and its timestamp.
 */
export async function assertCapturesStored(env, items, userId, userProperties) {
  const stored = await waitStoredOnce(env, { userId }, items.map((w) => ({ key: `${w.event} (uuid ${w.uuid})`, match: (e) => e.messageId === w.uuid })));
  stored.forEach((ev, i) => {
    const w = items[i];
    assert.equal(ev.event, w.event);
    assert.equal(ev.userId, userId);
    assertIncludes(ev.properties, userProperties[i], `${w.event}: properties`);
    assertNear(ev.occurredAt, w.timestamp, `${w.event}: occurredAt vs the library's timestamp`);
  });
  return stored;
}

/** $identify linked the anonymous id and merged $set (and $set_once). */
export async function assertIdentified(env, items, userId, anonId, traits) {
  const w = wireEvent(items, '$identify', userId);
  await waitStoredOnce(env, { userId }, [{ key: '$identify', match: (e) => e.messageId === w.uuid }]);
  await assertUser(env, userId, { traits, anonymousIds: [anonId] }, '$identify');
}

/** $create_alias linked the alias to the distinct id. */
export async function assertAliased(env, userId, alias) {
  await assertUser(env, userId, { anonymousIds: [alias] }, '$create_alias');
}

/** $groupidentify stored with its group type, key and properties readable. */
export async function assertGroupIdentify(env, items, type, key, props) {
  const w = wireEvent(items, '$groupidentify');
  const userId = distinctOf(w);
  await eventually(async () => {
    const events = await listEvents(env, { userId });
    const ev = events.find((e) => e.messageId === w.uuid || (w.uuid === undefined && e.event === '$groupidentify'));
    assert.ok(ev, `$groupidentify (distinct_id ${userId}) not stored`);
    assert.ok(containsDeep(ev, type) && containsDeep(ev, key), `group type/key ${type}/${key} not on ${JSON.stringify(ev)}`);
    for (const [k, v] of Object.entries(props)) assert.ok(containsDeep(ev, v), `group property ${k}=${v} not on ${JSON.stringify(ev)}`);
  });
}

/** With a publishable key, purchase is refused and the other events of the batch stored. */
export async function assertPublishableRules(env, items, userId, goodEvents) {
  const good = goodEvents.map((name) => wireEvent(items, name, userId));
  await waitStoredOnce(env, { userId }, good.map((w) => ({ key: w.event, match: (e) => e.messageId === w.uuid })));
  await assertNotStored(env, { userId }, 'a purchase sent with a publishable key', (e) => e.event === 'purchase');
}
