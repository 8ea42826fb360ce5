#!/usr/bin/env bash
# Debian's chromium for the dashboard's browser test (Playwright drives it; never `playwright install`).
# Needs root (CI runs as root); without apt-get or root it says so and leaves the test to skip.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if ! command -v apt-get >/dev/null || [ "$(id -u)" != 0 ]; then
  echo "install-chromium: need root and apt-get (the dashboard browser test will skip)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
