// Fails early, with a clear message, when the packages have not been built.
import { existsSync } from 'node:fs';

const missing = ['core', 'node', 'react'].filter((p) => !existsSync(new URL(`../${p}/dist/index.js`, import.meta.url)));
if (missing.length > 0) {
  console.error(`not built: ${missing.map((p) => `@gamify/${p}`).join(', ')}. Run \`npm run build\` in sdk/js first.`);
  process.exit(1);
}
