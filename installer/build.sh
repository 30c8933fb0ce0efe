#!/usr/bin/env bash
# Builds Foundry Desk's packages from this checkout, into build/dist/:
#
#   bash installer/build.sh bundle   the frozen app (PyInstaller, one folder): build/dist/foundry-desk/
#   bash installer/build.sh deb      that, packed as foundry-desk_<version>_<arch>.deb
#   bash installer/build.sh tar      that, packed as foundry-desk-<version>-linux-<machine>.tar.gz
#   bash installer/build.sh exe      Windows: foundry-desk-<version>-windows-x64-setup.exe (Inno Setup)
#   bash installer/build.sh dmg      macOS: foundry-desk-<version>-macos-<arch>.dmg
#
# Several targets build the bundle once (`deb tar`). Unless --skip-setup is given, the virtual
# environment and both pages are set up first (installer/environment.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source installer/environment.sh

DIST=build/dist
BUNDLE="$DIST/foundry-desk"

build_bundle() {
    local started=$SECONDS
    rm -rf "$BUNDLE"
    "$(venv_bin)/pyinstaller" --noconfirm --clean --log-level WARN --distpath "$DIST" \
        --workpath build/pyinstaller installer/foundry-desk.spec
    echo "bundle: $BUNDLE ($(du -sh "$BUNDLE" | cut -f1), $((SECONDS - started)) s)"
}

report() {
    echo "$1: $2 ($(du -h "$2" | cut -f1), $3 s)"
}

setup=1
targets=()
for argument in "$@"; do
    case "$argument" in
        --skip-setup) setup=0 ;;
        bundle|deb|tar|exe|dmg) targets+=("$argument") ;;
        *) echo "usage: bash installer/build.sh [--skip-setup] bundle|deb|tar|exe|dmg..." >&2; exit 2 ;;
    esac
done
((${#targets[@]})) || { echo "usage: bash installer/build.sh [--skip-setup] bundle|deb|tar|exe|dmg..." >&2; exit 2; }

if [ "$setup" = 1 ]; then
    ensure_venv package
    build_pages
fi
mkdir -p "$DIST"
build_bundle
for target in "${targets[@]}"; do
    started=$SECONDS
    case "$target" in
        bundle) ;;
        deb|tar)
            package=$("$(venv_bin)/python" installer/linux/debian.py "$target" "$BUNDLE" "$DIST")
            report "$target" "$package" $((SECONDS - started)) ;;
        exe) source installer/windows/build.sh && build_exe ;;
        dmg) source installer/macos/build.sh && build_dmg ;;
    esac
done
