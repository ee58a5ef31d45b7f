// Headless Chromium (Debian's /usr/bin/chromium through playwright-core, no
// browser download), the snippets real sites paste, and a small page server
// that serves test pages and the libraries' files from node_modules.
import http from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const nodeModules = path.join(here, '..', 'node_modules');
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const USER_AGENT =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/136.0.0.0 Safari/537.36';

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

/**
 * Launches Chromium with a fresh profile. Host names other than loopback do
 * not resolve (there is no other network here) and requests to them are
 * listed in `external`, so a library phoning home elsewhere shows up instead
 * of hanging. (No page.route(): with routing on, Playwright answers CORS
 * preflights itself and the recorder would never see the OPTIONS requests.)
 */
export async function launchBrowser() {
  const { chromium } = await import('playwright-core');
  const userDataDir = mkdtempSync(path.join(os.tmpdir(), 'compat-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...LAUNCH_ARGS, '--disable-blink-features=AutomationControlled', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost'],
    viewport: { width: 1000, height: 700 },
    // A desktop Chrome user agent and no navigator.webdriver (AutomationControlled off):
    // posthog-js drops the events of "HeadlessChrome" and of a webdriver as a bot's.
    userAgent: USER_AGENT,
  });
  const external = [];
  context.on('request', (r) => {
    if (!/^(https?:\/\/(127\.0\.0\.1|localhost)[:/]|data:|blob:|about:)/.test(r.url())) external.push({ method: r.method(), url: r.url() });
  });
  const consoleErrors = [];
  context.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  return {
    context,
    external,
    consoleErrors,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

export const chromiumAvailable = () => existsSync(CHROMIUM);

/**
 * Segment's analytics.js snippet (5.2.x, as Segment's docs give it), except
 * that the script comes from `cdn` (the snippet hard-codes
 * https://cdn.segment.com) and `analytics._cdn` tells analytics.js to fetch
 * its settings and chunks from there too.
 */
export function segmentSnippet({ writeKey, cdn, loadOptions = {}, page = true }) {
  return `!function(){var i="analytics",analytics=window[i]=window[i]||[];if(!analytics.initialize)if(analytics.invoked)window.console&&console.error&&console.error("Segment snippet included twice.");else{analytics.invoked=!0;analytics.methods=["trackSubmit","trackClick","trackLink","trackForm","pageview","identify","reset","group","track","ready","alias","debug","page","screen","once","off","on","addSourceMiddleware","addIntegrationMiddleware","setAnonymousId","addDestinationMiddleware","register"];analytics.factory=function(e){return function(){if(window[i].initialized)return window[i][e].apply(window[i],arguments);var n=Array.prototype.slice.call(arguments);if(["track","screen","alias","group","page","identify"].indexOf(e)>-1){var c=document.querySelector("link[rel='canonical']");n.push({__t:"bpc",c:c&&c.getAttribute("href")||void 0,p:location.pathname,u:location.href,s:location.search,t:document.title,r:document.referrer})}n.unshift(e);analytics.push(n);return analytics}};for(var n=0;n<analytics.methods.length;n++){var key=analytics.methods[n];analytics[key]=analytics.factory(key)}analytics.load=function(key,n){var t=document.createElement("script");t.type="text/javascript";t.async=!0;t.setAttribute("data-global-segment-analytics-key",i);t.src=${JSON.stringify(cdn)}+"/analytics.js/v1/"+key+"/analytics.min.js";var r=document.getElementsByTagName("script")[0];r.parentNode.insertBefore(t,r);analytics._loadOptions=n};analytics._writeKey=${JSON.stringify(writeKey)};analytics._cdn=${JSON.stringify(cdn)};analytics.SNIPPET_VERSION="5.2.1";
analytics.load(${JSON.stringify(writeKey)},${JSON.stringify(loadOptions)});
${page ? 'analytics.page();' : ''}
}}();`;
}

/**
 * PostHog's snippet (as PostHog's docs give it): it loads
 * `${api_host}/static/array.js` and replays the calls queued before it loaded.
 */
export function posthogSnippet({ token, config }) {
  return `!function(t,e){var o,n,p,r;e.__SV||(window.posthog&&window.posthog.__loaded)||(window.posthog=e,e._i=[],e.init=function(i,s,a){function g(t,e){var o=e.split(".");2==o.length&&(t=t[o[0]],e=o[1]),t[e]=function(){t.push([e].concat(Array.prototype.slice.call(arguments,0)))}}(p=t.createElement("script")).type="text/javascript",p.crossOrigin="anonymous",p.async=!0,p.src=s.api_host.replace(".i.posthog.com","-assets.i.posthog.com")+"/static/array.js",(r=t.getElementsByTagName("script")[0]).parentNode.insertBefore(p,r);var u=e;for(void 0!==a?u=e[a]=[]:a="posthog",u.people=u.people||[],u.toString=function(t){var e="posthog";return"posthog"!==a&&(e+="."+a),t||(e+=" (stub)"),e},u.people.toString=function(){return u.toString(1)+".people (stub)"},o="init capture register register_once register_for_session unregister unregister_for_session getFeatureFlag getFeatureFlagPayload isFeatureEnabled reloadFeatureFlags updateEarlyAccessFeatureEnrollment getEarlyAccessFeatures on onFeatureFlags onSessionId getSurveys getActiveMatchingSurveys renderSurvey canRenderSurvey getNextSurveyStep identify setPersonProperties group resetGroups setPersonPropertiesForFlags resetPersonPropertiesForFlags setGroupPropertiesForFlags resetGroupPropertiesForFlags reset get_distinct_id getGroups get_session_id get_session_replay_url alias set_config startSessionRecording stopSessionRecording sessionRecordingStarted captureException loadToolbar get_property getSessionProperty createPersonProfile opt_in_capturing opt_out_capturing has_opted_in_capturing has_opted_out_capturing clear_opt_in_out_capturing debug".split(" "),n=0;n<o.length;n++)g(u,o[n]);e._i.push([i,s,a])},e.__SV=1)}(document,window.posthog||[]);
posthog.init(${JSON.stringify(token)},${JSON.stringify(config)});`;
}

/** The file a CDN path stands for, in node_modules (or undefined). */
export function libraryFile(p) {
  let m;
  if ((m = /^\/analytics\.js\/v1\/[^/]+\/analytics(\.min)?\.js$/.exec(p))) {
    return path.join(nodeModules, '@segment/analytics-next/dist/umd/standalone.js');
  }
  if ((m = /^\/analytics-next\/bundles\/([\w.-]+\.js)$/.exec(p))) {
    return path.join(nodeModules, '@segment/analytics-next/dist/umd', m[1]);
  }
  if ((m = /^\/static\/(?:\d+\.\d+\.\d+\/)?([\w.-]+\.js)$/.exec(p))) {
    return path.join(nodeModules, 'posthog-js/dist', m[1]);
  }
  return undefined;
}

/**
 * A page server on loopback. `pages` maps a path to a function returning the
 * page's HTML; `extra(req, url, res)` may answer other paths (return true).
 * Library files (libraryFile) are served from node_modules.
 */
export async function servePages(pages, extra = () => false) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const page = pages[url.pathname];
    if (page) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      return res.end(page(url));
    }
    if (extra(req, url, res)) return;
    const file = libraryFile(url.pathname);
    if (file && existsSync(file)) {
      res.writeHead(200, { 'content-type': 'application/javascript', 'access-control-allow-origin': '*' });
      return res.end(readFileSync(file));
    }
    res.writeHead(url.pathname === '/favicon.ico' ? 204 : 404);
    res.end();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** A minimal HTML page with inline scripts. */
export const html = (title, ...scripts) =>
  `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>${scripts
    .map((s) => `<script>${s}</script>`)
    .join('')}</head><body><h1>${title}</h1><a id="away" href="/away.html">away</a></body></html>`;
