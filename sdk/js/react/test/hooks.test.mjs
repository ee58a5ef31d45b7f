// Hooks and components in a minimal DOM (jsdom) against the fake server.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { JSDOM } from 'jsdom';
import { startFakeBoost } from '../../test-support/fake-boost.mjs';
import { waitFor } from '../../test-support/browser-env.mjs';

const dom = new JSDOM('<!doctype html><html><head><title>Hooks</title></head><body><div id="root"></div></body></html>', {
  url: 'http://localhost/start',
  pretendToBeVisual: true,
});
globalThis.window = dom.window;
globalThis.document = dom.window.document;
Object.defineProperty(globalThis, 'navigator', { configurable: true, value: dom.window.navigator });
for (const k of ['HTMLElement', 'Node', 'Element', 'MouseEvent', 'getComputedStyle', 'requestAnimationFrame', 'cancelAnimationFrame']) {
  if (!(k in globalThis)) globalThis[k] = dom.window[k];
}
globalThis.IS_REACT_ACT_ENVIRONMENT = true;

const React = await import('react');
const { act } = React;
const h = React.createElement;
const { createRoot } = await import('react-dom/client');
const lib = await import('@gamify/react');

let server;
before(async () => {
  server = await startFakeBoost();
});
after(async () => {
  await server.close();
});
beforeEach(() => {
  server.requests.length = 0;
  server.events.clear();
  dom.window.localStorage.clear();
});

async function mount(element) {
  const container = document.createElement('div');
  document.body.appendChild(container);
  const root = createRoot(container);
  await act(async () => root.render(element));
  return {
    container,
    root,
    unmount: () => act(async () => root.unmount()),
  };
}

const click = (el) => act(async () => el.dispatchEvent(new dom.window.MouseEvent('click', { bubbles: true })));

test('provider, page view, click tracking, identify, trusted-event refusal', async () => {
  const errors = [];
  const delivered = [];
  const clickErrors = [];
  let childClicks = 0;
  let api;
  function App() {
    const track = lib.useTrack();
    const identify = lib.useIdentify();
    const client = lib.useGamify();
    api = { track, identify, client };
    return h(
      'div',
      null,
      h(lib.GamifyPageView, { properties: { section: 'home' } }),
      h(
        lib.GamifyTrackClick,
        { event: 'cta_clicked', properties: { where: 'hero' } },
        h('button', { id: 'cta', onClick: () => childClicks++ }, 'Go'),
      ),
      h(lib.GamifyTrackClick, { event: 'Purchase', onError: (e) => clickErrors.push(e) }, h('button', { id: 'buy' }, 'Buy')),
    );
  }
  const config = {
    apiKey: server.publishableKey,
    endpoint: server.url,
    flushInterval: 0,
    onError: (e) => errors.push(e),
    onDelivered: (d) => delivered.push(...d),
  };
  const view = await mount(h(React.StrictMode, null, h(lib.GamifyProvider, { config }, h(App))));
  const client = api.client;
  assert.ok(client instanceof lib.Gamify);

  await click(view.container.querySelector('#cta'));
  assert.equal(childClicks, 1, "the child's own onClick still runs");
  await click(view.container.querySelector('#buy'));
  assert.equal(clickErrors.length, 1);
  assert.equal(clickErrors[0].code, 'trusted_event');
  assert.throws(() => api.track('referral_success', {}), (e) => e.code === 'trusted_event');
  api.identify('user-7', { plan: 'pro' });
  api.track('custom', { n: 1 });

  await client.flush();
  assert.deepEqual(errors, []);
  const items = server.sentItems();
  assert.deepEqual(items.map((i) => i.event), ['page_view', 'cta_clicked', '$identify', 'custom'], 'one page_view even under StrictMode');
  assert.deepEqual(items[0].properties, { url: 'http://localhost/start', path: '/start', title: 'Hooks', referrer: '', section: 'home' });
  assert.deepEqual(items[1].properties, { where: 'hero' });
  assert.equal(items[2].userId, 'user-7');
  assert.equal(items[3].userId, 'user-7');
  assert.equal(items[3].anonymousId, client.anonymousId);
  assert.equal(delivered.length, 4);
  await view.unmount();
});

test('usePageView fires again when its properties change, not on unrelated renders', async () => {
  let setPath;
  let setCount;
  function Page() {
    const [path, sp] = React.useState('/a');
    const [count, sc] = React.useState(0);
    setPath = sp;
    setCount = sc;
    lib.usePageView({ path });
    return h('p', null, String(count));
  }
  const client = new lib.Gamify({ apiKey: server.publishableKey, endpoint: server.url, flushInterval: 0, autoStart: false });
  const view = await mount(h(lib.GamifyProvider, { client }, h(Page)));
  await act(async () => setCount(1));
  await act(async () => setPath('/b'));
  await act(async () => setCount(2));
  await client.flush();
  assert.deepEqual(server.sentItems().map((i) => i.properties.path), ['/a', '/b']);
  await view.unmount();
  await client.shutdown();
});

test('unmounting a provider that owns its client flushes what is queued', async () => {
  let track;
  function C() {
    track = lib.useTrack();
    return null;
  }
  const view = await mount(h(lib.GamifyProvider, { config: { apiKey: server.publishableKey, endpoint: server.url, flushInterval: 0 } }, h(C)));
  track('before_unmount');
  await view.unmount();
  await waitFor(() => server.events.size === 1, 3000, 'flush on unmount');
});
