// Decoding and writing of recorded requests (see recorder.mjs) as readable
// captures: compat/wire/<client>/NN-<call>.http (request line, headers, blank
// line, decoded body, the answer), NN-<call>.body (the raw body bytes exactly as
// received) and index.json (everything, bodies base64, for fixtures).
import { gunzipSync, inflateSync } from 'node:zlib';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import http from 'node:http';

const isGzip = (b) => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;

function headerOf(rec, name) {
  const n = name.toLowerCase();
  for (let i = 0; i < rec.rawHeaders.length; i += 2) {
    if (rec.rawHeaders[i].toLowerCase() === n) return rec.rawHeaders[i + 1];
  }
  return undefined;
}

function tryJSON(text) {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

/**
 * Decodes a recorded body. Returns { steps: [...], json, text } where steps
 * names each decoding applied, in order (e.g. ['gzip (Content-Encoding)', 'JSON']).
 */
export function decodeBody(rec) {
  const steps = [];
  let bytes = rec.body;
  if (bytes.length === 0) return { steps: ['empty'], text: '' };
  const ce = (headerOf(rec, 'content-encoding') ?? '').toLowerCase();
  const ct = (headerOf(rec, 'content-type') ?? '').toLowerCase();
  if (ce === 'gzip' || isGzip(bytes)) {
    bytes = gunzipSync(bytes);
    steps.push(ce === 'gzip' ? 'gzip (Content-Encoding: gzip)' : 'gzip (no Content-Encoding header: detected by the 1f 8b magic bytes)');
  } else if (ce === 'deflate') {
    bytes = inflateSync(bytes);
    steps.push('deflate (Content-Encoding: deflate)');
  }
  let text = bytes.toString('utf8');
  if (ct.startsWith('application/x-www-form-urlencoded')) {
    const form = new URLSearchParams(text);
    const direct = tryJSON(text);
    if (direct.ok) {
      steps.push('JSON (sent as application/x-www-form-urlencoded but the body is plain JSON, not a form)');
      return { steps, json: direct.value, text };
    }
    if (form.has('data')) {
      const data = form.get('data');
      steps.push('form field data=… (application/x-www-form-urlencoded)');
      const asJSON = tryJSON(data);
      if (asJSON.ok) {
        steps.push('JSON');
        return { steps, json: asJSON.value, text: data, form: Object.fromEntries(form) };
      }
      const b64 = Buffer.from(data, 'base64').toString('utf8');
      const fromB64 = tryJSON(b64);
      if (fromB64.ok) {
        steps.push('base64', 'JSON');
        return { steps, json: fromB64.value, text: b64, form: Object.fromEntries(form) };
      }
      return { steps, text: data, form: Object.fromEntries(form) };
    }
  }
  const j = tryJSON(text);
  if (j.ok) {
    steps.push('JSON');
    return { steps, json: j.value, text };
  }
  steps.push('not JSON');
  return { steps, text };
}

function slug(s) {
  return s.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase();
}

/**
 * Writes the captures of one client. `entries` is a list of
 * { call, note?, rec } in the order they are to be numbered.
 */
export function writeCaptures(dir, client, entries) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const index = [];
  entries.forEach(({ call, note, rec }, i) => {
    const nn = String(i + 1).padStart(2, '0');
    const base = `${nn}-${slug(call)}`;
    const dec = decodeBody(rec);
    const lines = [];
    lines.push(`# ${client.name} ${client.version}: ${call}`);
    if (note) for (const l of note.split('\n')) lines.push(`# ${l}`);
    lines.push(`# recorded ${rec.at} (request #${rec.seq} to the recorder)`);
    if (rec.body.length > 0) {
      lines.push(`# raw body: ${rec.body.length} bytes, exactly as received, in ${base}.body`);
      lines.push(`# body below decoded by: ${dec.steps.join(' → ')}`);
      if (dec.form) lines.push(`# form fields: ${Object.keys(dec.form).join(', ')}`);
    } else {
      lines.push('# no body');
    }
    lines.push('');
    lines.push(`${rec.method} ${rec.url} HTTP/${rec.httpVersion}`);
    for (let h = 0; h < rec.rawHeaders.length; h += 2) lines.push(`${rec.rawHeaders[h]}: ${rec.rawHeaders[h + 1]}`);
    lines.push('');
    if (dec.json !== undefined) lines.push(JSON.stringify(dec.json, null, 2));
    else if (dec.text) lines.push(dec.text);
    lines.push('');
    lines.push(
      rec.response.injected
        ? '# ---- the recorder answered (an injected failure, to see how the library retries):'
        : '# ---- the recorder answered (as the real service answers success):',
    );
    lines.push(`# HTTP/1.1 ${rec.response.status} ${http.STATUS_CODES[rec.response.status] ?? ''}`.trimEnd());
    for (const [k, v] of Object.entries(rec.response.headers)) lines.push(`# ${k}: ${v}`);
    lines.push('#');
    for (const l of String(rec.response.body).split('\n')) lines.push(`# ${l}`);
    writeFileSync(path.join(dir, `${base}.http`), lines.join('\n') + '\n');
    if (rec.body.length > 0) writeFileSync(path.join(dir, `${base}.body`), rec.body);
    index.push({
      file: `${base}.http`,
      call,
      note,
      method: rec.method,
      url: rec.url,
      rawHeaders: rec.rawHeaders,
      bodyBase64: rec.body.toString('base64'),
      decodedBy: dec.steps,
      decoded: dec.json ?? dec.text,
      response: rec.response,
    });
  });
  writeFileSync(
    path.join(dir, 'index.json'),
    JSON.stringify({ client: client.name, version: client.version, requests: index }, null, 2) + '\n',
  );
}
