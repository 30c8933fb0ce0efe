#!/usr/bin/env bash
# Installs what the tests need (system packages with apt, Python packages into .venv, the pages'
# libraries with npm), builds the app's Linux packages, and runs the whole suite: lint, format
# check, type check, tests (the built .deb installed and used among them). Exits non-zero on any
# failure.
set -euo pipefail
cd "$(dirname "$0")/.."
source installer/environment.sh

# Besides what the app needs: Debian's Chromium, which Playwright drives (never `playwright
# install`, which would download a browser of its own); a virtual screen with a tray host, a
# session bus and a notification daemon for the tray and window; what checks the packages (and
# debootstrap, for a plain Debian to install the .deb in); strace, which sees that nothing
# leaves the machine.
TEST_APT_PACKAGES=(chromium xvfb xdotool x11-utils imagemagick trayer dunst dbus desktop-file-utils
                   debootstrap strace)
ensure_apt_packages --quiet "${RUN_APT_PACKAGES[@]}" $(tool_packages) "${TEST_APT_PACKAGES[@]}"
ensure_utf8_locale
ensure_venv test,package
build_pages

.venv/bin/ruff check desktop tests installer
.venv/bin/ruff format --check desktop tests installer
.venv/bin/mypy

# The packages are built once, from this checkout; tests/test_package.py installs and uses them.
bash installer/build.sh --skip-setup bundle deb tar
FOUNDRY_DESK_PACKAGES=build/dist .venv/bin/python -m pytest "$@"
