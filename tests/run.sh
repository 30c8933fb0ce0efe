#!/usr/bin/env bash
# Installs what the tests need (system packages with apt, Python packages into .venv) and runs
# the whole suite: lint, format check, type check, tests. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests use: Debian's Chromium, which Playwright drives (never
# `playwright install`, which would download a browser of its own); a virtual screen with a tray
# host, a session bus and a notification daemon for the tray and window; WebKit2GTK and what
# PyGObject builds against; a UTF-8 locale (WebKitGTK renders the chat blank under LANG=C).
APT_PACKAGES=(chromium xvfb xdotool x11-utils imagemagick trayer dunst dbus locales
              gir1.2-gtk-3.0 gir1.2-webkit2-4.1 libgirepository1.0-dev libcairo2-dev pkg-config)
sudo_cmd=(); [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
if ((${#APT_PACKAGES[@]})); then
    missing=()
    for package in "${APT_PACKAGES[@]}"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    if ((${#missing[@]})); then
        "${sudo_cmd[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
    fi
fi

if ! locale -a 2>/dev/null | grep -qi '^en_US\.utf-\?8$'; then
    "${sudo_cmd[@]}" sh -c "grep -q '^en_US.UTF-8' /etc/locale.gen || echo 'en_US.UTF-8 UTF-8' >> /etc/locale.gen"
    "${sudo_cmd[@]}" locale-gen >/dev/null
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"

# The pages' libraries come from pinned npm packages: ONNX Runtime Web for the WebGPU page;
# Socket.IO's client, marked and DOMPurify for the chat page.
for page in webgpu resources/chainlit/frontend; do
    (cd "$page" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && npm run --silent build)
done

.venv/bin/ruff check desktop tests
.venv/bin/ruff format --check desktop tests
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
