#!/usr/bin/env bash
# Install what Ferry's build and tests need on a fresh Debian 12 machine: the Debian
# packages in scripts/debian-packages.txt and the npm packages of package-lock.json.
# Idempotent and quick when everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t pkgs < <(sed -e 's/#.*//' -e '/^\s*$/d' scripts/debian-packages.txt | tr -d ' ')
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then echo "install-deps: must run as root to install packages" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# npm packages: (re)install when package.json or package-lock.json changed since the last
# install (a content hash, not mtimes: a fresh checkout's files are always newer).
# `npm install`, not `npm ci`: npm 11 here rejects every lock file that omits rollup's foreign
# platform packages (EUSAGE "Missing: @rollup/rollup-android-arm-eabi"), even one it just wrote;
# `npm install` still installs the locked versions.
want=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
have=$(cat node_modules/.ferry-deps 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  echo "install-deps: npm install (better-sqlite3 builds from source: about two minutes)"
  npm install --no-audit --no-fund
  # npm may rewrite the lock file; record what the install now matches.
  cat package.json package-lock.json | sha256sum | cut -d' ' -f1 > node_modules/.ferry-deps
fi
# The native SQLite binding must exist (an interrupted build leaves none).
if [ ! -f node_modules/better-sqlite3/build/Release/better_sqlite3.node ]; then
  echo "install-deps: building better-sqlite3"
  npm rebuild better-sqlite3
fi
