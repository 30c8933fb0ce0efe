#!/usr/bin/env bash
# Installs what the tests need (system packages with apt, Python packages into .venv) and runs
# the whole suite: lint, format check, type check, tests. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests use: Debian's Chromium, which Playwright drives (never
# `playwright install`, which would download a browser of its own).
APT_PACKAGES=(chromium)
if ((${#APT_PACKAGES[@]})); then
    missing=()
    for package in "${APT_PACKAGES[@]}"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    if ((${#missing[@]})); then
        sudo_cmd=(); [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
        "${sudo_cmd[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
    fi
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"

# The WebGPU page's ONNX Runtime Web files come from the pinned npm package.
(cd webgpu && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && npm run --silent build)

.venv/bin/ruff check desktop tests
.venv/bin/ruff format --check desktop tests
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
