#!/usr/bin/env bash
# Headless Chromium for the Dagster UI test (tests/orchestration/test_ui.py): found on PATH, or
# installed with the system package manager when this user may (root, or sudo without a
# password). Otherwise says what to install and exits non-zero.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO="sudo -n"
    else
        SUDO="none"
    fi
fi

if [ "$SUDO" != "none" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing headless Chromium for the UI test (apt-get install chromium)..."
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq chromium >/dev/null
elif [ "$SUDO" != "none" ] && command -v dnf >/dev/null 2>&1; then
    echo "installing headless Chromium for the UI test (dnf install chromium)..."
    $SUDO dnf install -y -q chromium
elif command -v brew >/dev/null 2>&1; then
    echo "installing headless Chromium for the UI test (brew install --cask chromium)..."
    brew install --cask chromium
fi

if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    echo "error: the UI test needs headless Chromium and it could not be installed here." >&2
    echo "Install it with your package manager (Debian/Ubuntu: sudo apt-get install chromium;" >&2
    echo "Fedora: sudo dnf install chromium; macOS: brew install --cask chromium), then run" >&2
    echo "make test again." >&2
    exit 1
fi
