// End-to-end test of the Boost dashboard: a real `boost dev`, Debian's
// headless Chromium driven by playwright-core, and events sent over HTTP
// the way curl or a server SDK would. run.sh starts the server and sets:
//   BOOST_URL, BOOST_ADMIN_TOKEN, SHOTS_DIR (screenshots), CHROMIUM_PATH.
// Each step prints PASS/FAIL; the first failure stops the run (exit 1) with
// a screenshot of the page it was on.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const BASE = process.env.BOOST_URL;
const TOKEN = process.env.BOOST_ADMIN_TOKEN;
const SHOTS = process.env.SHOTS_DIR || '/tmp/boost-dashboard-shots';
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
if (!BASE || !TOKEN) {
  console.error('set BOOST_URL and BOOST_ADMIN_TOKEN (run.sh does)');
  process.exit(2);
}
mkdirSync(SHOTS, { recursive: true });

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
const page = await context.newPage();
const problems = [];
page.on('pageerror', (e) => problems.push('page error: ' + e.message));
// Pages answered with 4xx on purpose (a refused sign-in) log a resource error; anything else is a problem.
page.on('console', (m) => {
  if (m.type() === 'error' && !/status of 40[134]/.test(m.text())) problems.push('console error: ' + m.text());
});
page.on('dialog', (d) => { problems.push('unexpected dialog: ' + d.message()); d.dismiss(); });

let passed = 0;
async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    if (problems.length) throw new Error(problems.splice(0).join('; '));
    passed++;
    console.log(`PASS ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    console.log(`FAIL ${name}: ${e.stack || e}`);
    await page.screenshot({ path: join(SHOTS, 'FAILED.png'), fullPage: true }).catch(() => {});
    await browser.close();
    process.exit(1);
  }
}
const shot = (name) => page.screenshot({ path: join(SHOTS, name + '.png'), fullPage: true });

async function api(method, path, { key, body } = {}) {
  const headers = { 'content-type': 'application/json' };
  if (key) headers['x-api-key'] = key; else headers.authorization = 'Bearer ' + TOKEN;
  const r = await fetch(BASE + path, { method, headers, body: body && JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : null };
}
async function track(key, event) {
  const r = await api('POST', '/v1/events/track', { key, body: event });
  assert.equal(r.status, 202, `track ${JSON.stringify(event)}: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json.id;
}

let projectBase, publishable, secret, projectId;
const latencies = [];

await step('sign-in page refuses a wrong token and explains', async () => {
  await page.goto(BASE + '/dashboard/');
  assert.match(page.url(), /\/dashboard\/login\?next=/);
  await shot('01-sign-in');
  await page.fill('input[name=token]', 'wrong-token');
  await page.click('button[type=submit]');
  await page.waitForSelector('.banner.error');
  assert.match(await page.textContent('.banner.error'), /not the admin token/);
});

await step('sign in with the admin token; the session cookie is HttpOnly and SameSite=Strict', async () => {
  await page.fill('input[name=token]', TOKEN);
  await page.click('button[type=submit]');
  await page.waitForURL(BASE + '/dashboard/');
  const [c] = (await context.cookies()).filter((c) => c.name === 'boost_session');
  assert.ok(c && c.httpOnly && c.sameSite === 'Strict', JSON.stringify(c));
  assert.equal(await page.evaluate(() => document.cookie.includes('boost_session')), false);
  await shot('02-overview');
});

await step('create an organization and a project', async () => {
  await page.fill('form[action="/dashboard/organizations"] input[name=name]', 'E2E Games');
  await page.click('form[action="/dashboard/organizations"] button');
  await page.waitForSelector('.banner.notice');
  const card = page.locator('section.card', { hasText: 'E2E Games' });
  await card.locator('input[name=name]').fill('Quest Shop');
  await card.locator('button', { hasText: 'Create project' }).click();
  await page.waitForURL(/\/dashboard\/projects\/[0-9a-f-]+\/start\?created=1$/);
  projectBase = new URL(page.url()).pathname.replace(/\/start$/, '');
  projectId = projectBase.split('/').pop();
  assert.match(await page.textContent('.banner.notice'), /Quest Shop created/);
  await shot('03-get-started-empty');
});

await step('create a publishable key, read it once, never again', async () => {
  await page.goto(BASE + projectBase + '/keys');
  await shot('04-keys-empty');
  await page.fill('#create-key input[name=name]', 'Web app');
  await page.selectOption('#create-key select[name=type]', 'publishable');
  await page.click('#create-key button');
  await page.waitForSelector('#new-key');
  publishable = (await page.textContent('#new-key-value')).trim();
  assert.match(publishable, /^pk_live_[0-9a-f]{64}$/);
  assert.match(await page.textContent('#new-key'), /will not be shown again/);
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
  await page.click('#new-key button[data-copy]');
  await page.waitForSelector('#new-key button:has-text("Copied")');
  await shot('05-key-created');
  await page.goto(BASE + projectBase + '/keys');
  const html = await page.content();
  assert.ok(!html.includes(publishable), 'plaintext shown again');
  assert.ok(html.includes(publishable.slice(0, 12) + '…'), 'prefix missing');
  const sk = await api('POST', `/v1/projects/${projectId}/api-keys`, { body: { name: 'Server', type: 'secret' } });
  secret = sk.json.key;
});

