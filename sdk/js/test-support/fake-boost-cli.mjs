// Runs the fake Boost API in the foreground, to rehearse `npm run test:browser`
// and `npm run test:integration` without a real server:
//   node test-support/fake-boost-cli.mjs [port]     (prints the env to export)
import { startFakeBoost } from './fake-boost.mjs';

const port = Number(process.argv[2] ?? process.env.PORT ?? 3900);
const s = await startFakeBoost({ port, host: '127.0.0.1', log: process.env.FAKE_BOOST_LOG === '1' });
console.log(`# fake Boost listening on ${s.url}
export BOOST_URL=${s.url}
export BOOST_PUBLISHABLE_KEY=${s.publishableKey}
export BOOST_SECRET_KEY=${s.secretKey}
export BOOST_PROJECT_ID=${s.projectId}
export BOOST_ADMIN_TOKEN=${s.adminToken}`);
const stop = async () => {
  await s.close();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
