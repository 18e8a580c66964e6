#!/usr/bin/env bash
# Rebuilds the web UI (ui/) from its sources with the locked npm packages and fails when
# the result differs from the committed bundle (ui/dist, which the agent embeds): the
# committed bundle must be exactly what the sources build to. Installs Node.js from apt
# when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v npm >/dev/null; then
  echo "==> installing nodejs and npm (apt)"
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
cd ui
npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
cd ..
if ! git diff --quiet -- ui/dist || [ -n "$(git ls-files --others --exclude-standard -- ui/dist)" ]; then
  echo "error: ui/dist differs from what ui/ builds to; run (cd ui && npm ci && npm run build) and commit ui/dist" >&2
  git status --short -- ui/dist >&2
  exit 1
fi
gz=$(cat ui/dist/index.html ui/dist/assets/* | gzip -9 | wc -c)
echo "ui/dist matches its sources ($((gz / 1024)) KiB gzipped)"
