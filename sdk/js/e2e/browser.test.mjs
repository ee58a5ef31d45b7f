// Browser end-to-end test of @gamify/core and @gamify/react against a real
// Boost server, in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core; no browser download).
//
//   BOOST_URL=http://localhost:3000 BOOST_PUBLISHABLE_KEY=pk_live_… \
//   BOOST_PROJECT_ID=… BOOST_ADMIN_TOKEN=… npm run test:browser
//
// It serves test pages from 127.0.0.1, tracks page views and clicks, checks a
// trusted event is refused in the page, navigates away with events queued
// (the unload/beacon path), goes offline and back, then reads every event
// back through the admin API and checks each arrived exactly once with its
// properties. Screenshots go to e2e/artifacts/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildPages } from './build.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const artifacts = path.join(here, 'artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ENV = ['BOOST_URL', 'BOOST_PUBLISHABLE_KEY', 'BOOST_PROJECT_ID', 'BOOST_ADMIN_TOKEN'];
const missing = ENV.filter((k) => !process.env[k]);
let skip = false;
if (missing.length > 0) {
  skip = `set ${missing.join(', ')} to run the browser e2e test (e.g. from \`go run ./cmd/boost dev\`)`;
} else if (!existsSync(CHROMIUM)) {
  skip = `no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`;
}
if (skip) console.log(`# SKIP browser e2e: ${skip}`);

const LAUNCH_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const TRUSTED = /"event":"\s*(purchase|checkout_complete|checkout_success|commission\.created|referral_success|user\.leveled_up|step\.completed|quest\.completed)\s*"/i;

