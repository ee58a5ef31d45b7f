// Failure-injection sender for @gamify/node, driven by sdk/integration.sh
// (the Go SDK's counterpart is sdk/go/internal/soak).
//
//   node integration/soak.mjs --url=http://127.0.0.1:3000 --key=sk_live_… --n=2000 --rate=150 \
//     --out=node.jsonl [--batch=100] [--max-retries=7] [--max-retry-delay=10000] \
//     [--max-retry-time=60000] [--expect=net,429,503] [--timeout=240000]
//
// Sends n events (tracks, some purchases and identifies, some anonymous) at
// a steady pace through @gamify/node, printing "progress enqueued=E
// delivered=D" lines so the script can kill the server at a chosen point;
// then closes the client and writes one JSON record per event (what was
// sent and the server ids reported by onDelivered), which `soak verify`
// reads back through the admin API. Exits 1 if any event was reported lost
// (onError), not delivered, given two ids, if a request came before the
// server's Retry-After had elapsed, or if an --expect'ed kind of failure
// (network error, 429, 503) never happened.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Gamify } from '@gamify/node';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    key: { type: 'string' },
    n: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '0' },
    out: { type: 'string' },
    run: { type: 'string' },
    phase: { type: 'string', default: 'soak' },
    batch: { type: 'string' },
    'max-retries': { type: 'string' },
    'max-retry-delay': { type: 'string' },
    'max-retry-time': { type: 'string' },
    expect: { type: 'string', default: '' },
    timeout: { type: 'string', default: '240000' },
  },
});
const n = Number(opt.n);
const rate = Number(opt.rate);
if (!opt.url || !opt.key || !opt.out || !(n > 0)) {
  console.error('soak.mjs: --url, --key, --out and a positive --n are required');
  process.exit(2);
}
const run = opt.run ?? `node-${Date.now()}`;
const phase = opt.phase;
const deadline = Date.now() + Number(opt.timeout);
const numOpt = (name) => (opt[name] !== undefined ? Number(opt[name]) : undefined);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// What went over the wire: answers by status, and retries that came before
// the server's Retry-After had elapsed.
const statuses = {};
const early = [];
let notAfter = 0;
let raStatus = 0;
const SLACK = 25; // ms of timer granularity
async function wiredFetch(url, init) {
  const start = Date.now();
  if (notAfter && start + SLACK < notAfter) {
    early.push(`request at ${new Date(start).toISOString()}, ${notAfter - start} ms before the end of the Retry-After of a ${raStatus}`);
  }
  notAfter = 0;
  let res;
  try {
    res = await fetch(url, init);
  } catch (err) {
    statuses.net = (statuses.net ?? 0) + 1;
    throw err;
  }
  statuses[res.status] = (statuses[res.status] ?? 0) + 1;
  const ra = res.headers.get('retry-after');
  if (ra && res.status >= 400 && /^\d+$/.test(ra.trim()) && Number(ra) > 0) {
    notAfter = Date.now() + Number(ra) * 1000;
    raStatus = res.status;
  }
  return res;
}

const records = new Map(); // messageId -> record
const lost = [];
let delivered = 0;
let enqueued = 0;
const gamify = new Gamify({
  apiKey: opt.key,
  endpoint: opt.url,
  fetch: wiredFetch,
  maxQueueSize: Math.max(n, 10_000),
  ...(opt.batch ? { flushAt: Number(opt.batch), maxBatchSize: Number(opt.batch) } : {}),
  ...(numOpt('max-retries') !== undefined ? { maxRetries: numOpt('max-retries') } : {}),
  ...(numOpt('max-retry-delay') !== undefined ? { maxRetryDelay: numOpt('max-retry-delay') } : {}),
  ...(numOpt('max-retry-time') !== undefined ? { maxRetryTime: numOpt('max-retry-time') } : {}),
  onError: (err) => lost.push(err),
  onDelivered: (events) => {
    for (const d of events) {
      const r = records.get(d.messageId);
      if (!r) {
        lost.push(new Error(`onDelivered named an unknown messageId ${d.messageId}`));
        continue;
      }
      if (r.ids.length === 0) delivered++;
      if (!r.ids.includes(d.id)) r.ids.push(d.id);
    }
  },
});