await step('live tail shows each event sent within 1 s, as text', async () => {
  await page.goto(BASE + projectBase + '/events');
  await page.waitForSelector('#tail-empty');
  await shot('06-events-empty');
  await page.waitForSelector('#live-state.live');
  for (let i = 0; i < 5; i++) {
    const t0 = Date.now();
    const id = await track(publishable, { event: 'page_view', userId: `player-${i % 3}`, properties: { path: `/level/${i}` } });
    await page.waitForSelector(`#tail tr[data-id="${id}"]`, { timeout: 1000 });
    latencies.push(Date.now() - t0);
  }
  const evil = '<script>window.__xss=1</script>';
  const t0 = Date.now();
  const id = await track(publishable, { event: evil, anonymousId: '<img src=x onerror="window.__xss=2">' });
  await page.waitForSelector(`#tail tr[data-id="${id}"]`, { timeout: 1000 });
  latencies.push(Date.now() - t0);
  assert.equal(await page.textContent(`#tail tr[data-id="${id}"] .event-name`), evil);
  assert.equal(await page.evaluate(() => window.__xss), undefined, 'markup in an event ran');
  // Processed: settled as it was appended (an event whose rules run later
  // moves from pending to processed in place).
  await page.waitForSelector(`#tail tr[data-id="${id}"] .status.processed`, { timeout: 10000 });
});

await step('a purchase from the server shows as processed', async () => {
  const id = await track(secret, { event: 'purchase', userId: 'player-2', properties: { orderId: 'o-2', amount: 1999, currency: 'EUR' } });
  await page.waitForSelector(`#tail tr[data-id="${id}"] .status.processed`, { timeout: 10000 });
});

await step('a refused event shows as failed with its reason', async () => {
  const id = await track(secret, { event: 'purchase', userId: 'player-0', properties: { orderId: 'o-1', amount: 999, currency: 'XYZ' } });
  await page.waitForSelector(`#tail tr[data-id="${id}"] .status.failed`, { timeout: 10000 });
  assert.match(await page.textContent(`#tail tr[data-id="${id}"]`), /unsupported currency "XYZ"/);
});

await step('pause holds new events back; resume shows them', async () => {
  await page.click('#pause');
  await page.waitForSelector('#live-state.paused');
  const id = await track(publishable, { event: 'signup', userId: 'player-1' });
  await page.waitForSelector('#live-state:has-text("1 new")', { timeout: 5000 });
  assert.equal(await page.locator(`#tail tr[data-id="${id}"]`).count(), 0);
  await page.click('#pause');
  await page.waitForSelector(`#tail tr[data-id="${id}"]`, { timeout: 1000 });
});

await step('"send a test event" goes through the pipeline', async () => {
  await page.click('#test-event button');
  await page.waitForSelector('#tail tr:has(.event-name:text-is("dashboard_test"))', { timeout: 5000 });
  await shot('07-live-events');
});

await step('filter the tail by type and user', async () => {
  await page.fill('.filters input[name=type]', 'page_view');
  await page.fill('.filters input[name=user]', 'player-1');
  await page.click('.filters button');
  await page.waitForSelector('#live-state.live');
  const rows = await page.locator('#tail tbody tr').count();
  assert.equal(rows, 2, 'player-1 sent two page views');
  const other = await track(publishable, { event: 'page_view', userId: 'player-2' });
  const mine = await track(publishable, { event: 'page_view', userId: 'player-1' });
  await page.waitForSelector(`#tail tr[data-id="${mine}"]`, { timeout: 1000 });
  assert.equal(await page.locator(`#tail tr[data-id="${other}"]`).count(), 0);
});

await step('event detail', async () => {
  await page.locator('#tail tbody tr').first().locator('a.event-name').click();
  await page.waitForSelector('dl.facts');
  assert.match(await page.textContent('main'), /Userplayer-1[\s\S]*Properties/);
  await shot('08-event-detail');
});

await step('identify a user with traits, search and open the profile', async () => {
  const r = await api('POST', '/v1/identify', { key: secret, body: { userId: 'player-1', traits: { plan: 'pro', bio: '<b>boss</b>' } } });
  assert.equal(r.status, 202);
  await page.goto(BASE + projectBase + '/users');
  await page.fill('input[name=q]', 'player-');
  await page.click('form.inline button');
  await page.waitForSelector('table a:text-is("player-1")');
  assert.equal(await page.locator('table tbody tr').count(), 3);
  await shot('09-users');
  for (let i = 0; i < 50; i++) {
    await page.goto(BASE + projectBase + '/users/profile?id=player-1');
    if ((await page.textContent('main')).includes('"plan": "pro"')) break;
    await page.waitForTimeout(200);
  }
  const main = await page.textContent('main');
  assert.match(main, /"plan": "pro"/);
  assert.match(main, /"bio": "<b>boss<\/b>"/, 'traits shown as text');
  await shot('10-user-profile');
});

