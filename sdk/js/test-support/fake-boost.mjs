// A small, faithful stand-in for the Boost ingestion API, used by the unit
// tests (and, via fake-boost-cli.mjs, to rehearse the browser/integration
// suites locally). It implements the contract the SDKs are written against:
//
//   POST /v1/events/batch   x-api-key | Authorization: Bearer | body.writeKey
//                           JSON (any content type, text/plain included)
//                           <= 500 items, <= 512 KB, per-item validation,
//                           202 accepted|partial, 400 invalid_batch, 400, 401, 413
//                           messageId dedupe: id = f(project, messageId)
//   OPTIONS (CORS)          Access-Control-Allow-Origin: *, allowed headers
//                           content-type, x-api-key, authorization
//   GET /v1/projects/{projectId}/events/{id}   Authorization: Bearer <admin token>
//
// Faults can be queued on `server.faults` (consumed one per batch request):
//   { status: 503, retryAfter: 1 } | { status: 429, retryAfter: 0 }
//   { status: 401 } | { network: true } (socket destroyed) | { delayMs: 200 }
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';

// The server's rules, as the server exports them (contract/ingestion.json,
// generated from its domain package): the stand-in cannot drift from them.
const CONTRACT = JSON.parse(fs.readFileSync(new URL('../../../contract/ingestion.json', import.meta.url), 'utf8'));
const LIMITS = CONTRACT.limits;
const TRUSTED = new Set(CONTRACT.trustedEvents);
const COMMERCE = new Set(CONTRACT.commerceEvents);

const hex = (n) => crypto.randomBytes(n).toString('hex');
const chars = (s) => [...s].length;

