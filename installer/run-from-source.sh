#!/usr/bin/env bash
# Runs Foundry Desk from this checkout, setting up what is missing first: on Debian and Ubuntu the
# system packages (with apt, after saying which), then the virtual environment and both pages.
# Elsewhere it names what is missing. Arguments go to the app, e.g. `--headless`.
set -euo pipefail
cd "$(dirname "$0")/.."
source installer/environment.sh

ensure_apt_packages "${RUN_APT_PACKAGES[@]}" $(tool_packages)
ensure_utf8_locale
ensure_venv
for manifest in webgpu/ort/manifest.json resources/chainlit/frontend/assets/vendor/manifest.json; do
    [ -f "$manifest" ] || { build_pages; break; }
done
exec .venv/bin/foundry-desk "$@"
