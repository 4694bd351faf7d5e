#!/usr/bin/env bash
# Build the ferry-installer single executable: the esbuild bundle (build/ferry-installer.cjs)
# injected into a copy of this Node binary (Node's single executable applications + postject).
set -euo pipefail
cd "$(dirname "$0")/.."
node scripts/bundle.mjs
mkdir -p build/sea
cat > build/sea/sea-config.json <<JSON
{ "main": "build/ferry-installer.cjs", "output": "build/sea/ferry-installer.blob", "disableExperimentalSEAWarning": true, "useCodeCache": true,
  "assets": { "ferry-installer.cjs": "build/ferry-installer.cjs" } }
JSON
node --experimental-sea-config build/sea/sea-config.json
cp "$(command -v node)" build/sea/ferry-installer
# The Node binary carries its symbol tables and debug info (12 MiB of its 99 MiB here, about 3 MiB
# of the compressed boot environment); the installer's stack traces name JavaScript frames, which
# live in the bundle, so strip them before injecting the bundle.
strip --strip-all build/sea/ferry-installer
npx --no-install postject build/sea/ferry-installer NODE_SEA_BLOB build/sea/ferry-installer.blob \
  --sentinel-fuse NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2 >/dev/null
mv build/sea/ferry-installer build/ferry-installer
build/ferry-installer --version
