// Test page for @gamify/react (bundled to an IIFE by e2e/build.mjs).
import { StrictMode, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { Gamify, GamifyProvider, GamifyPageView, GamifyTrackClick, useTrack, useGamify } from '@gamify/react';

const cfg = window.__BOOST__;
const report = (kind, data) => {
  try {
    if (typeof window.__e2eReport === 'function') window.__e2eReport(kind, data);
  } catch {
    /* ignore */
  }
};

// The page builds the client itself so it can report what it tracks.
const client = new Gamify({
  apiKey: cfg.apiKey,
  endpoint: cfg.endpoint,
  flushAt: cfg.flushAt,
  flushInterval: cfg.flushInterval,
  retryBaseDelay: 200,
  autoStart: false,
  onDelivered: (events) => report('delivered', events),
  onError: (err) => report('error', { code: err.code, message: err.message, messageIds: err.messageIds }),
});
for (const method of ['track', 'page', 'identify']) {
  const orig = client[method].bind(client);
  client[method] = (...args) => {
    const messageId = orig(...args);
    report('tracked', { method, messageId, args, page: 'react' });
    return messageId;
  };
}
window.__gamify = client;

function Shop() {
  const track = useTrack();
  const gamify = useGamify();
  const [refusal, setRefusal] = useState('');
  const [count, setCount] = useState(0);
  return (
    <main>
      <h1>React shop</h1>
      <GamifyPageView properties={{ runId: cfg.runId, framework: 'react' }} />
      <GamifyTrackClick event="react_cta_clicked" properties={{ runId: cfg.runId, cta: 'hero' }}>
        <button id="react-cta" onClick={() => setCount((c) => c + 1)}>
          Start ({count})
        </button>
      </GamifyTrackClick>
      <button
        id="react-trusted"
        onClick={() => {
          try {
            track('quest.completed', { runId: cfg.runId });
            setRefusal('NOT REFUSED');
          } catch (err) {
            setRefusal(`${err.code}: ${err.message}`);
          }
        }}
      >
        Complete quest (trusted)
      </button>
      <p id="react-refusal">{refusal}</p>
      <p id="react-anon">{gamify ? gamify.anonymousId : ''}</p>
    </main>
  );
}

createRoot(document.getElementById('root')).render(
  <StrictMode>
    <GamifyProvider client={client}>
      <Shop />
    </GamifyProvider>
  </StrictMode>,
);
document.getElementById('status').textContent = 'ready';
