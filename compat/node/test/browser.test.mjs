// @segment/analytics-next and posthog-js in headless Chromium against a
// running Boost. A page server on loopback serves the test pages and the
// libraries' own files from node_modules (analytics-next through Segment's
// snippet, with the page server standing in for Segment's CDN and its settings
// pointing apiHost at Boost; posthog-js as dist/array.full.js with api_host set
// to Boost). The browser talks to Boost through a recording proxy, so a failure
// says what Boost answered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boostEnv, runId, startProxy, assertSomeDelivered, refusals, waitStoredOnce, assertNear, assertIncludes, assertUser, assertNotStored, PAGE_EVENT } from '../lib/boost.mjs';
import { chromiumAvailable, CHROMIUM, launchBrowser, servePages, segmentSnippet, html } from '../lib/browser.mjs';
import { segmentSettings } from '../lib/recorder.mjs';
import { once } from './segment-like.mjs';
import { posthogWireItems, wireEvent, assertCapturesStored, assertIdentified, assertAliased, assertPublishableRules } from './posthog-like.mjs';

const env = boostEnv();
const skip = env.skip || (!chromiumAvailable() && `no Chromium at ${CHROMIUM} (apt-get install -y chromium)`);

const sent = once(async () => {
  const proxy = await startProxy(env.url);
  const host = proxy.url.replace(/^http:\/\//, '');
  const segmentio = { apiHost: `${host}/v1`, protocol: 'http' };
  const pages = await servePages(
    {
      '/ajs.html': () => html('analytics-next', segmentSnippet({ writeKey: env.pk, cdn: pagesOrigin(), loadOptions: { integrations: { 'Segment.io': segmentio } } })),
      '/ajs-batching.html': () =>
        html('analytics-next batching', segmentSnippet({
          writeKey: env.pk,
          cdn: pagesOrigin(),
          page: false,
          loadOptions: { integrations: { 'Segment.io': { ...segmentio, deliveryStrategy: { strategy: 'batching', config: { size: 3, timeout: 1000 } } } } },
        })),
      '/ph.html': () =>
        `<!doctype html><html><head><meta charset="utf-8"><title>posthog-js</title><script src="/static/array.full.js"></script><script>posthog.init(${JSON.stringify(env.pk)},${JSON.stringify({ api_host: proxy.url })})</script></head><body><a id="away" href="/away.html">away</a></body></html>`,
      '/away.html': () => html('away'),
    },
    (req, url, res) => {
      // The page server is the CDN: it serves the source settings, pointing apiHost at Boost.
      const m = /^\/v1\/projects\/([^/]+)\/settings$/.exec(url.pathname);
      if (!m) return false;
      res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*' });
      res.end(JSON.stringify(segmentSettings(decodeURIComponent(m[1]), `${host}/v1`)));
      return true;
    },
  );
  const pagesOrigin = () => pages.origin;
  const id = runId();
  const ids = { ajsUser: `ajs-${id}-user`, ajsPrevious: `ajs-${id}-previous`, phUser: `phjs-${id}-user`, phAlias: `phjs-${id}-alias` };
  const browser = await launchBrowser();
  const out = { proxy, ids };
  try {
    const page = await browser.context.newPage();

    // analytics-next: the snippet's page(), tracks, identify, group, alias (one request each).
    await page.goto(`${pages.origin}/ajs.html`);
    await page.waitForFunction(() => window.analytics && window.analytics.initialized, null, { timeout: 20_000 });
    out.ajsAnon = await page.evaluate(() => window.analytics.user().anonymousId());
    out.ajsTracks = [
      { event: 'Product Viewed', properties: { productId: 'sku-1', price: 12.5 } },
      { event: 'Product Added', properties: { productId: 'sku-1', quantity: 2 } },
      { event: 'Search', properties: { query: 'mug', results: 7 } },
    ];
    out.ajsTraits = { email: `${id}@example.com`, plan: 'pro' };
    await page.evaluate(async ({ tracks, ids, traits }) => {
      for (const t of tracks) await window.analytics.track(t.event, t.properties);
      await window.analytics.identify(ids.ajsUser, traits);
      await window.analytics.group('org-' + ids.ajsUser, { name: 'Acme Inc' });
      await window.analytics.alias(ids.ajsUser, ids.ajsPrevious);
    }, { tracks: out.ajsTracks, ids, traits: out.ajsTraits });

    // analytics-next batching: good, purchase (publishable key), good in one /v1/b.
    await page.goto(`${pages.origin}/ajs-batching.html`);
    await page.waitForFunction(() => window.analytics && window.analytics.initialized, null, { timeout: 20_000 });
    await page.evaluate(() => {
      window.analytics.track('Good Before', { n: 1 });
      window.analytics.track('purchase', { orderId: 'pk-order', amount: 500, currency: 'EUR' });
      window.analytics.track('Good After', { n: 2 });
    });
    const deadline = Date.now() + 10_000;
    while (!proxy.exchanges.some((x) => x.url === '/v1/b') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));

    // posthog-js (defaults: batched every 3 s, flushed with sendBeacon on unload).
    await page.goto(`${pages.origin}/ph.html`);
    await page.waitForFunction(() => window.posthog && window.posthog.__loaded, null, { timeout: 20_000 });
    out.phAnon = await page.evaluate(() => window.posthog.get_distinct_id());
    out.phCaptures = [
      { event: 'Product Viewed', properties: { productId: 'sku-1', price: 12.5 } },
      { event: 'Good Before', properties: { n: 1 } },
      { event: 'purchase', properties: { orderId: 'pk-order', amount: 500, currency: 'EUR' } },
      { event: 'Good After', properties: { n: 2 } },
    ];
    out.phTraits = { email: `${id}@example.com`, plan: 'pro' };
    await page.evaluate(({ captures, ids, traits }) => {
      for (const c of captures) window.posthog.capture(c.event, c.properties);
      window.posthog.identify(ids.phUser, traits, { signup_source: 'ad' });
      window.posthog.alias(ids.phAlias);
    }, { captures: out.phCaptures, ids, traits: out.phTraits });
    await new Promise((r) => setTimeout(r, 500));
    await page.click('#away');
    await page.waitForLoadState('load');
    await new Promise((r) => setTimeout(r, 1500));
  } finally {
    await browser.close();
    await pages.close();
    await proxy.close();
  }
  out.external = browser.external;
  return out;
});

