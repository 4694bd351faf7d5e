#!/usr/bin/env node
// Bundle the CLI (build/ferry.mjs) and the installer (build/ferry-installer.cjs) with esbuild.
// The installer bundle is CommonJS because Node's single executable applications run CJS.
import { build } from 'esbuild';
import { mkdirSync } from 'node:fs';

mkdirSync('build', { recursive: true });
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
  legalComments: 'none',
};

await Promise.all([
  build({
    ...common,
    entryPoints: ['cli/main.ts'],
    outfile: 'build/ferry.mjs',
    format: 'esm',
    // better-sqlite3 is a native addon: loaded from node_modules at run time. So is ssh2: it
    // loads optional native addons (cpu-features, its sshcrypto binding) inside try/catch, which
    // esbuild cannot resolve when they were not built; from node_modules they simply fall back.
    external: ['better-sqlite3', 'ssh2'],
    // Bundled CommonJS dependencies call require() for Node built-ins.
    banner: { js: "import { createRequire as __ferryCreateRequire } from 'node:module'; const require = __ferryCreateRequire(import.meta.url);" },
  }),
  build({
    ...common,
    entryPoints: ['installer/main.ts'],
    outfile: 'build/ferry-installer.cjs',
    format: 'cjs',
  }),
  // The web console's client (server/ui/client), served by `ferry serve` under /ui/: for browsers, no CDN.
  build({
    entryPoints: ['server/ui/client/main.ts'],
    outdir: 'build/ui',
    entryNames: 'app',
    // docs/errors.md as text: the console shows each error code's fix line from it.
    loader: { '.md': 'text' },
    alias: { 'ferry-errors-md': './docs/errors.md' },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: ['chrome110', 'firefox110', 'safari16'],
    minify: true,
    sourcemap: 'linked',
    logLevel: 'warning',
    legalComments: 'none',
  }),
  // The boot environment builder (make initrd).
  build({
    ...common,
    entryPoints: ['initrd/build.ts'],
    outfile: 'build/initrd-build.mjs',
    format: 'esm',
  }),
]);
