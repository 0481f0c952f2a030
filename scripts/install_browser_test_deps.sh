#!/usr/bin/env bash
# Install what tests/serve/test_browser.py needs from Debian: chromium and chromium-driver
# (/usr/bin/chromium, /usr/bin/chromedriver). Idempotent: does nothing when both are there.
# Run as root (or with sudo available). Without apt-get it says so and exits 0, and the
# browser test skips itself. Selenium comes from pip: .venv/bin/pip install selenium
set -euo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    echo "chromium and chromedriver are already installed:"
    /usr/bin/chromedriver --version || true
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "apt-get is not available: install Chromium and a matching chromedriver yourself" \
         "(the browser test looks for /usr/bin/chromium and /usr/bin/chromedriver)."
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "run this script as root: apt-get needs it" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y chromium chromium-driver
/usr/bin/chromedriver --version
echo "done; the browser test also needs selenium: .venv/bin/pip install selenium"
