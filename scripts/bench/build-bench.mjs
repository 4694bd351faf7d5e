// One bundler for the benchmarks: `node scripts/bench/build-bench.mjs NAME` bundles
// scripts/bench/NAME-main.ts into build/bench-NAME.mjs. Packages with native parts or a browser
// stay external (loaded from node_modules at run time): better-sqlite3, ssh2 (its optional
// native crypto and cpu-features have .node files esbuild cannot bundle) and puppeteer-core.
import { build } from 'esbuild';

const name = process.argv[2];
if (!name || !/^[a-z-]+$/.test(name)) {
  console.error('usage: node scripts/bench/build-bench.mjs NAME   (bundles scripts/bench/NAME-main.ts)');
  process.exit(2);
}
await build({
  entryPoints: [`scripts/bench/${name}-main.ts`], outfile: `build/bench-${name}.mjs`, bundle: true,
  platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning',
  external: ['better-sqlite3', 'ssh2', 'puppeteer-core'],
  banner: { js: "import { createRequire as __r } from 'node:module'; const require = __r(import.meta.url);" },
}).catch(() => process.exit(1));