function deriveId(projectId, messageId) {
  const h = crypto.createHash('sha256').update(`${projectId}:${messageId}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function validateItem(item, secret) {
  const bad = (field, message, code = 'invalid_request') => ({ code, field, message });
  if (item === null || typeof item !== 'object' || Array.isArray(item)) return bad('', 'item must be an object');
  const { event, userId, anonymousId, properties, messageId, timestamp } = item;
  if (typeof event !== 'string' || event.trim() === '') return bad('event', 'event is required');
  if (chars(event) > LIMITS.maxNameChars) return bad('event', `event must be at most ${LIMITS.maxNameChars} characters`);
  if (userId !== undefined && (typeof userId !== 'string' || chars(userId) > LIMITS.maxIdChars)) return bad('userId', 'userId must be a string of at most 255 characters');
  if (anonymousId !== undefined && (typeof anonymousId !== 'string' || chars(anonymousId) > LIMITS.maxIdChars)) return bad('anonymousId', 'anonymousId must be a string of at most 255 characters');
  if (!userId && !anonymousId) return bad('userId', 'userId or anonymousId is required');
  if (properties !== undefined && (properties === null || typeof properties !== 'object' || Array.isArray(properties))) return bad('properties', 'properties must be an object');
  if (properties !== undefined && Buffer.byteLength(JSON.stringify(properties)) > LIMITS.maxObjectBytes) return bad('properties', 'properties exceed 32 KB');
  if (messageId !== undefined && typeof messageId !== 'string') return bad('messageId', 'messageId must be a string');
  if (timestamp !== undefined && Number.isNaN(Date.parse(timestamp))) return bad('timestamp', 'timestamp must be ISO 8601');
  const name = event.trim().toLowerCase();
  if (TRUSTED.has(name) && !secret) return bad('event', `event "${event}" may only be sent with a secret key`, 'forbidden_event');
  if (COMMERCE.has(name)) {
    const p = properties ?? {};
    if (typeof p.orderId !== 'string' || p.orderId === '') return bad('properties.orderId', 'orderId is required');
    if (!Number.isInteger(p.amount) || p.amount < 0 || p.amount > LIMITS.maxAmount) return bad('properties.amount', `amount must be an integer from 0 to ${LIMITS.maxAmount} (cents)`);
    if (typeof p.currency !== 'string' || !/^[A-Za-z]{3}$/.test(p.currency)) return bad('properties.currency', 'currency must be 3 letters');
  }
  return null;
}

export async function startFakeBoost(options = {}) {
  const projectId = options.projectId ?? `proj_${hex(6)}`;
  const publishableKey = options.publishableKey ?? `pk_live_${hex(32)}`;
  const secretKey = options.secretKey ?? `sk_live_${hex(32)}`;
  const adminToken = options.adminToken ?? `admin_${hex(16)}`;
  const keys = new Map([
    [publishableKey, { projectId, secret: false }],
    [secretKey, { projectId, secret: true }],
  ]);

  const state = {
    projectId,
    publishableKey,
    secretKey,
    adminToken,
    /** id -> stored event */
    events: new Map(),
    /** messageId -> number of times an item with it was accepted (dedupe makes the store keep one) */
    receipts: new Map(),
    /** every batch request: { headers, contentType, body, status, items } */
    requests: [],
    faults: [],
    revoked: new Set(),
    maxBodyBytes: options.maxBodyBytes ?? LIMITS.maxBodyBytes,
    maxItems: LIMITS.maxBatchItems,
    /** extra per-item rule, (item) => null | { code, field, message }, to emulate server-side checks */
    validate: null,
    concurrent: 0,
    maxConcurrent: 0,
    url: '',
    close: () => {},
  };

  const cors = (res) => {
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Allow-Headers', 'content-type, x-api-key, authorization');
    res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
    res.setHeader('Access-Control-Expose-Headers', 'Retry-After');
    res.setHeader('Access-Control-Max-Age', '600');
  };
  const send = (res, status, body, headers = {}) => {
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    res.setHeader('content-type', 'application/json; charset=utf-8');
    res.writeHead(status);
    res.end(body === undefined ? '' : JSON.stringify(body));
  };
  const error = (res, status, code, message, headers) => send(res, status, { error: { code, message } }, headers);

  async function readBody(req, limit) {
    const chunks = [];
    let size = 0;
    for await (const c of req) {
      size += c.length;
      if (size > limit) return { tooLarge: true };
      chunks.push(c);
    }
    return { text: Buffer.concat(chunks).toString('utf8') };
  }

  async function batch(req, res) {
    if (options.log) {
      res.on('finish', () => {
        const l = state.requests.at(-1);
        console.error(
          `[fake-boost] POST batch ${l?.contentType ?? '-'} items=${l?.body?.batch?.length ?? '?'}${l?.body?.writeKey ? ' writeKey' : ''} -> ${res.statusCode}`,
        );
      });
    }
    state.concurrent++;
    state.maxConcurrent = Math.max(state.maxConcurrent, state.concurrent);
    try {
      return await batchInner(req, res);
    } finally {
      state.concurrent--;
    }
  }

  async function batchInner(req, res) {
    cors(res);
    const log = { headers: req.headers, contentType: req.headers['content-type'], body: undefined, status: 0 };
    state.requests.push(log);
    const fault = state.faults.shift();
    if (fault?.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
    const { text, tooLarge } = await readBody(req, state.maxBodyBytes);
    if (fault?.network) {
      log.status = 'network';
      req.socket.destroy();
      return;
    }
    if (tooLarge) {
      log.status = 413;
      res.setHeader('connection', 'close');
      return error(res, 413, 'body_too_large', `request body exceeds ${state.maxBodyBytes} bytes`);
    }
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      log.status = 400;
      return error(res, 400, 'invalid_request', 'request body is not valid JSON');
    }
    log.body = body;
    if (fault?.status) {
      log.status = fault.status;
      const h = fault.retryAfter !== undefined ? { 'Retry-After': String(fault.retryAfter) } : {};
      return error(res, fault.status, `fault_${fault.status}`, 'injected fault', h);
    }
    const header = req.headers['x-api-key'] ?? (/^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]);
    const key = header ?? (typeof body?.writeKey === 'string' ? body.writeKey : undefined);
    const auth = key && !state.revoked.has(key) ? keys.get(key) : undefined;
    if (!auth) {
      log.status = 401;
      return error(res, 401, 'unauthorized', 'missing, invalid or revoked API key');
    }
    if (!body || typeof body !== 'object' || !Array.isArray(body.batch) || body.batch.length === 0) {
      log.status = 400;
      return error(res, 400, 'invalid_request', 'batch must be a non-empty array');
    }
    if (body.batch.length > state.maxItems) {
      log.status = 400;
      return error(res, 400, 'invalid_request', `batch has more than ${state.maxItems} items`);
    }
    if (typeof body.sentAt !== 'string' || Number.isNaN(Date.parse(body.sentAt))) {
      log.status = 400;
      return error(res, 400, 'invalid_request', 'sentAt must be an ISO 8601 timestamp');
    }
    const accepted = [];
    const rejected = [];
    body.batch.forEach((item, index) => {
      const problem = validateItem(item, auth.secret) ?? state.validate?.(item) ?? null;
      if (problem) return rejected.push({ index, ...problem });
      const messageId = item.messageId ?? crypto.randomUUID();
      const id = deriveId(auth.projectId, messageId);
      state.receipts.set(messageId, (state.receipts.get(messageId) ?? 0) + 1);
      if (!state.events.has(id)) {
        state.events.set(id, {
          id,
          projectId: auth.projectId,
          event: item.event,
          userId: item.userId ?? null,
          anonymousId: item.anonymousId ?? null,
          properties: item.properties ?? {},
          timestamp: item.timestamp ?? body.sentAt,
          messageId,
          receivedAt: new Date().toISOString(),
          status: 'pending',
        });
      }
      accepted.push({ index, id });
    });
    if (accepted.length === 0) {
      log.status = 400;
      return send(res, 400, {
        accepted,
        rejected,
        error: { code: 'invalid_batch', message: 'every item of the batch was rejected' },
      });
    }
    log.status = 202;
    return send(res, 202, { status: rejected.length ? 'partial' : 'accepted', accepted, rejected });
  }

  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url, 'http://x');
      if (url.pathname === '/v1/events/batch') {
        if (req.method === 'OPTIONS') {
          cors(res);
          res.writeHead(204);
          return res.end();
        }
        if (req.method === 'POST') return await batch(req, res);
        return error(res, 405, 'method_not_allowed', 'use POST');
      }
      const m = /^\/v1\/projects\/([^/]+)\/events\/([^/]+)$/.exec(url.pathname);
      if (m && req.method === 'GET') {
        if (req.headers.authorization !== `Bearer ${state.adminToken}`) return error(res, 401, 'unauthorized', 'admin token required');
        const ev = state.events.get(decodeURIComponent(m[2]));
        if (!ev || ev.projectId !== decodeURIComponent(m[1])) return error(res, 404, 'not_found', `event ${m[2]} not found`);
        return send(res, 200, ev);
      }
      if (url.pathname === '/healthz') return send(res, 200, { status: 'ok' });
      return error(res, 404, 'not_found', 'no such route');
    } catch (err) {
      return error(res, 500, 'internal', String(err));
    }
  });
  await new Promise((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  const { port } = server.address();
  state.url = `http://${options.host ?? '127.0.0.1'}:${port}`;
  state.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections?.();
      server.close(() => resolve());
    });
  /** Items of every request, flattened (duplicates included). */
  state.sentItems = () => state.requests.flatMap((r) => (Array.isArray(r.body?.batch) ? r.body.batch : []));
  return state;
}

export const testKeys = {
  publishable: () => `pk_live_${hex(32)}`,
  secret: () => `sk_live_${hex(32)}`,
};
