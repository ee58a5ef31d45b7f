// A recording HTTP server on loopback that answers the way the real services
// (Segment's tracking API and CDN, RudderStack's data plane, PostHog's capture
// and flags APIs) answer success, and keeps every request exactly as it came:
// method, path and query, the raw header lines, the raw body bytes, and what it
// answered.
//
//   const rec = await startRecorder({ name: 'segment-node' });
//   ... point a client at rec.url ...
//   rec.requests  // [{ seq, method, url, rawHeaders, body: Buffer, response }]
//   rec.failNext(/\/v1\/batch/, { status: 503, headers: { 'retry-after': '1' } });
//   await rec.close();
//
// What each route answers (see wire/README.md for where these come from):
//   Segment / RudderStack  POST /v1/{batch,track,identify,page,screen,alias,group,
//                          t,i,p,s,a,g,b,m}          200 {"success":true}
//   Segment CDN            GET /v1/projects/{writeKey}/settings     analytics.js settings
//                          GET /analytics.js/v1/{writeKey}/analytics.min.js, /analytics-next/bundles/{file}
//                                                                   the files from node_modules
//                          GET /static/{file}.js                   posthog-js's files (array.js, extensions)
//   PostHog                POST /batch/ /e/ /i/v0/e/ /capture/ /track/ /engage/ /s/   200 {"status":1}
//                          POST /i/v1/analytics/events             200 {"results":{uuid:{"result":"ok"}}}
//                          POST /flags/ /decide/                   no flags
//                          GET /array/{token}/config(.js)          remote config
//   OPTIONS anything       204 with CORS headers (the preflight is recorded too)
//   anything else          404
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import { readFileSync, existsSync } from 'node:fs';
import { libraryFile } from './browser.mjs';

function corsHeaders(req) {
  const origin = req.headers.origin;
  if (!origin) return {};
  return {
    'access-control-allow-origin': origin,
    'access-control-allow-credentials': 'true',
    'access-control-allow-methods': 'GET, POST, OPTIONS',
    'access-control-allow-headers': req.headers['access-control-request-headers'] ?? 'content-type',
    'access-control-max-age': '86400',
    vary: 'Origin',
  };
}

/** analytics.js settings as Segment's CDN serves them for a source, with apiHost pointed at `apiHost`. */
export function segmentSettings(writeKey, apiHost, protocol = 'http') {
  return {
    integrations: {
      'Segment.io': {
        apiKey: writeKey,
        unbundledIntegrations: [],
        addBundledMetadata: true,
        maybeBundledConfigIds: {},
        versionSettings: { version: '4.4.7', componentTypes: ['browser'] },
        apiHost,
        protocol,
      },
    },
    plan: {
      track: { __default: { enabled: true, integrations: {} } },
      identify: { __default: { enabled: true } },
      group: { __default: { enabled: true } },
    },
    edgeFunction: {},
    analyticsNextEnabled: true,
    middlewareSettings: {},
    enabledMiddleware: {},
    metrics: { sampleRate: 0 },
    legacyVideoPluginsEnabled: false,
    remotePlugins: [],
  };
}

/** PostHog's remote config for a project (the /array/{token}/config answer). */
export function posthogRemoteConfig(token) {
  return {
    token,
    supportedCompression: ['gzip', 'gzip-js'],
    hasFeatureFlags: false,
    captureDeadClicks: false,
    capturePerformance: false,
    autocapture_opt_out: true,
    autocaptureExceptions: false,
    analytics: { endpoint: '/i/v0/e/' },
    elementsChainAsString: true,
    errorTracking: { autocaptureExceptions: false, suppressionRules: [] },
    sessionRecording: false,
    heatmaps: false,
    surveys: false,
    productTours: false,
    defaultIdentifiedOnly: true,
    siteApps: [],
  };
}

function flagsAnswer(url) {
  const v = Number(url.searchParams.get('v') ?? 0);
  if (url.pathname.startsWith('/decide')) {
    return {
      config: { enable_collect_everything: true },
      featureFlags: {},
      featureFlagPayloads: {},
      errorsWhileComputingFlags: false,
      quotaLimited: [],
      supportedCompression: ['gzip', 'gzip-js'],
      sessionRecording: false,
      toolbarParams: {},
      isAuthenticated: false,
      siteApps: [],
      capturePerformance: false,
      autocapture_opt_out: true,
      elementsChainAsString: true,
      surveys: false,
      heatmaps: false,
      defaultIdentifiedOnly: true,
    };
  }
  if (v >= 2) return { flags: {}, errorsWhileComputingFlags: false, requestId: '00000000-0000-4000-8000-000000000000', quotaLimited: [] };
  return { featureFlags: {}, featureFlagPayloads: {}, errorsWhileComputingFlags: false };
}

function v1Answer(body) {
  // Capture V1 answers one result per uuid.
  const results = {};
  try {
    for (const e of JSON.parse(body).batch ?? []) results[e.uuid] = { result: 'ok' };
  } catch {
    /* undecodable: empty results */
  }
  return { results };
}

