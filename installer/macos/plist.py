"""The macOS app bundle's identity and Info.plist: what `foundry-desk.spec` gives PyInstaller's BUNDLE.

Kept apart from the spec (which only PyInstaller can run) so that the tests can read it.
"""

from __future__ import annotations

from typing import Any

from desktop import __version__

APP_NAME = "Foundry Desk"
"""The bundle's name (`Foundry Desk.app`), shown in Finder and by the DMG."""

BUNDLE_IDENTIFIER = "io.foundry-desk"
"""One reverse-DNS name for the app, its code signature and its start-at-login LaunchAgent
(`desktop.shell.autostart.LAUNCH_AGENT_LABEL`)."""

MINIMUM_MACOS = "14.0"
"""ONNX Runtime's macOS wheels (1.31) need macOS 14 on arm64; the bundle can run nowhere older."""

INFO_PLIST: dict[str, Any] = {
    # A menu bar (tray) app: no Dock icon and no app menu of its own; its window still opens.
    "LSUIElement": True,
    # PyInstaller sets LSBackgroundOnly for a console executable, which would forbid any window.
    "LSBackgroundOnly": False,
    "CFBundleShortVersionString": __version__,
    "CFBundleVersion": __version__,
    "NSHighResolutionCapable": True,
    "LSMinimumSystemVersion": MINIMUM_MACOS,
    # The window shows the chat and the WebGPU demo from http://127.0.0.1 (never another host).
    "NSAppTransportSecurity": {"NSAllowsLocalNetworking": True},
}
