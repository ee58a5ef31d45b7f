// @rudderstack/rudder-sdk-node against a running Boost: POST /v1/batch, Basic
// auth with the key as user name, a gzip body labelled
// application/x-www-form-urlencoded that is JSON.
import Analytics from '@rudderstack/rudder-sdk-node';
import { segmentLikeTests } from './segment-like.mjs';

segmentLikeTests({
  name: 'rudderstack-node',
  make: (key, host) => new Analytics(key, { dataPlaneUrl: host, flushInterval: 200, retryCount: 1, logLevel: 'error' }),
  // flush() rejects when Boost refuses the batch; the checks read the proxy's record instead.
  close: (client) => client.flush().catch(() => {}),
  timestampField: 'originalTimestamp',
  firstCallAlone: true,
});