async function waitFor(what, cond, timeout = 20_000, interval = 100) {
  const t0 = Date.now();
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() - t0 > timeout) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** Static server for the test pages; config is injected per page from the query string. */
async function servePages(buildDir, base) {
  const html = (title, body, script, cfg) => `<!doctype html>
<html><head><meta charset="utf-8"><title>${title}</title>
<style>body{font:16px system-ui;margin:2rem}button{margin:.3rem;padding:.5rem 1rem}#trusted-result,#react-refusal{color:#a00}</style>
<script>window.__BOOST__=${JSON.stringify(cfg).replace(/</g, '\\u003c')}</script></head>
<body>${body}<p>status: <span id="status">loading</span></p>${script ? `<script src="/${script}"></script>` : ''}</body></html>`;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const cfg = {
      ...base,
      flushInterval: Number(url.searchParams.get('flushInterval') ?? 1000),
      flushAt: Number(url.searchParams.get('flushAt') ?? 20),
      phase: url.searchParams.get('phase') ?? 'default',
    };
    const send = (type, body) => {
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    switch (url.pathname) {
      case '/core.html':
        return send(
          'text/html; charset=utf-8',
          html(
            'Gamify core e2e',
            `<h1>Core shop</h1><button id="buy">Buy</button><button id="login">Log in</button>
<button id="trusted">Purchase (trusted)</button><a id="away" href="/away.html">Leave</a>
<p>clicks: <span id="clicks">0</span> user: <span id="who"></span></p><p id="trusted-result"></p>`,
            'core.js',
            cfg,
          ),
        );
      case '/react.html':
        return send('text/html; charset=utf-8', html('Gamify react e2e', '<div id="root"></div>', 'react.js', cfg));
      case '/away.html':
        return send('text/html; charset=utf-8', html('Away', '<h1>Away (no SDK on this page)</h1>', '', cfg));
      case '/core.js':
      case '/react.js':
        return send('text/javascript; charset=utf-8', readFileSync(path.join(buildDir, url.pathname.slice(1))));
      case '/favicon.ico':
        res.writeHead(204);
        return res.end();
      default:
        res.writeHead(404);
        res.end('not found');
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, origin: `http://127.0.0.1:${server.address().port}` };
}

test('browser e2e: core + react against Boost', { skip, timeout: 300_000 }, async (t) => {
  const BOOST_URL = process.env.BOOST_URL.replace(/\/+$/, '');
  const KEY = process.env.BOOST_PUBLISHABLE_KEY;
  const PROJECT = process.env.BOOST_PROJECT_ID;
  const ADMIN = process.env.BOOST_ADMIN_TOKEN;
  const runId = randomUUID();
  rmSync(artifacts, { recursive: true, force: true });
  mkdirSync(artifacts, { recursive: true });

  const buildDir = await buildPages();
  const { server: pages, origin } = await servePages(buildDir, { endpoint: BOOST_URL, apiKey: KEY, runId });
  t.after(() => pages.close());

  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS });
  t.after(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 900, height: 600 } });
  await context.addInitScript(() => {
    const orig = navigator.sendBeacon && navigator.sendBeacon.bind(navigator);
    if (!orig) return;
    navigator.sendBeacon = (url, data) => {
      const ok = orig(url, data);
      try {
        const list = JSON.parse(sessionStorage.getItem('__e2e_beacons') || '[]');
        list.push({ url: String(url), data: typeof data === 'string' ? data : null, ok });
        sessionStorage.setItem('__e2e_beacons', JSON.stringify(list));
      } catch {
        /* ignore */
      }
      return ok;
    };
  });
  const page = await context.newPage();

  // What the pages report through the SDK hooks.
  const tracked = new Map(); // messageId -> { method, args, page }
  const serverIds = new Map(); // messageId -> Set of server ids seen in answers
  const sdkErrors = [];
  await page.exposeBinding('__e2eReport', (_src, kind, data) => {
    if (kind === 'tracked') tracked.set(data.messageId, data);
    else if (kind === 'delivered') {
      for (const d of data) {
        if (!serverIds.has(d.messageId)) serverIds.set(d.messageId, new Set());
        serverIds.get(d.messageId).add(d.id);
      }
    } else if (kind === 'error') sdkErrors.push(data);
  });
  // Everything the browser sent to the batch endpoint (fetches and beacons).
  const sent = []; // { beacon, body, items }
  const sentItems = new Map(); // messageId -> item as sent
  context.on('request', (req) => {
    if (req.method() !== 'POST' || !req.url().startsWith(`${BOOST_URL}/v1/events/batch`)) return;
    const raw = req.postData() ?? '';
    let body;
    try {
      body = JSON.parse(raw);
    } catch {
      return;
    }
    sent.push({ beacon: typeof body.writeKey === 'string', raw, type: req.resourceType(), items: body.batch ?? [] });
    for (const item of body.batch ?? []) sentItems.set(item.messageId, item);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') console.log(`  [page console] ${m.text()}`);
  });
  page.on('pageerror', (e) => console.log(`  [page error] ${e.message}`));

  const shot = (name) => page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
  const delivered = (ids) => ids.every((id) => serverIds.has(id));
  const phaseOf = (v) => (v.method === 'page' ? v.args?.[0]?.phase : v.args?.[1]?.phase);
  const trackedIds = (filter = () => true) => [...tracked].filter(([, v]) => filter(v)).map(([id]) => id);

  try {
    // 1. Page view, clicks, identify, trusted-event refusal (core).
    await page.goto(`${origin}/core.html?phase=basic&flushInterval=500`);
    await page.waitForSelector('#status:text("ready")');
    for (let i = 0; i < 3; i++) await page.click('#buy');
    await page.click('#login');
    await page.click('#buy');
    await page.click('#trusted');
    const refusal = await page.textContent('#trusted-result');
    assert.match(refusal, /^trusted_event: /, 'the browser SDK refuses a trusted event');
    const codes = await page.evaluate(() =>
      ['purchase', 'CHECKOUT_SUCCESS', ' referral_success ', 'commission.created'].map((name) => {
        try {
          window.__gamify.track(name, { orderId: 'x', amount: 1, currency: 'USD' });
          return 'sent';
        } catch (e) {
          return e.code;
        }
      }),
    );
    assert.deepEqual(codes, ['trusted_event', 'trusted_event', 'trusted_event', 'trusted_event']);
    await waitFor('basic events delivered', () => tracked.size >= 6 && delivered(trackedIds()));
    await shot('01-core');

    // 2. Unload: events queued (long interval), then navigate away → beacon.
    await page.goto(`${origin}/core.html?phase=unload&flushInterval=600000&flushAt=1000`);
    await page.waitForSelector('#status:text("ready")');
    await page.click('#buy');
    await page.click('#buy');
    const queuedAtUnload = trackedIds((v) => phaseOf(v) === 'unload');
    assert.equal(queuedAtUnload.length, 3, 'page view + 2 clicks tracked in the unload phase');
    assert.ok(!delivered(queuedAtUnload), 'still queued before leaving');
    const beaconsBefore = sent.filter((s) => s.beacon).length;
    await page.click('#away');
    await page.waitForSelector('h1:text("Away")');
    await shot('02-away');
    // The init script below recorded every sendBeacon call in sessionStorage
    // (it survives same-origin navigation, unlike the page).
    const beacons = await page.evaluate(() => JSON.parse(sessionStorage.getItem('__e2e_beacons') || '[]'));
    const unloadBeacon = beacons.find((b) => b.data && queuedAtUnload.every((id) => b.data.includes(id)));
    assert.ok(unloadBeacon, `a sendBeacon call carried the queued events (saw ${beacons.length} beacon calls)`);
    assert.equal(unloadBeacon.ok, true, 'sendBeacon accepted the payload');
    assert.equal(unloadBeacon.url, `${BOOST_URL}/v1/events/batch`);
    const beaconBody = JSON.parse(unloadBeacon.data);
    assert.equal(beaconBody.writeKey, KEY, 'the beacon carries the writeKey in its body');
    assert.match(beaconBody.sentAt, /Z$/);
    for (const item of beaconBody.batch) sentItems.set(item.messageId, item);
    t.diagnostic(
      `beacon seen on the wire by CDP: ${sent.filter((x) => x.beacon).length > beaconsBefore ? 'yes' : 'no (Chromium does not always report unload beacons)'}`,
    );
    // Back to a page with the SDK: the persisted queue is resent by fetch and confirmed.
    await page.goto(`${origin}/core.html?phase=return&flushInterval=500`);
    await page.waitForSelector('#status:text("ready")');
    await waitFor('events queued at unload confirmed after return', () => delivered(queuedAtUnload));

    // 3. Offline: track while offline, nothing is lost, sent when back online.
    await context.setOffline(true);
    assert.equal(await page.evaluate(() => navigator.onLine), false);
    const sentBeforeOffline = sent.length;
    await page.click('#buy');
    await page.click('#buy');
    await page.evaluate(() => window.__gamify.flush());
    const offlineIds = trackedIds((v) => phaseOf(v) === 'return' && v.method === 'track');
    assert.equal(offlineIds.length, 2);
    const persisted = await page.evaluate(() => {
      const key = Object.keys(localStorage).find((k) => k.endsWith(':queue'));
      return key ? JSON.parse(localStorage.getItem(key)).map((e) => e.item.messageId) : [];
    });
    for (const id of offlineIds) assert.ok(persisted.includes(id), 'offline event persisted in localStorage');
    await shot('03-offline');
    await new Promise((r) => setTimeout(r, 1200)); // a timer tick while offline must not spend the events
    assert.ok(!delivered(offlineIds));
    assert.equal(sent.length, sentBeforeOffline, 'nothing sent while offline');
    await context.setOffline(false);
    await waitFor('offline events delivered after coming back online', () => delivered(offlineIds));

    // 4. React page: GamifyPageView, GamifyTrackClick, trusted refusal via useTrack.
    await page.goto(`${origin}/react.html?phase=react&flushInterval=500`);
    await page.waitForSelector('#status:text("ready")');
    await page.waitForSelector('#react-cta');
    await page.click('#react-cta');
    await page.click('#react-cta');
    await page.click('#react-trusted');
    await page.waitForSelector('#react-refusal:text("trusted_event")');
    assert.match(await page.textContent('#react-cta'), /Start \(2\)/, "the button's own onClick still runs");
    const reactIds = trackedIds((v) => v.page === 'react');
    assert.equal(reactIds.length, 3, 'one page view (StrictMode) + two clicks');
    await waitFor('react events delivered', () => delivered(reactIds));
    await shot('04-react');
  } catch (err) {
    await shot('failure').catch(() => {});
    throw err;
  }

  // 5. Read everything back through the admin API.
  assert.deepEqual(sdkErrors, [], 'the SDK reported no errors');
  for (const s of sent) assert.doesNotMatch(s.raw, TRUSTED, 'no trusted event ever left the browser');
  const all = trackedIds();
  assert.ok(all.length >= 15, `tracked ${all.length} events`);
  const idOf = new Map();
  for (const messageId of all) {
    const ids = serverIds.get(messageId);
    assert.ok(ids, `no server id for ${messageId} (${JSON.stringify(tracked.get(messageId))})`);
    assert.equal(ids.size, 1, `messageId ${messageId} got several server ids: ${[...ids]}`);
    idOf.set(messageId, [...ids][0]);
  }
  assert.equal(new Set(idOf.values()).size, all.length, 'distinct events have distinct server ids');

  const readBack = async (id) =>
    waitFor(
      `event ${id} readable`,
      async () => {
        const res = await fetch(`${BOOST_URL}/v1/projects/${encodeURIComponent(PROJECT)}/events/${encodeURIComponent(id)}`, {
          headers: { authorization: `Bearer ${ADMIN}` },
        });
        if (res.status === 200) {
          const ev = await res.json();
          return ev.status === 'pending' ? null : ev; // until the processor has recorded its outcome
        }
        if (res.status !== 404) t.diagnostic(`GET event ${id}: HTTP ${res.status}`);
        return null;
      },
      60_000,
      250,
    );
  const queue = [...idOf];
  const results = [];
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (queue.length) {
        const [messageId, id] = queue.shift();
        results.push([messageId, await readBack(id)]);
      }
    }),
  );
  for (const [messageId, ev] of results) {
    const item = sentItems.get(messageId);
    assert.ok(item, `${messageId} was never seen on the wire`);
    assert.equal(ev.id, idOf.get(messageId));
    assert.equal(ev.event, item.event);
    assert.equal(ev.status, 'processed', `${item.event} ${messageId}: status ${ev.status} ${ev.errorDetails ?? ''}`);
    assert.equal(ev.userId, item.userId);
    assert.equal(ev.anonymousId, item.anonymousId);
    assert.equal(ev.messageId, messageId);
    assert.deepEqual(ev.properties, item.properties ?? {}, `${item.event} ${messageId}: properties as stored`);
  }
  const byEvent = {};
  for (const [, ev] of results) byEvent[ev.event] = (byEvent[ev.event] ?? 0) + 1;
  t.diagnostic(`run ${runId}: ${results.length} events read back exactly once: ${JSON.stringify(byEvent)}`);
  t.diagnostic(`requests: ${sent.length} (${sent.filter((s) => s.beacon).length} beacon); screenshots in ${artifacts}`);
});
