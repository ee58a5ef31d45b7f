// @segment/analytics-node against a running Boost: POST /v1/batch, Basic auth
// with the key as user name (and writeKey in the body), JSON.
import { Analytics } from '@segment/analytics-node';
import { segmentLikeTests } from './segment-like.mjs';

segmentLikeTests({
  name: 'segment-node',
  make: (key, host) => new Analytics({ writeKey: key, host, flushInterval: 200, maxRetries: 2 }),
  close: (client) => client.closeAndFlush({ timeout: 30_000 }),
  timestampField: 'timestamp',
});