const progress = setInterval(() => console.log(`progress enqueued=${enqueued} delivered=${delivered}`), 200);

const trackErrors = [];
const order = [];
const t0 = Date.now();
for (let i = 0; i < n; i++) {
  if (rate > 0) {
    const wait = t0 + (i / rate) * 1000 - Date.now();
    if (wait > 0) await sleep(wait);
  } else if (i % 200 === 0) {
    await sleep(0); // let the SDK's requests start
  }
  if (Date.now() > deadline) {
    trackErrors.push(`timeout: only ${i} of ${n} events queued`);
    break;
  }
  const timestamp = new Date().toISOString();
  const userId = `soak-${run}-u${i % 17}`;
  const base = { run, phase, sdk: 'node', seq: i };
  const rec = { sdk: 'node', messageId: '', event: '', userId, properties: null, timestamp, ids: [] };
  try {
    if (i % 10 === 3) {
      const p = { userId, orderId: `${run}-o${i}`, amount: 100 + i, currency: 'eur', properties: base, timestamp };
      rec.event = 'purchase';
      rec.properties = { ...base, orderId: p.orderId, amount: p.amount, currency: 'EUR' };
      rec.messageId = gamify.purchase(p);
    } else if (i % 25 === 7) {
      const traits = { run, seq: i, plan: i % 2 ? 'pro' : 'free' };
      rec.event = '$identify';
      rec.anonymousId = `soak-${run}-anon${i}`;
      rec.properties = traits;
      rec.messageId = gamify.identify({ userId, anonymousId: rec.anonymousId, traits, timestamp });
    } else {
      const properties = { ...base, note: 'événement ✓ <b>&</b>', nested: { list: [i, 'x', true, null], ratio: 0.5 } };
      rec.event = 'soak_event';
      rec.properties = properties;
      if (i % 9 === 5) {
        delete rec.userId;
        rec.anonymousId = `soak-${run}-anon${i}`;
        rec.messageId = gamify.track({ anonymousId: rec.anonymousId, event: 'soak_event', properties, timestamp });
      } else {
        rec.messageId = gamify.track({ userId, event: 'soak_event', properties, timestamp });
      }
    }
  } catch (err) {
    trackErrors.push(`event ${i}: ${err.code ?? ''} ${err.message}`);
    continue;
  }
  // onDelivered can only name an event after this tick, so recording it
  // now is in time.
  records.set(rec.messageId, rec);
  order.push(rec);
  enqueued++;
}

await gamify.close({ timeout: Math.max(1000, deadline - Date.now()) });
clearInterval(progress);
writeFileSync(opt.out, order.map((r) => JSON.stringify(r)).join('\n') + '\n');

console.log(`progress enqueued=${enqueued} delivered=${delivered}`);
console.log(
  `node sender: ${n} events in ${Date.now() - t0} ms; enqueued ${enqueued}, delivered ${delivered}, lost ${lost.length}; requests by answer ${JSON.stringify(statuses)}`,
);
const problems = [...trackErrors];
for (const e of lost.slice(0, 5)) problems.push(`onError: ${e.code ?? ''} ${e.message}`);
if (lost.length > 5) problems.push(`… and ${lost.length - 5} more onError reports`);
if (delivered !== n) problems.push(`${delivered} of ${n} events were reported delivered`);
for (const r of order) if (r.ids.length > 1) problems.push(`messageId ${r.messageId} was given several ids: ${r.ids.join(', ')}`);
for (const e of early) problems.push(`Retry-After not honoured: ${e}`);
for (const want of opt.expect.split(',').map((s) => s.trim()).filter(Boolean)) {
  if (!statuses[want]) problems.push(`expected at least one "${want}" answer, saw ${JSON.stringify(statuses)}: the fault was not injected while sending`);
}
if (problems.length > 0) {
  console.error(`soak send (node): FAIL: ${problems.join('\n  ')}`);
  process.exitCode = 1;
} else {
  console.log(`node sender: OK (${n} events, every one delivered once, Retry-After honoured)`);
}
