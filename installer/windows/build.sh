# The Windows part of `bash installer/build.sh exe`, sourced by it (Git Bash on Windows): defines
# `build_exe`, which turns the frozen app that `build_bundle` made (build/dist/foundry-desk/) into
# build/dist/foundry-desk-<version>-windows-x64-setup.exe with Inno Setup 6 or later
# (installer/windows/foundry-desk.iss). ISCC is "$ISCC" if set, else `iscc` on the PATH, else
# Inno Setup's standard install folder. Nothing runs when this file is sourced.

build_exe() {
    local root version script bundle iscc folder candidate setup
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    script="$root/installer/windows/foundry-desk.iss"
    bundle="$root/build/dist/foundry-desk"
    if [[ ! -f $bundle/foundry-desk.exe || ! -f $bundle/foundry-desk-cli.exe ]]; then
        echo "build_exe: $bundle has no foundry-desk.exe and foundry-desk-cli.exe;" \
            "build the bundle first (on Windows)" >&2
        return 1
    fi
    version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$root/desktop/__init__.py")
    if [[ -z $version ]]; then
        echo "build_exe: no __version__ in $root/desktop/__init__.py" >&2
        return 1
    fi

    iscc=${ISCC:-}
    if [[ -z $iscc ]] && command -v iscc >/dev/null 2>&1; then
        iscc=iscc
    fi
    if [[ -z $iscc ]]; then
        for folder in "$(printenv 'ProgramFiles(x86)')" "${ProgramFiles:-}" "${LOCALAPPDATA:-}/Programs"; do
            [[ -n $folder ]] || continue
            if command -v cygpath >/dev/null 2>&1; then
                folder=$(cygpath -u "$folder")
            fi
            for candidate in "$folder/Inno Setup 6/ISCC.exe" "$folder/Inno Setup 7/ISCC.exe"; do
                if [[ -f $candidate ]]; then
                    iscc=$candidate
                    break 2
                fi
            done
        done
    fi
    if [[ -z $iscc ]]; then
        echo "build_exe: Inno Setup's compiler (ISCC.exe) was not found; install Inno Setup 6" \
            "(https://jrsoftware.org/isdl.php) or set ISCC to its ISCC.exe" >&2
        return 1
    fi

    # Options with '-', not '/': Git Bash would take "/D..." for a path and rewrite it.
    if command -v cygpath >/dev/null 2>&1; then
        script=$(cygpath -w "$script")
    fi
    echo "Compiling the installer with $iscc (Foundry Desk $version)"
    "$iscc" "-DAppVersion=$version" "$script" || return

    setup="$root/build/dist/foundry-desk-$version-windows-x64-setup.exe"
    if [[ ! -f $setup ]]; then
        echo "build_exe: ISCC did not write $setup" >&2
        return 1
    fi
    echo "Built $setup"
}
