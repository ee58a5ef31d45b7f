// What the end-to-end tests need from a running Boost: its address and keys
// (from the environment compat/run.sh sets), a recording proxy in front of it
// (so a failure can say what Boost answered the client), and polling of the
// query API until what a client sent is stored.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { decodeBody } from './wire.mjs';

const ENV = ['BOOST_URL', 'BOOST_PROJECT_ID', 'BOOST_ADMIN_TOKEN', 'BOOST_PUBLISHABLE_KEY', 'BOOST_SECRET_KEY'];

/** How long a check waits for what was sent to be readable (ms). */
export const TIMEOUT = Number(process.env.COMPAT_TIMEOUT_MS ?? 15_000);

/**
 * The names Boost stores Segment/RudderStack page and screen calls under:
 * the contract's callEvents (contract/ingestion.json), Boost's own SDKs'
 * page_view, so page views from every SDK count together.
 */
const CONTRACT = JSON.parse(readFileSync(new URL('../../../contract/ingestion.json', import.meta.url), 'utf8'));
export const PAGE_EVENT = CONTRACT.callEvents.page;
export const SCREEN_EVENT = CONTRACT.callEvents.screen;

/** The environment, or a skip reason for node:test when it is not set. */
export function boostEnv() {
  const missing = ENV.filter((k) => !process.env[k]);
  if (missing.length) return { skip: `set ${missing.join(', ')} (bash compat/run.sh does)` };
  return {
    skip: false,
    url: process.env.BOOST_URL.replace(/\/+$/, ''),
    project: process.env.BOOST_PROJECT_ID,
    admin: process.env.BOOST_ADMIN_TOKEN,
    pk: process.env.BOOST_PUBLISHABLE_KEY,
    sk: process.env.BOOST_SECRET_KEY,
  };
}

/** A short random id for this run, so every test reads back only its own data. */
export const runId = () => randomBytes(5).toString('hex');

/**
 * A proxy on loopback in front of Boost that records every request a client
 * makes and what Boost answered: { method, url, headers, body (Buffer),
 * decoded (JSON or text), status, answer (text) }.
 */
export async function startProxy(target) {
  const exchanges = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const headers = { ...req.headers, host: new URL(target).host };
      const up = http.request(`${target}${req.url}`, { method: req.method, headers }, (ur) => {
        const out = [];
        ur.on('data', (c) => out.push(c));
        ur.on('end', () => {
          const answer = Buffer.concat(out);
          const rec = { method: req.method, url: req.url, rawHeaders: req.rawHeaders, body };
          exchanges.push({
            method: req.method,
            url: req.url,
            headers: req.headers,
            body,
            decoded: decodeBody(rec).json,
            status: ur.statusCode,
            answer: answer.toString('utf8'),
          });
          res.writeHead(ur.statusCode, ur.headers);
          res.end(answer);
        });
      });
      up.on('error', (err) => {
        exchanges.push({ method: req.method, url: req.url, headers: req.headers, body, status: 0, answer: String(err) });
        res.writeHead(502);
        res.end();
      });
      up.end(body);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    exchanges,
    close: () => {
      server.closeAllConnections?.();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** One line per exchange that was not answered 2xx, e.g. "POST /v1/batch answered 404 {...}". */
export function refusals(exchanges, filter = () => true) {
  return exchanges
    .filter((x) => x.method !== 'OPTIONS' && filter(x) && !(x.status >= 200 && x.status < 300))
    .map((x) => `${x.method} ${x.url} answered ${x.status} ${x.answer.trim().slice(0, 200)}`);
}

/** Fails at once (rather than polling in vain) when every delivery of a client was refused. */
export function assertSomeDelivered(exchanges, what, filter = () => true) {
  const sent = exchanges.filter((x) => x.method !== 'OPTIONS' && filter(x));
  if (sent.length === 0) {
    const preflights = exchanges.filter((x) => x.method === 'OPTIONS' && filter(x) && !(x.status >= 200 && x.status < 300));
    if (preflights.length > 0) {
      const lines = [...new Set(preflights.map((x) => `OPTIONS ${x.url} answered ${x.status}`))];
      assert.fail(`${what}: Boost refused the CORS preflights, so the browser never sent the events:\n  ${lines.slice(0, 5).join('\n  ')}`);
    }
    assert.fail(`${what}: the client sent nothing to Boost`);
  }
  const ok = sent.filter((x) => x.status >= 200 && x.status < 300);
  if (ok.length === 0) {
    const lines = [...new Set(refusals(sent))];
    assert.fail(`${what}: Boost refused every request the client sent:\n  ${lines.slice(0, 5).join('\n  ')}`);
  }
}

async function getJSON(env, path) {
  const res = await fetch(`${env.url}${path}`, { headers: { authorization: `Bearer ${env.admin}` } });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body };
}

/** Every stored event matching the query (userId, anonymousId, event, …), newest first. */
export async function listEvents(env, query) {
  const out = [];
  let cursor;
  for (let page = 0; page < 50; page++) {
    const q = new URLSearchParams({ ...query, limit: '1000', ...(cursor ? { cursor } : {}) });
    const { status, body } = await getJSON(env, `/v1/projects/${env.project}/events?${q}`);
    assert.equal(status, 200, `GET /v1/projects/{id}/events?${q} answered ${status} ${JSON.stringify(body)}`);
    out.push(...body.data);
    if (!body.nextCursor) break;
    cursor = body.nextCursor;
  }
  return out;
}

/** The end user, or null when Boost does not know it (404). */
export async function getUser(env, externalId) {
  const { status, body } = await getJSON(env, `/v1/projects/${env.project}/users/${encodeURIComponent(externalId)}`);
  if (status === 404) return null;
  assert.equal(status, 200, `GET /v1/projects/{id}/users/${externalId} answered ${status} ${JSON.stringify(body)}`);
  return body;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls until `check()` returns without throwing, or the timeout passes; then
 * throws the last failure.
 */
export async function eventually(check, timeout = TIMEOUT, interval = 250) {
  const t0 = Date.now();
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() - t0 > timeout) {
        err.message = `after ${timeout} ms: ${err.message}`;
        throw err;
      }
    }
    await sleep(interval);
  }
}

