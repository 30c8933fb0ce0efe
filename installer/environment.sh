# Shared steps of the project's scripts (sourced, never run): system packages, the virtual
# environment, the two pages. Used by installer/run-from-source.sh (run the app),
# tests/run.sh (test it) and installer/build.sh (package it), so each is done one way.

# What the app needs from a Debian/Ubuntu system to run from source: GTK 3 and WebKit2GTK 4.1 for
# the tray and the window, the tray's AppIndicator, what PyGObject and pycairo compile against,
# and (see tool_packages) Python with venv and headers, a C compiler, npm for the pages.
RUN_APT_PACKAGES=(pkg-config libgirepository1.0-dev libcairo2-dev gir1.2-gtk-3.0 gir1.2-webkit2-4.1
                  gir1.2-ayatanaappindicator3-0.1 libatomic1 locales)

# tool_packages: the Debian packages of the tools that are missing (a Python or Node.js installed
# otherwise, e.g. with pyenv or nvm, is used as it is).
tool_packages() {
    local python="${PYTHON:-python3}"
    command -v "$python" >/dev/null || { echo python3-venv python3-dev; return; }
    "$python" -c 'import ensurepip' 2>/dev/null || echo python3-venv
    "$python" -c 'import os, sysconfig; assert os.path.exists(sysconfig.get_paths()["include"] + "/Python.h")' \
        2>/dev/null || echo python3-dev
    command -v gcc >/dev/null || echo gcc
    command -v npm >/dev/null || echo npm
}

sudo_cmd=()
[ "$(id -u)" = 0 ] || sudo_cmd=(sudo)

# ensure_apt_packages [--quiet] PACKAGE...: install those not installed, after saying which.
ensure_apt_packages() {
    local quiet=0
    if [ "${1:-}" = --quiet ]; then quiet=1; shift; fi
    if ! command -v dpkg >/dev/null || ! command -v apt-get >/dev/null; then
        missing_commands python3 gcc pkg-config npm && return 0
        echo "Not a Debian or Ubuntu system, so nothing was installed for you. Foundry Desk needs" >&2
        echo "Python 3.11+ with venv and headers, a C compiler, pkg-config, the GObject introspection" >&2
        echo "and cairo development files, GTK 3 and WebKit2GTK 4.1 typelibs, libatomic, Node.js with npm." >&2
        return 1
    fi
    local missing=() package
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    ((${#missing[@]})) || return 0
    [ "$quiet" = 1 ] || echo "Installing system packages with apt: ${missing[*]}"
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
}

missing_commands() {
    local command missing=()
    for command in "$@"; do command -v "$command" >/dev/null || missing+=("$command"); done
    if ((${#missing[@]})); then
        echo "Missing here: ${missing[*]}. Install them with your system's package manager, then run this again." >&2
        return 1
    fi
}

# WebKitGTK renders the chat blank under LANG=C: make sure a UTF-8 locale exists.
ensure_utf8_locale() {
    locale -a 2>/dev/null | grep -qi '^en_US\.utf-\?8$' && return 0
    command -v locale-gen >/dev/null || return 0
    "${sudo_cmd[@]}" sh -c "grep -q '^en_US.UTF-8' /etc/locale.gen || echo 'en_US.UTF-8 UTF-8' >> /etc/locale.gen"
    "${sudo_cmd[@]}" locale-gen >/dev/null
}

# The virtual environment's programs: bin/ (POSIX) or Scripts/ (Windows, under Git Bash).
venv_bin() {
    if [ -d .venv/Scripts ]; then echo .venv/Scripts; else echo .venv/bin; fi
}

# ensure_venv [EXTRAS]: .venv with the app (editable) and the given extras, e.g. "test,package".
ensure_venv() {
    local extras="${1:-}"
    local python="${PYTHON:-python3}"
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "Foundry Desk needs Python 3.11 or newer; $python is $("$python" --version 2>&1)." >&2
        return 1
    fi
    [ -d .venv ] || "$python" -m venv .venv
    # Done once per version of pyproject.toml and set of extras: a later run starts at once.
    local stamp
    stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)-${extras:-app}"
    [ -f "$stamp" ] && return 0
    "$(venv_bin)/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$(venv_bin)/python" -m pip install --quiet --disable-pip-version-check -e ".${extras:+[$extras]}"
    touch "$stamp"
}

# build_pages: the pinned libraries of both pages, from npm (ONNX Runtime Web for the WebGPU
# page; Socket.IO's client, marked and DOMPurify for the chat page). Never from a CDN at run time.
build_pages() {
    local page
    for page in webgpu resources/chainlit/frontend; do
        (cd "$page" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && npm run --silent build)
    done
}