await step('analytics show the counts sent', async () => {
  await page.goto(BASE + projectBase + '/analytics?range=24h');
  await page.waitForSelector('#chart-events svg rect');
  // 5 + 1 + 1 page views (the filtered tail sent two more), 1 signup.
  const total = (name) => page.textContent(`#legend-events li[data-series="${name}"] .total`);
  assert.equal(await total('page_view'), '7');
  assert.equal(await total('signup'), '1');
  assert.equal(await page.textContent('#top-events tbody tr:first-child td.event-name'), 'page_view');
  assert.equal(await page.textContent('#top-events tbody tr:first-child td:nth-child(2)'), '7');
  assert.equal(await page.textContent('#top-events tbody tr:first-child td:nth-child(3)'), '3');
  await page.waitForSelector('#chart-users svg rect');
  // Revenue per currency: the EUR purchase; the XYZ one failed and is not revenue.
  await page.waitForSelector('#legend-revenue li');
  assert.equal(await page.textContent('#legend-revenue li[data-series="EUR"] .total'), '19.99');
  assert.equal(await page.locator('#legend-revenue li').count(), 1);
  await shot('11-analytics');
  // Buckets are labelled in the chosen time zone: in Tokyo the last day bucket is today there.
  await page.goto(BASE + projectBase + '/analytics?range=7d&bucket=day&tz=Asia/Tokyo');
  await page.waitForSelector('#chart-events svg title', { state: 'attached' });
  const titles = await page.locator('#chart-events svg title').allTextContents();
  const tokyo = new Intl.DateTimeFormat('en-GB', { timeZone: 'Asia/Tokyo', month: '2-digit', day: '2-digit' })
    .formatToParts(new Date()).reduce((a, p) => ({ ...a, [p.type]: p.value }), {});
  assert.equal(titles[titles.length - 1].split('\n')[0], `${tokyo.month}-${tokyo.day}`);
});

await step('funnel builder', async () => {
  await page.fill('#funnel-form input[aria-label="Funnel step 1"]', 'page_view');
  await page.fill('#funnel-form input[aria-label="Funnel step 2"]', 'signup');
  await page.click('#funnel-form button');
  await page.waitForSelector('#funnel');
  const cells = await page.locator('#funnel tbody tr td:nth-child(2)').allTextContents();
  assert.deepEqual(cells, ['3', '1']);
  await page.locator('#funnel').scrollIntoViewIfNeeded();
  await shot('12-funnel-retention');
});

await step('get-started snippets are filled in with a fresh publishable key and the server URL', async () => {
  await page.goto(BASE + projectBase + '/start');
  await page.click('form[action$="/start"] button');
  await page.waitForSelector('#new-key');
  const key = (await page.textContent('#new-key-value')).trim();
  const core = await page.textContent('#s-core');
  assert.ok(core.includes(`apiKey: '${key}', endpoint: '${BASE}'`), core);
  assert.ok((await page.textContent('#s-react')).includes(key));
  assert.ok((await page.textContent('#s-go')).includes(BASE));
  await shot('13-get-started');
});

await step('pipeline health', async () => {
  await page.goto(BASE + '/dashboard/health');
  await page.waitForSelector('#h-deps tbody tr');
  assert.match(await page.textContent('#h-overall'), /Healthy/);
  assert.match(await page.textContent('#h-failed'), /^[1-9]/, 'the XYZ purchase failed within the hour');
  await page.waitForFunction(() => document.getElementById('h-rate').textContent !== '…', null, { timeout: 5000 });
  await shot('14-health');
});

await step('revoke the key with confirmation; the next track answers 401', async () => {
  await page.goto(BASE + projectBase + '/keys');
  await page.locator('#keys tr', { hasText: 'Web app' }).locator('a', { hasText: 'Revoke' }).click();
  await page.waitForSelector('#confirm-revoke');
  await shot('15-revoke-confirm');
  await page.click('#confirm-revoke');
  await page.waitForSelector('.banner.notice');
  assert.match(await page.textContent('#keys tr:has-text("Web app")'), /revoked/);
  await shot('16-keys-revoked');
  const r = await api('POST', '/v1/events/track', { key: publishable, body: { event: 'page_view', userId: 'player-1' } });
  assert.equal(r.status, 401, JSON.stringify(r.json));
});

await step('sign out', async () => {
  await page.click('.signout button');
  await page.waitForURL(/\/dashboard\/login\?signedout=1$/);
  await page.goto(BASE + projectBase + '/events');
  assert.match(page.url(), /\/dashboard\/login\?next=/);
});

await browser.close();
latencies.sort((a, b) => a - b);
console.log(`live tail: ${latencies.length} events, send→row latency min ${latencies[0]} ms, ` +
  `median ${latencies[latencies.length >> 1]} ms, max ${latencies[latencies.length - 1]} ms`);
console.log(`${passed} passed, 0 failed; screenshots in ${SHOTS}`);