/**
 * Waits until each expected item is stored exactly once and returns the
 * stored events in the same order. `expected` items are { key, match(ev) }
 * where key names the item in messages; `query` selects the candidates.
 */
export async function waitStoredOnce(env, query, expected, timeout = TIMEOUT) {
  return eventually(async () => {
    const events = await listEvents(env, query);
    return expected.map((e) => {
      const found = events.filter(e.match);
      assert.ok(found.length > 0, `${e.key}: not stored (${events.length} events stored for ${JSON.stringify(query)}: ${summarize(events)})`);
      assert.equal(found.length, 1, `${e.key}: stored ${found.length} times`);
      return found[0];
    });
  }, timeout);
}

export function summarize(events) {
  if (events.length === 0) return 'none';
  return events
    .slice(0, 12)
    .map((e) => e.event)
    .join(', ') + (events.length > 12 ? ', …' : '');
}

/** Asserts that no stored event matches, after giving it `grace` ms to arrive. */
export async function assertNotStored(env, query, what, match, grace = 1500) {
  await sleep(grace);
  const events = await listEvents(env, query);
  const found = events.filter(match);
  assert.equal(found.length, 0, `${what} must not be stored, but it is: ${JSON.stringify(found[0])}`);
}

/** |a − b| ≤ ms, for two times (ISO strings, Dates or epoch ms). */
export function assertNear(actual, expected, what, ms = 1000) {
  const a = new Date(actual).getTime();
  const e = new Date(expected).getTime();
  assert.ok(Number.isFinite(a), `${what}: ${actual} is not a time`);
  assert.ok(Math.abs(a - e) <= ms, `${what}: ${new Date(a).toISOString()} is not within ${ms} ms of ${new Date(e).toISOString()}`);
}

/** Asserts every key of `expected` is in `actual` with a deeply equal value. */
export function assertIncludes(actual, expected, what) {
  assert.ok(actual && typeof actual === 'object', `${what}: ${JSON.stringify(actual)} is not an object`);
  for (const [k, v] of Object.entries(expected)) {
    assert.deepEqual(actual[k], v, `${what}: ${k} is ${JSON.stringify(actual[k])}, expected ${JSON.stringify(v)}`);
  }
}

/** True when `value` occurs anywhere inside `obj` (as a value, or as a key with that value). */
export function containsDeep(obj, value) {
  if (obj === value) return true;
  if (typeof value === 'object' && value !== null) {
    try {
      assert.deepEqual(obj, value);
      return true;
    } catch {
      /* not this one */
    }
  }
  if (obj && typeof obj === 'object') return Object.values(obj).some((v) => containsDeep(v, value));
  return false;
}

/** The user's traits include `traits` and its anonymous ids include `anonymousIds`. */
export async function assertUser(env, userId, { traits = {}, anonymousIds = [] }, what) {
  return eventually(async () => {
    const user = await getUser(env, userId);
    assert.ok(user, `${what}: GET /v1/projects/{id}/users/${userId} answered 404 (no such end user)`);
    assertIncludes(user.traits ?? {}, traits, `${what}: traits of ${userId}`);
    for (const a of anonymousIds) {
      assert.ok((user.anonymousIds ?? []).includes(a), `${what}: anonymousIds of ${userId} are ${JSON.stringify(user.anonymousIds)}, missing ${a}`);
    }
    return user;
  });
}
