// Capture scenarios of the browser libraries in headless Chromium: the page
// is served from one loopback origin, the recorder (acting as Segment's CDN and
// API, or as PostHog's API and assets host) from another, so CORS preflights
// happen as they do on a real site.
import { launchBrowser, servePages, segmentSnippet, posthogSnippet, html } from '../lib/browser.mjs';
import { Steps, sleep } from './steps.mjs';
import { WRITE_KEY } from './node-clients.mjs';

const PRODUCT = { productId: 'sku-123', name: 'Blue mug', price: 12.5, tags: ['kitchen', 'gift'] };
const PURCHASE = { orderId: 'ord-1001', amount: 1999, currency: 'EUR' };
const TRAITS = { email: 'ada@example.com', name: 'Ada Lovelace', plan: 'pro' };

const isPost = (re) => (r) => r.method === 'POST' && re.test(r.url);

/** @segment/analytics-next through Segment's snippet, with its CDN and API on the recorder. */
export async function analyticsNext(rec) {
  const steps = new Steps(rec);
  const host = rec.url.replace(/^http:\/\//, '');
  const segmentio = { apiHost: `${host}/v1`, protocol: 'http' };
  const pages = await servePages({
    '/ajs.html': () => html('analytics-next', segmentSnippet({ writeKey: WRITE_KEY, cdn: rec.url, loadOptions: { integrations: { 'Segment.io': segmentio } } })),
    '/ajs-batching.html': () =>
      html('analytics-next batching', segmentSnippet({
        writeKey: WRITE_KEY,
        cdn: rec.url,
        loadOptions: { integrations: { 'Segment.io': { ...segmentio, deliveryStrategy: { strategy: 'batching', config: { size: 3, timeout: 2000 } } } } },
      })),
    '/away.html': () => html('away'),
  });
  const browser = await launchBrowser();
  try {
    const page = await browser.context.newPage();
    const api = isPost(/^\/v1\//);
    const call = (fn, arg) => () => page.evaluate(fn, arg);

    await steps.run('load', () => page.goto(`${pages.origin}/ajs.html`), {
      match: api,
      note: 'the snippet loads analytics.js from the CDN (here the recorder, through analytics._cdn), which fetches\nthe source settings from the CDN, then sends the page() the snippet queued',
      settle: 500,
    });
    await steps.run('track', call(async (p) => {
      await window.analytics.track('Product Viewed', p, { context: { campaign: { source: 'newsletter' } }, integrations: { Mixpanel: false } });
    }, PRODUCT), { match: api });
    await steps.run('track purchase', call(async (p) => {
      await window.analytics.track('purchase', p);
    }, PURCHASE), { match: api });
    await steps.run('identify', call(async (t) => {
      await window.analytics.identify('user-42', t);
    }, TRAITS), { match: api, note: 'anonymousId is the one analytics.js keeps in the ajs_anonymous_id cookie / localStorage' });
    await steps.run('page', call(async () => {
      await window.analytics.page('Docs', 'Pricing', { plan: 'pro' });
    }), { match: api, note: "page(category, name, properties): path, url, title, referrer and search are added to properties" });
    await steps.run('screen', call(async () => {
      await window.analytics.screen('Settings', 'Privacy', { tab: 'privacy' });
    }), { match: api });
    await steps.run('group', call(async () => {
      await window.analytics.group('org-9', { name: 'Acme Inc', employees: 120 });
    }), { match: api });
    await steps.run('alias', call(async () => {
      await window.analytics.alias('user-42', 'legacy-user-7');
    }), { match: api, note: 'alias(userId, previousId)' });

    await steps.run('batching', async () => {
      await page.goto(`${pages.origin}/ajs-batching.html`);
      await page.waitForFunction(() => window.analytics && window.analytics.initialized);
      await page.evaluate(() => {
        window.analytics.track('Batch Event 1', { i: 1 });
        window.analytics.track('Batch Event 2', { i: 2 });
      });
    }, { match: isPost(/^\/v1\/b$/), settle: 500, note: "deliveryStrategy {strategy: 'batching', config: {size: 3, timeout: 2000}}" });
    await steps.run('batching on pagehide', async () => {
      await page.evaluate(() => {
        window.analytics.track('Unload Event', { i: 3 });
      });
      await page.click('#away');
    }, { match: isPost(/^\/v1\/b$/), settle: 500, note: 'one track queued, then the page navigates away: the batch is sent on pagehide' });

    rec.failNext(/^\/v1\/t$/, { status: 503 });
    await steps.run('retry after 503', async () => {
      await page.goto(`${pages.origin}/ajs.html`);
      await page.waitForFunction(() => window.analytics && window.analytics.initialized);
      await page.evaluate(() => window.analytics.track('Retried Event'));
    }, { match: isPost(/^\/v1\/t$/), expect: 2, settle: 300, note: 'the recorder answered the first /v1/t with 503' });
  } finally {
    await browser.close();
    await pages.close();
  }
  if (browser.external.length) {
    steps.entries.push(...[]);
    console.log(`analytics-next: requests to other hosts (aborted): ${browser.external.map((e) => e.url).join(', ')}`);
  }
  return steps.entries;
}

/** posthog-js through PostHog's snippet, with api_host on the recorder. */
export async function posthogJs(rec) {
  const steps = new Steps(rec);
  const events = isPost(/^\/(e|i\/v0\/e)\//);
  const pages = await servePages({
    '/ph.html': () => html('posthog-js', posthogSnippet({ token: WRITE_KEY, config: { api_host: rec.url, request_batching: false } })),
    '/ph-batched.html': () => html('posthog-js batched', posthogSnippet({ token: WRITE_KEY, config: { api_host: rec.url } })),
    '/away.html': () => html('away'),
  });
  const browser = await launchBrowser();
  try {
    const page = await browser.context.newPage();
    const call = (fn, arg) => () => page.evaluate(fn, arg);
    await steps.run('load', () => page.goto(`${pages.origin}/ph.html`), {
      match: events,
      settle: 2000,
      note: 'the snippet loads ${api_host}/static/array.js; request_batching: false, so each event is sent on its own',
    });
    await steps.run('capture', call((p) => window.posthog.capture('Product Viewed', p), PRODUCT), { match: events });
    await steps.run('capture purchase', call((p) => window.posthog.capture('purchase', p), PURCHASE), { match: events });
    await steps.run('capture with $set and $set_once', call(() =>
      window.posthog.capture('Plan Changed', { to: 'pro' }, { $set: { plan: 'pro' }, $set_once: { first_plan: 'free' } })), { match: events });
    await steps.run('identify ($identify with $anon_distinct_id)', call((t) =>
      window.posthog.identify('user-42', t, { signup_source: 'ad' }), TRAITS), { match: events, settle: 1000, note: 'identify(distinctId, $set, $set_once); it also reloads the feature flags' });
    await steps.run('setPersonProperties ($set)', call(() => window.posthog.setPersonProperties({ plan: 'enterprise' }, { first_seen_plan: 'pro' })), { match: events });
    await steps.run('alias ($create_alias)', call(() => window.posthog.alias('ada@example.com')), { match: events });
    await steps.run('group ($groupidentify)', call(() => window.posthog.group('company', 'org-9', { name: 'Acme Inc', employees: 120 })), {
      match: events,
      settle: 1000,
      note: 'group(type, key, properties): $groupidentify, and the flags are reloaded with the group',
    });

    rec.failNext(/^\/(e|i\/v0\/e)\//, { status: 202, body: '{"status":1}' });
    await steps.run('a 202 answer is retried', call(() => window.posthog.capture('Answered 202')), {
      match: events,
      expect: 2,
      timeout: 15_000,
      note: 'the recorder answered the first attempt 202 (not 200): posthog-js retries every status but 200 below 400\n(retry-queue.js: statusCode !== 200 && (statusCode < 400 || statusCode >= 500)), with retry_count=1',
    });

    await steps.run('batched', async () => {
      await page.goto(`${pages.origin}/ph-batched.html`);
      await page.waitForFunction(() => window.posthog && window.posthog.__loaded);
      await page.evaluate(() => {
        for (let i = 1; i <= 3; i++) window.posthog.capture(`Batch Event ${i}`, { i });
      });
    }, { match: events, settle: 4000, note: 'request_batching on (the default): events are queued and sent every 3 s' });
    await steps.run('batched on unload', async () => {
      await page.evaluate(() => window.posthog.capture('Unload Event'));
      await page.click('#away');
    }, { match: events, settle: 1000, note: 'one capture queued, then the page navigates away' });
  } finally {
    await browser.close();
    await pages.close();
  }
  if (browser.external.length) {
    console.log(`posthog-js: requests to other hosts (aborted): ${browser.external.map((e) => e.url).join(', ')}`);
  }
  return steps.entries;
}

export { sleep };
