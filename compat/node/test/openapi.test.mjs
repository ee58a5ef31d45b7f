// Boost's OpenAPI document (GET /openapi.json, api/openapi.json) against a
// running Boost: it validates as OpenAPI 3.1 (@seriousme/openapi-schema-validator),
// and every example in it is sent and answers its documented status
// (x-status) with a body of the documented shape (Ajv, JSON Schema 2020-12).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Validator } from '@seriousme/openapi-schema-validator';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { boostEnv, eventually } from '../lib/boost.mjs';

const env = boostEnv();
const skip = env.skip;

const getDoc = async () => (await fetch(`${env.url}/openapi.json`)).json();

test('openapi: GET /openapi.json is a valid OpenAPI 3.1 document', { skip }, async () => {
  const doc = await getDoc();
  assert.equal(doc.openapi, '3.1.0');
  const res = await new Validator().validate(doc);
  assert.ok(res.valid, `invalid: ${String(JSON.stringify(res.errors ?? res, null, 1)).slice(0, 2000)}`);
});

const admin = () => ({ authorization: `Bearer ${env.admin}` });

/** The ids examples name in x-params, made or looked up on the running Boost. */
async function fixtures() {
  const project = await (await fetch(`${env.url}/v1/projects/${env.project}`, { headers: admin() })).json();
  const keys = await (await fetch(`${env.url}/v1/projects/${env.project}/api-keys`, { headers: admin() })).json();
  const revocable = await (
    await fetch(`${env.url}/v1/projects/${env.project}/api-keys`, {
      method: 'POST', headers: { ...admin(), 'content-type': 'application/json' }, body: JSON.stringify({ name: 'openapi example', type: 'publishable' }),
    })
  ).json();
  const user = `openapi-${randomUUID()}`;
  const sent = await (
    await fetch(`${env.url}/v1/identify`, {
      method: 'POST', headers: { 'x-api-key': env.sk, 'content-type': 'application/json' }, body: JSON.stringify({ userId: user, traits: { plan: 'pro' } }),
    })
  ).json();
  await eventually(async () => {
    const r = await fetch(`${env.url}/v1/projects/${env.project}/events/${sent.id}`, { headers: admin() });
    assert.equal(r.status, 200);
  });
  return {
    project: env.project, org: project.organizationId, key: keys.data[0].id, keyToRevoke: revocable.id,
    event: sent.id, user, missing: randomUUID(), publishable: env.pk, secret: env.sk,
  };
}

/** Every operation of the document with its examples: { method, path, op, examples: [{ name, value?, status, auth, params, query }] }. */
function operations(doc) {
  const out = [];
  for (const [path, raw] of Object.entries(doc.paths)) {
    const item = raw.$ref ? doc.paths[decodeURIComponent(raw.$ref.replace('#/paths/', '')).replaceAll('~1', '/')] : raw;
    const itemPath = raw.$ref ? decodeURIComponent(raw.$ref.replace('#/paths/', '')).replaceAll('~1', '/') : path;
    for (const method of ['get', 'post', 'put', 'patch', 'delete']) {
      const op = item[method];
      if (!op) continue;
      const examples = [];
      for (const x of op['x-examples'] ?? []) examples.push({ name: 'x-examples', status: x['x-status'], auth: x['x-auth'], params: x['x-params'] ?? {}, query: x['x-query'] ?? {} });
      for (const [ct, c] of Object.entries(op.requestBody?.content ?? {})) {
        for (const [name, e] of Object.entries(c.examples ?? {})) {
          examples.push({ name, contentType: ct, value: e.value, status: e['x-status'], auth: e['x-auth'], params: e['x-params'] ?? {}, query: e['x-query'] ?? {} });
        }
      }
      out.push({ method, path, itemPath, op, examples });
    }
  }
  return out;
}

function authHeaders(op, auth, fx) {
  const kind = auth ?? (op.security?.length === 0 ? 'none' : op.security?.some((s) => s.adminToken) ? 'admin' : 'secret');
  switch (kind) {
    case 'none': return {};
    case 'admin': return admin();
    case 'publishable': return { 'x-api-key': fx.publishable };
    case 'secret': return { 'x-api-key': fx.secret };
    default: throw new Error(`unknown x-auth ${kind}`);
  }
}

test('openapi: every example answers its documented status with a body of the documented shape', { skip }, async () => {
  const doc = await getDoc();
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(doc, 'openapi.json');
  const fx = await fixtures();
  const failures = [];
  let sent = 0;
  for (const { method, path, itemPath, op, examples } of operations(doc)) {
    assert.ok(examples.length > 0, `${method.toUpperCase()} ${path} has no example`);
    for (const ex of examples) {
      const url = new URL(env.url + path.replace(/\{(\w+)\}/g, (_, name) => {
        const fixture = name === 'projectId' ? 'project' : ex.params[name];
        assert.ok(fixture && fx[fixture], `${method} ${path} (${ex.name}): no fixture for {${name}}`);
        return encodeURIComponent(fx[fixture]);
      }));
      for (const [k, v] of Object.entries(ex.query)) url.searchParams.set(k, v);
      const headers = authHeaders(op, ex.auth, fx);
      let body;
      if (ex.value !== undefined) {
        headers['content-type'] = ex.contentType;
        body = JSON.stringify(ex.value);
      }
      const res = await fetch(url, { method: method.toUpperCase(), headers, body });
      sent++;
      const text = await res.text();
      const what = `${method.toUpperCase()} ${path} (${ex.name})`;
      if (res.status !== ex.status) {
        failures.push(`${what}: answered ${res.status}, documented ${ex.status}: ${text.slice(0, 300)}`);
        continue;
      }
      const documented = op.responses?.[String(res.status)];
      if (!documented) {
        failures.push(`${what}: ${res.status} is not among its documented responses`);
        continue;
      }
      const json = documented.content?.['application/json'];
      if (!json) continue; // text: metrics, a script
      const pointer = `openapi.json#/paths/${itemPath.replaceAll('~', '~0').replaceAll('/', '~1')}/${method}/responses/${res.status}/content/application~1json/schema`;
      const validate = ajv.getSchema(pointer) ?? ajv.compile({ $ref: pointer });
      let value;
      try {
        value = JSON.parse(text);
      } catch {
        failures.push(`${what}: the body is not JSON: ${text.slice(0, 200)}`);
        continue;
      }
      if (!validate(value)) failures.push(`${what}: body ${text.slice(0, 300)} does not match: ${ajv.errorsText(validate.errors)}`);
    }
  }
  assert.ok(sent > 40, `only ${sent} examples sent`);
  assert.equal(failures.length, 0, `${failures.length} of ${sent} examples failed:\n  ${failures.join('\n  ')}`);
});
