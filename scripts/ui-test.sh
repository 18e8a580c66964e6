#!/usr/bin/env bash
# The web UI in a real browser (ui/test/ui.test.mjs): Debian's chromium, headless, driven
# by playwright-core against a `meridian agent -dev` it starts. Installs chromium from apt
# when missing; if it still cannot be had, the test prints why and is skipped.
# Expects target/debug/meridian (cargo build -p meridian-agent --bin meridian) and
# ui/node_modules (scripts/ui-build.sh). SCREENSHOTS=docs/ui refreshes the screenshots.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null; then
  echo "==> installing chromium (apt)"
  { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } ||
    echo "could not install chromium: the browser test will be skipped" >&2
fi
[ -d ui/node_modules ] || (cd ui && npm ci --no-audit --no-fund --loglevel=error)
cd ui
timeout 120 node test/ui.test.mjs
