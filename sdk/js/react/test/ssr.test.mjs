// Server-side rendering: no window, and any touch of a browser global throws.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createElement as h } from 'react';
import { renderToString } from 'react-dom/server';
import { startFakeBoost, testKeys } from '../../test-support/fake-boost.mjs';

const TRAPS = ['document', 'localStorage', 'sessionStorage', 'location', 'navigator', 'history'];
let server;
let saved;
before(async () => {
  server = await startFakeBoost();
  assert.equal(typeof globalThis.window, 'undefined');
  saved = TRAPS.map((k) => [k, Object.getOwnPropertyDescriptor(globalThis, k)]);
  for (const k of TRAPS) {
    Object.defineProperty(globalThis, k, {
      configurable: true,
      get() {
        throw new Error(`SSR: touched ${k}`);
      },
    });
  }
});
after(async () => {
  for (const [k, d] of saved) {
    if (d) Object.defineProperty(globalThis, k, d);
    else delete globalThis[k];
  }
  await server.close();
});

// Imported after the traps so module evaluation is covered too.
const load = () => import('@gamify/react');

function App(lib) {
  return function App() {
    const track = lib.useTrack();
    const identify = lib.useIdentify();
    lib.usePageView({ section: 'home' });
    const client = lib.useGamify();
    return h(
      'main',
      null,
      h(lib.GamifyPageView, { properties: { extra: true } }),
      h(lib.GamifyTrackClick, { event: 'cta_clicked', properties: { where: 'hero' } }, h('button', { id: 'cta' }, 'Start')),
      h(lib.GamifyTrackClick, { event: 'text_clicked' }, 'plain text'),
      h('span', { id: 'has-client' }, String(client !== null && typeof track === 'function' && typeof identify === 'function')),
    );
  };
}

test('renderToString with a config renders, sends nothing, touches no browser global', async () => {
  const lib = await load();
  const html = renderToString(
    h(lib.GamifyProvider, { config: { apiKey: server.publishableKey, endpoint: server.url } }, h(App(lib))),
  );
  assert.match(html, /<button id="cta">Start<\/button>/);
  assert.match(html, /<span>plain text<\/span>/);
  assert.match(html, /<span id="has-client">true<\/span>/);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(server.requests.length, 0);
});

test('renderToString with a client created at module scope (SSR-safe constructor)', async () => {
  const lib = await load();
  const client = new lib.Gamify({ apiKey: server.publishableKey, endpoint: server.url });
  const html = renderToString(h(lib.GamifyProvider, { client }, h(App(lib))));
  assert.match(html, /Start/);
  assert.equal(client.queueSize, 0, 'no event tracked during render');
});

test('a secret key is refused even during SSR', async () => {
  const lib = await load();
  assert.throws(
    () => renderToString(h(lib.GamifyProvider, { config: { apiKey: testKeys.secret(), endpoint: server.url } }, 'x')),
    (e) => e.code === 'secret_key_in_browser',
  );
});

test('hooks outside a provider fail with a clear message', async () => {
  const lib = await load();
  function Bad() {
    lib.useTrack();
    return null;
  }
  assert.throws(() => renderToString(h(Bad)), /must be used inside <GamifyProvider>/);
});

test('the CommonJS build renders on the server too', async () => {
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  const cjs = require('@gamify/react');
  const html = renderToString(h(cjs.GamifyProvider, { config: { apiKey: server.publishableKey, endpoint: server.url } }, h('p', null, 'ok')));
  assert.equal(html, '<p>ok</p>');
});
