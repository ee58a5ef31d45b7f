// Records what each real client library sends, against a recorder on
// loopback, and writes compat/wire/<client>/.
//
//   node capture/capture.mjs [client ...]     (default: all)
//
// Clients: segment-node rudderstack-node posthog-node posthog-node-v1 posthog-go
//          segment-analytics-next posthog-js posthog-js-no-remote-config
// posthog-go runs `go run ./cmd/capture` in compat/go; the browser clients need
// Chromium (CHROMIUM_PATH, default /usr/bin/chromium).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { startRecorder } from '../lib/recorder.mjs';
import { writeCaptures } from '../lib/wire.mjs';
import { segmentNode, rudderNode, posthogNode, versionOf, WRITE_KEY } from './node-clients.mjs';
import { analyticsNext, posthogJs } from './browser-clients.mjs';
import { Steps } from './steps.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const wireDir = path.resolve(here, '..', '..', 'wire');
const goDir = path.resolve(here, '..', '..', 'go');

function goModuleVersion(mod) {
  const gomod = readFileSync(path.join(goDir, 'go.mod'), 'utf8');
  const m = new RegExp(`${mod.replace(/[.]/g, '\\.')} (v\\S+)`).exec(gomod);
  return m ? m[1] : 'unknown';
}

/** posthog-go: the Go program prints one line per step ("STEP <name>") before it and "DONE" after. */
async function posthogGo(rec) {
  const steps = new Steps(rec);
  rec.failNext((url, text) => text.includes('"Retried Event"'), { status: 503 });
  rec.failNext((url, text) => text.includes('"Bad Request Event"'), { status: 400, body: '{"type":"validation_error","code":"invalid_payload"}' });
  const child = spawn('go', ['run', './cmd/capture', '-endpoint', rec.url, '-key', WRITE_KEY], {
    cwd: goDir,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let buf = '';
  let current = null;
  const done = new Promise((resolve, reject) => {
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`go run ./cmd/capture exited ${code}`))));
  });
  child.stdout.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      const m = /^(STEP|DONE) ?(.*)$/.exec(line);
      if (!m) continue;
      if (current) steps.take(current.name, current.mark, current.note);
      if (m[1] === 'STEP') {
        const [name, note] = m[2].split(' | ');
        current = { name, note, mark: rec.requests.length };
      } else current = null;
    }
  });
  await done;
  return steps.entries;
}

const CLIENTS = {
  'segment-node': { pkg: '@segment/analytics-node', run: segmentNode },
  'rudderstack-node': { pkg: '@rudderstack/rudder-sdk-node', run: rudderNode },
  'posthog-node': { pkg: 'posthog-node', run: (rec) => posthogNode(rec) },
  'posthog-node-v1': {
    pkg: 'posthog-node',
    label: 'posthog-node (POSTHOG_CAPTURE_MODE=v1, opt-in)',
    run: (rec) => posthogNode(rec, { captureMode: 'v1' }),
  },
  'posthog-go': { gomod: 'github.com/posthog/posthog-go', run: posthogGo },
  'segment-analytics-next': { pkg: '@segment/analytics-next', run: analyticsNext },
  'posthog-js': { pkg: 'posthog-js', run: posthogJs },
  'posthog-js-no-remote-config': {
    pkg: 'posthog-js',
    label: 'posthog-js (remote config and /flags/ answered 404)',
    recorder: { noRemoteConfig: true },
    run: posthogJs,
  },
};

const wanted = process.argv.slice(2);
for (const name of wanted.length ? wanted : Object.keys(CLIENTS)) {
  const c = CLIENTS[name];
  if (!c) throw new Error(`unknown client ${name}; one of ${Object.keys(CLIENTS).join(', ')}`);
  const version = c.pkg ? versionOf(c.pkg) : goModuleVersion(c.gomod);
  const label = c.label ?? c.pkg ?? c.gomod;
  const rec = await startRecorder({ name, ...(c.recorder ?? {}) });
  const t0 = Date.now();
  try {
    const entries = await c.run(rec);
    writeCaptures(path.join(wireDir, name), { name: label, version }, entries);
    console.log(`${name} ${version}: ${entries.length} requests recorded in ${Date.now() - t0} ms → compat/wire/${name}/`);
  } finally {
    await rec.close();
  }
}
