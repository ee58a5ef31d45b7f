// Bundles the e2e test pages (IIFE, browser) with esbuild from the built packages.
import { build } from 'esbuild';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
export const outdir = path.join(here, '.build');

export async function buildPages() {
  for (const pkg of ['core', 'react']) {
    if (!existsSync(path.join(here, '..', pkg, 'dist', 'index.js'))) {
      throw new Error(`@gamify/${pkg} is not built: run \`npm run build\` in sdk/js first`);
    }
  }
  await build({
    entryPoints: { core: path.join(here, 'pages/core-entry.mjs'), react: path.join(here, 'pages/react-entry.jsx') },
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    jsx: 'automatic',
    minify: false,
    define: { 'process.env.NODE_ENV': '"production"' },
    outdir,
    logLevel: 'warning',
  });
  return outdir;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildPages();
  console.log(`built ${outdir}`);
}