/** The answer of the real service for a successful request to this path. */
function answer(req, url, body, opts) {
  const p = url.pathname;
  const json = (status, obj, extra = {}) => ({
    status,
    headers: { 'content-type': 'application/json', ...extra },
    body: JSON.stringify(obj),
  });
  if (req.method === 'OPTIONS') return { status: 204, headers: {}, body: '' };
  let m;
  if (req.method === 'GET' && (m = /^\/v1\/projects\/([^/]+)\/settings$/.exec(p))) {
    const host = req.headers.host;
    return json(200, segmentSettings(decodeURIComponent(m[1]), `${host}/v1`));
  }
  const lib = req.method === 'GET' ? libraryFile(p) : undefined;
  if (lib && existsSync(lib)) {
    return { status: 200, headers: { 'content-type': 'application/javascript' }, body: readFileSync(lib) };
  }
  if (opts.noRemoteConfig && (/^\/array\//.test(p) || /^\/(flags|decide)\/?$/.test(p))) {
    return json(404, { error: `no route for ${req.method} ${p}` });
  }
  if (req.method === 'GET' && (m = /^\/array\/([^/]+)\/config(\.js)?$/.exec(p))) {
    const cfg = posthogRemoteConfig(decodeURIComponent(m[1]));
    if (m[2]) {
      const js = `(function(){window._POSTHOG_REMOTE_CONFIG=window._POSTHOG_REMOTE_CONFIG||{};window._POSTHOG_REMOTE_CONFIG[${JSON.stringify(cfg.token)}]={config:${JSON.stringify(cfg)},siteApps:[]}})();`;
      return { status: 200, headers: { 'content-type': 'application/javascript' }, body: js };
    }
    return json(200, cfg);
  }
  if (req.method === 'POST') {
    if (/^\/v1\/(batch|track|identify|page|screen|alias|group|import|[tipsagbm])$/.test(p)) return json(200, { success: true });
    if (/^\/(flags|decide)\/?$/.test(p)) return json(200, flagsAnswer(url));
    if (p === '/i/v1/analytics/events') return json(200, v1Answer(body));
    if (/^\/(batch|e|i\/v0\/e|capture|track|engage|s|i\/v0\/s)\/?$/.test(p)) return json(200, { status: 1 });
  }
  return json(404, { error: `no route for ${req.method} ${p}` });
}

/**
 * Starts a recorder. With `noRemoteConfig`, PostHog's remote config and flags
 * answer 404 (as a server that only implements capture would).
 */
export async function startRecorder({ name = 'recorder', ...opts } = {}) {
  const requests = [];
  const failures = []; // { re, responses: [...] }
  const waiters = new Set();
  let seq = 0;

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const url = new URL(req.url, 'http://recorder');
      const isGz = req.headers['content-encoding'] === 'gzip' || (body[0] === 0x1f && body[1] === 0x8b);
      let text = '';
      try {
        text = (isGz ? gunzipSync(body) : body).toString('utf8');
      } catch {
        /* not gzip after all */
      }
      let response = answer(req, url, text, opts);
      const matches = (f) => (typeof f.match === 'function' ? f.match(req.url, text) : f.match.test(req.url));
      const fail = req.method !== 'OPTIONS' && failures.find((f) => f.responses.length > 0 && matches(f));
      if (fail) {
        const r = fail.responses.shift();
        response = {
          injected: true,
          status: r.status,
          headers: { 'content-type': 'application/json', ...(r.headers ?? {}) },
          body: r.body ?? JSON.stringify({ error: `injected ${r.status}` }),
        };
      }
      response.headers = { ...corsHeaders(req), ...response.headers };
      const record = {
        seq: ++seq,
        at: new Date().toISOString(),
        method: req.method,
        url: req.url,
        httpVersion: req.httpVersion,
        rawHeaders: req.rawHeaders,
        body,
        response: {
          injected: Boolean(response.injected),
          status: response.status,
          headers: response.headers,
          body: response.headers['content-type'] === 'application/javascript'
            ? `<${Buffer.byteLength(response.body)} bytes of JavaScript>`
            : String(response.body),
        },
      };
      requests.push(record);
      res.writeHead(response.status, response.headers);
      res.end(response.body);
      for (const w of waiters) w();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;

  return {
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    /**
     * The next requests that `match` (a RegExp tested on the url, or a
     * function of (url, decoded body text)) get these answers instead, in order.
     */
    failNext(match, ...responses) {
      failures.push({ match, responses });
    },
    /** Resolves once `pred(requests)` holds, or rejects after `timeout` ms. */
    waitFor(what, pred, timeout = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pred(requests)) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(requests);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${name}: timed out after ${timeout} ms waiting for ${what} (${requests.length} requests so far)`));
        }, timeout);
        waiters.add(check);
        check();
      });
    },
    /** Requests since `mark` (a count taken from requests.length). */
    since(mark) {
      return requests.slice(mark);
    },
    close() {
      server.closeAllConnections?.();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