// ---------------------------------------------------------------- analytics-next

const ajsExchanges = (s) => s.proxy.exchanges.filter((x) => x.url.startsWith('/v1/'));
/** The items analytics-next sent: one per /v1/{t,p,i,g,a,s} request, several per /v1/b. */
const ajsItems = (s) => ajsExchanges(s).flatMap((x) => (x.decoded?.batch ?? (x.decoded ? [x.decoded] : [])));
const ajsDelivered = async () => {
  const s = await sent();
  assertSomeDelivered(s.proxy.exchanges, 'analytics-next', (x) => x.url.startsWith('/v1/'));
  return s;
};

test('analytics-next: every request answered 2xx (CORS preflights included)', { skip }, async () => {
  const s = await sent();
  const bad = refusals(ajsExchanges(s));
  const preflights = ajsExchanges(s).filter((x) => x.method === 'OPTIONS' && !(x.status >= 200 && x.status < 300));
  bad.push(...preflights.map((x) => `OPTIONS ${x.url} answered ${x.status}`));
  assert.ok(bad.length === 0, `${bad.length} requests refused:\n  ${[...new Set(bad)].slice(0, 6).join('\n  ')}`);
});

test('analytics-next: track calls stored exactly once with name, anonymous id, properties and time', { skip }, async () => {
  const s = await ajsDelivered();
  const items = s.ajsTracks.map((t) => {
    const w = ajsItems(s).find((i) => i.type === 'track' && i.event === t.event);
    assert.ok(w, `${t.event} was not sent`);
    return w;
  });
  const stored = await waitStoredOnce(env, { anonymousId: s.ajsAnon }, items.map((w) => ({ key: w.event, match: (e) => e.messageId === w.messageId })));
  stored.forEach((e, i) => {
    assert.equal(e.event, items[i].event);
    assert.equal(e.anonymousId, s.ajsAnon);
    assert.deepEqual(e.properties, items[i].properties);
    assertNear(e.occurredAt, items[i].timestamp, `${items[i].event}: occurredAt`);
  });
});

