"""The macOS app bundle: its Info.plist (`plist.py`), its DMG (`build.sh`), its entitlements."""
