// The SDKs' limits and event lists against the server's contract
// (contract/ingestion.json, generated from the server's domain package): a
// rule changed on the server and not here fails this test.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { LIMITS, TRUSTED_EVENTS, COMMERCE_EVENTS, PAGE_EVENT } from '../dist/index.js';

const contract = JSON.parse(fs.readFileSync(new URL('../../../../contract/ingestion.json', import.meta.url), 'utf8'));

test('limits match the contract', () => {
  const c = contract.limits;
  assert.equal(LIMITS.maxBatchItems, c.maxBatchItems);
  assert.equal(LIMITS.maxRequestBytes, c.maxBodyBytes);
  assert.equal(LIMITS.maxEventNameChars, c.maxNameChars);
  assert.equal(LIMITS.maxIdChars, c.maxIdChars);
  assert.equal(LIMITS.maxPropertiesBytes, c.maxObjectBytes);
  assert.equal(LIMITS.maxNesting, c.maxNesting);
  assert.equal(LIMITS.maxAmount, c.maxAmount);
});

test('trusted and commerce events match the contract', () => {
  assert.deepEqual([...TRUSTED_EVENTS].sort(), [...contract.trustedEvents].sort());
  assert.deepEqual([...COMMERCE_EVENTS].sort(), [...contract.commerceEvents].sort());
});

test('page views are sent under the name the server stores Segment page calls under', () => {
  assert.equal(PAGE_EVENT, contract.callEvents.page);
});