test(`analytics-next: the snippet's page() stored as "${PAGE_EVENT}" with path, url and title`, { skip }, async () => {
  const s = await ajsDelivered();
  const w = ajsItems(s).find((i) => i.type === 'page');
  assert.ok(w, 'page() was not sent');
  const [e] = await waitStoredOnce(env, { anonymousId: s.ajsAnon }, [{ key: 'page', match: (e) => e.messageId === w.messageId }]);
  assert.equal(e.event, PAGE_EVENT);
  assertIncludes(e.properties, { path: '/ajs.html', title: 'analytics-next' }, 'page properties');
});

test('analytics-next: identify merges traits and links the cookie anonymous id', { skip }, async () => {
  const s = await ajsDelivered();
  await assertUser(env, s.ids.ajsUser, { traits: s.ajsTraits, anonymousIds: [s.ajsAnon] }, 'identify');
});

test('analytics-next: alias links previousId to userId', { skip }, async () => {
  const s = await ajsDelivered();
  await assertUser(env, s.ids.ajsUser, { anonymousIds: [s.ids.ajsPrevious] }, 'alias');
});

test('analytics-next: publishable key: purchase refused, the rest of the /v1/b batch stored', { skip }, async () => {
  const s = await ajsDelivered();
  const b = ajsExchanges(s).find((x) => x.url === '/v1/b' && x.decoded?.batch?.some((i) => i.event === 'purchase'));
  assert.ok(b, 'the batching page sent no /v1/b with the purchase');
  const good = b.decoded.batch.filter((i) => i.event !== 'purchase');
  assert.equal(good.length, 2, 'Good Before and Good After went in the same batch');
  const anon = good[0].anonymousId;
  await waitStoredOnce(env, { anonymousId: anon }, good.map((g) => ({ key: g.event, match: (e) => e.messageId === g.messageId })));
  await assertNotStored(env, { anonymousId: anon }, 'a purchase sent with a publishable key', (e) => e.event === 'purchase');
});

// ---------------------------------------------------------------- posthog-js

const phExchanges = (s) => s.proxy.exchanges.filter((x) => !x.url.startsWith('/v1/'));
const phDelivered = async () => {
  const s = await sent();
  assertSomeDelivered(s.proxy.exchanges, 'posthog-js', (x) => /^\/(e|i\/v0\/e|batch)\//.test(x.url));
  return s;
};

test('posthog-js: every event request answered 2xx', { skip }, async () => {
  // Remote config (/array/{token}/config) and /flags/ are left out: posthog-js sends its
  // events without them (an open question, see compat/README.md).
  const s = await sent();
  const bad = refusals(phExchanges(s), (x) => /^\/(e|i\/v0\/e|batch)\//.test(x.url));
  assert.ok(bad.length === 0, `${bad.length} requests refused:\n  ${[...new Set(bad)].slice(0, 6).join('\n  ')}`);
});

test('posthog-js: captures stored exactly once by uuid with name, distinct_id as userId, properties and time', { skip }, async () => {
  const s = await phDelivered();
  const items = posthogWireItems(s.proxy.exchanges);
  const caps = s.phCaptures.filter((c) => c.event !== 'purchase');
  await assertCapturesStored(env, caps.map((c) => wireEvent(items, c.event, s.phAnon)), s.phAnon, caps.map((c) => c.properties));
});

test('posthog-js: $pageview stored with its URL', { skip }, async () => {
  const s = await phDelivered();
  const w = wireEvent(posthogWireItems(s.proxy.exchanges), '$pageview', s.phAnon);
  const [e] = await waitStoredOnce(env, { userId: s.phAnon }, [{ key: '$pageview', match: (e) => e.messageId === w.uuid }]);
  assert.equal(e.properties.$current_url, w.properties.$current_url);
});

test('posthog-js: identify ($identify with $anon_distinct_id) merges traits and links the anonymous id', { skip }, async () => {
  const s = await phDelivered();
  await assertIdentified(env, posthogWireItems(s.proxy.exchanges), s.ids.phUser, s.phAnon, { ...s.phTraits, signup_source: 'ad' });
});

test('posthog-js: alias ($create_alias) links the alias to the distinct id', { skip }, async () => {
  const s = await phDelivered();
  await assertAliased(env, s.ids.phUser, s.ids.phAlias);
});

test('posthog-js: publishable key: purchase refused, the other events of the same batch stored', { skip }, async () => {
  const s = await phDelivered();
  await assertPublishableRules(env, posthogWireItems(s.proxy.exchanges), s.phAnon, ['Good Before', 'Good After']);
});
