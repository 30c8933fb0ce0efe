# The macOS part of `bash installer/build.sh dmg`, sourced by it: defines `build_dmg`, which turns
# the app bundle that `build_bundle` made (PyInstaller's BUNDLE: build/dist/Foundry Desk.app) into
# build/dist/foundry-desk-<version>-macos-<arch>.dmg: a compressed disk image holding the app and a
# link to /Applications to drag it onto. Nothing runs when this file is sourced.
#
# Signing and notarizing are optional, each done only when its environment is set:
#   MACOS_SIGN_IDENTITY    a "Developer ID Application: ..." identity in the keychain: the app is
#                          signed with it (hardened runtime, installer/macos/entitlements.plist),
#                          then the disk image. Without it the app keeps PyInstaller's ad-hoc
#                          signature, and Gatekeeper asks users to allow it (right-click, Open).
#   MACOS_NOTARY_PROFILE   a notarytool keychain profile (`xcrun notarytool store-credentials`), or
#   MACOS_NOTARY_APPLE_ID, MACOS_NOTARY_TEAM_ID, MACOS_NOTARY_PASSWORD (an app-specific password):
#                          with a signed image, it is notarized by Apple and the ticket stapled.

build_dmg() {
    local root app version arch dmg staging entitlements
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    app="$root/build/dist/Foundry Desk.app"
    entitlements="$root/installer/macos/entitlements.plist"
    if [[ ! -x $app/Contents/MacOS/foundry-desk ]]; then
        echo "build_dmg: $app is missing; build the bundle first (on macOS)" >&2
        return 1
    fi
    version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$root/desktop/__init__.py")
    if [[ -z $version ]]; then
        echo "build_dmg: no __version__ in $root/desktop/__init__.py" >&2
        return 1
    fi
    case $(uname -m) in
        arm64) arch=arm64 ;;
        x86_64) arch=x64 ;;
        *) arch=$(uname -m) ;;
    esac
    dmg="$root/build/dist/foundry-desk-$version-macos-$arch.dmg"

    if [[ -n ${MACOS_SIGN_IDENTITY:-} ]]; then
        echo "Signing $app as $MACOS_SIGN_IDENTITY"
        # As PyInstaller signs a bundle (--deep reaches every binary in Contents/Frameworks), with
        # the hardened runtime that notarization requires.
        codesign --sign "$MACOS_SIGN_IDENTITY" --force --all-architectures --timestamp \
            --options runtime --entitlements "$entitlements" --deep "$app" || return
        codesign --verify --deep --strict --verbose=2 "$app" || return
    else
        echo "Not signing: MACOS_SIGN_IDENTITY is not set (the app keeps its ad-hoc signature)."
    fi

    staging=$(mktemp -d "${TMPDIR:-/tmp}/foundry-desk-dmg.XXXXXX") || return
    # ditto keeps the bundle's symbolic links, permissions and extended attributes.
    if ! ditto "$app" "$staging/Foundry Desk.app" || ! ln -s /Applications "$staging/Applications"; then
        rm -rf "$staging"
        return 1
    fi
    echo "Creating $dmg"
    if ! hdiutil create -volname "Foundry Desk" -srcfolder "$staging" -ov -format UDZO "$dmg"; then
        rm -rf "$staging"
        return 1
    fi
    rm -rf "$staging"
    hdiutil verify "$dmg" || return

    if [[ -z ${MACOS_SIGN_IDENTITY:-} ]]; then
        echo "Not notarizing: the app is not signed."
    else
        codesign --sign "$MACOS_SIGN_IDENTITY" --timestamp "$dmg" || return
        if [[ -n ${MACOS_NOTARY_PROFILE:-} ]]; then
            echo "Notarizing $dmg (waits for Apple's answer)"
            xcrun notarytool submit "$dmg" --keychain-profile "$MACOS_NOTARY_PROFILE" --wait || return
        elif [[ -n ${MACOS_NOTARY_APPLE_ID:-} && -n ${MACOS_NOTARY_TEAM_ID:-} && -n ${MACOS_NOTARY_PASSWORD:-} ]]; then
            echo "Notarizing $dmg (waits for Apple's answer)"
            xcrun notarytool submit "$dmg" --apple-id "$MACOS_NOTARY_APPLE_ID" \
                --team-id "$MACOS_NOTARY_TEAM_ID" --password "$MACOS_NOTARY_PASSWORD" --wait || return
        else
            echo "Not notarizing: set MACOS_NOTARY_PROFILE, or MACOS_NOTARY_APPLE_ID," \
                "MACOS_NOTARY_TEAM_ID and MACOS_NOTARY_PASSWORD."
            echo "Built $dmg"
            return 0
        fi
        # Stapling fails unless Apple accepted the image, so this also checks the verdict.
        xcrun stapler staple "$dmg" || return
        xcrun stapler validate "$dmg" || return
    fi
    echo "Built $dmg"
}
