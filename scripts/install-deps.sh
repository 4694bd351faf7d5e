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

# npm packages: reinstall when package-lock.json is newer than the install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "install-deps: npm ci (better-sqlite3 builds from source: about two minutes)"
  npm ci --no-audit --no-fund
fi
