// Test page for @gamify/core (bundled to an IIFE by e2e/build.mjs).
import { Gamify } from '@gamify/core';

const cfg = window.__BOOST__;
const report = (kind, data) => {
  try {
    // exposed by the test runner (page.exposeBinding); absent when opened by hand
    if (typeof window.__e2eReport === 'function') window.__e2eReport(kind, data);
  } catch {
    /* ignore */
  }
};

const gamify = new Gamify({
  apiKey: cfg.apiKey,
  endpoint: cfg.endpoint,
  flushAt: cfg.flushAt,
  flushInterval: cfg.flushInterval,
  retryBaseDelay: 200,
  onDelivered: (events) => report('delivered', events),
  onError: (err) => report('error', { code: err.code, message: err.message, messageIds: err.messageIds }),
});
window.__gamify = gamify;

// Report every event the page creates (messageId + what was tracked).
for (const method of ['track', 'page', 'identify']) {
  const orig = gamify[method].bind(gamify);
  gamify[method] = (...args) => {
    const messageId = orig(...args);
    report('tracked', { method, messageId, args, page: 'core' });
    return messageId;
  };
}

const $ = (id) => document.getElementById(id);
let clicks = 0;
$('buy').addEventListener('click', () => {
  clicks++;
  gamify.track('button_clicked', { button: 'buy', n: clicks, runId: cfg.runId, phase: cfg.phase });
  $('clicks').textContent = String(clicks);
});
$('login').addEventListener('click', () => {
  gamify.identify(`e2e-user-${cfg.runId}`, { plan: 'pro', runId: cfg.runId });
  $('who').textContent = gamify.userId;
});
$('trusted').addEventListener('click', () => {
  try {
    gamify.track(' Purchase ', { orderId: `o-${cfg.runId}`, amount: 1999, currency: 'USD' });
    $('trusted-result').textContent = 'NOT REFUSED';
  } catch (err) {
    $('trusted-result').textContent = `${err.code}: ${err.message}`;
  }
});

gamify.page({ runId: cfg.runId, phase: cfg.phase });
$('status').textContent = 'ready';
