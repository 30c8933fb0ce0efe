"""Start at login: opt-in, off by default, one entry per platform, written and removed by the app.

- Linux (XDG): `~/.config/autostart/foundry-desk.desktop` (`$XDG_CONFIG_HOME` moves it).
- Windows: a value `FoundryDesk` under `HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run`.
- macOS: a LaunchAgent `~/Library/LaunchAgents/io.foundry-desk.plist` with `RunAtLoad`.

The entry runs the app with `--background`: tray and services, no window at login.
"""

from __future__ import annotations

import os
import plistlib
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from desktop import APP_NAME, compat

DESKTOP_FILE = f"{APP_NAME}.desktop"
LAUNCH_AGENT_LABEL = "io.foundry-desk"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
RUN_VALUE = "FoundryDesk"


class Autostart(Protocol):
    def enabled(self) -> bool: ...
    def enable(self, command: Sequence[str]) -> None: ...
    def disable(self) -> None: ...


class XdgAutostart:
    """A desktop entry in the XDG autostart folder."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        home = Path(environ.get("HOME", "~")).expanduser()
        config = environ.get("XDG_CONFIG_HOME") or str(home / ".config")
        self.path = Path(config) / "autostart" / DESKTOP_FILE

    def enabled(self) -> bool:
        return self.path.is_file()

    def enable(self, command: Sequence[str], icon: Path | None = None) -> None:
        lines = [
            "[Desktop Entry]",
            "Type=Application",
            "Name=Foundry Desk",
            "Comment=Private AI chat on your laptop",
            f"Exec={shlex.join(command)}",
            *([f"Icon={icon}"] if icon else []),
            "Terminal=false",
            "X-GNOME-Autostart-enabled=true",
        ]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def disable(self) -> None:
        self.path.unlink(missing_ok=True)


class LaunchAgent:
    """A per-user LaunchAgent that runs the app once at login."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        home = Path(environ.get("HOME", "~")).expanduser()
        self.path = home / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist"

    def enabled(self) -> bool:
        return self.path.is_file()

    def enable(self, command: Sequence[str]) -> None:
        agent = {
            "Label": LAUNCH_AGENT_LABEL,
            "ProgramArguments": list(command),
            "RunAtLoad": True,
            "KeepAlive": False,
            "ProcessType": "Interactive",
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_bytes(plistlib.dumps(agent))

    def disable(self) -> None:
        self.path.unlink(missing_ok=True)


class Registry(Protocol):
    """The few registry calls the Run key needs (winreg on Windows; a dict in tests)."""

    def get(self, key: str, name: str) -> str | None: ...
    def set(self, key: str, name: str, value: str) -> None: ...
    def delete(self, key: str, name: str) -> None: ...


class WinRegistry:
    """HKEY_CURRENT_USER through winreg."""

    def get(self, key: str, name: str) -> str | None:
        import winreg

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key) as handle:  # type: ignore[attr-defined,unused-ignore]
                value, _ = winreg.QueryValueEx(handle, name)  # type: ignore[attr-defined,unused-ignore]
                return str(value)
        except OSError:
            return None

    def set(self, key: str, name: str, value: str) -> None:
        import winreg

        with winreg.CreateKey(winreg.HKEY_CURRENT_USER, key) as handle:  # type: ignore[attr-defined,unused-ignore]
            winreg.SetValueEx(handle, name, 0, winreg.REG_SZ, value)  # type: ignore[attr-defined,unused-ignore]

    def delete(self, key: str, name: str) -> None:
        import winreg

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_SET_VALUE) as handle:  # type: ignore[attr-defined,unused-ignore]
                winreg.DeleteValue(handle, name)  # type: ignore[attr-defined,unused-ignore]
        except FileNotFoundError:
            pass


class WindowsRunKey:
    """A value under the user's Run key."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def enabled(self) -> bool:
        return self.registry.get(RUN_KEY, RUN_VALUE) is not None

    def enable(self, command: Sequence[str]) -> None:
        self.registry.set(RUN_KEY, RUN_VALUE, subprocess.list2cmdline(list(command)))

    def disable(self) -> None:
        self.registry.delete(RUN_KEY, RUN_VALUE)


def for_this_platform(environ: Mapping[str, str] | None = None) -> Autostart:
    environ = os.environ if environ is None else environ
    if compat.PLATFORM == "windows":
        return WindowsRunKey(WinRegistry())
    if compat.PLATFORM == "macos":
        return LaunchAgent(environ)
    return XdgAutostart(environ)
