"""Where Foundry Desk keeps its files, and how it finds itself (from source or frozen)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from platformdirs import PlatformDirs

from desktop import APP_NAME
from desktop.files import make_private

HOME_ENV = "FOUNDRY_DESK_HOME"


@dataclass(frozen=True)
class AppPaths:
    """The app's folders, following each platform's conventions (platformdirs)."""

    config_dir: Path
    """Holds `settings.toml`."""
    data_dir: Path
    """What the user must never lose: chat history, secrets."""
    cache_dir: Path
    """What can be fetched again: downloaded models."""
    log_dir: Path
    """Logs of the app and of each child process."""
    state_dir: Path
    """Run-time state other tools may read: the runtime status file, the run record."""

    @classmethod
    def for_user(cls) -> AppPaths:
        """The current user's folders; the XDG_* variables move them on Linux."""
        dirs = PlatformDirs(APP_NAME, appauthor=False)
        return cls(
            config_dir=Path(dirs.user_config_dir),
            data_dir=Path(dirs.user_data_dir),
            cache_dir=Path(dirs.user_cache_dir),
            log_dir=Path(dirs.user_log_dir),
            state_dir=Path(dirs.user_state_dir),
        )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> AppPaths:
        """`FOUNDRY_DESK_HOME` puts every folder below one root (portable mode); else the user's."""
        home = environ.get(HOME_ENV)
        return cls.under(Path(home).expanduser()) if home else cls.for_user()

    @classmethod
    def under(cls, root: Path) -> AppPaths:
        """All folders below one root: for portable installs and for tests."""
        return cls(
            config_dir=root / "config",
            data_dir=root / "data",
            cache_dir=root / "cache",
            log_dir=root / "logs",
            state_dir=root / "state",
        )

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.toml"

    @property
    def model_cache_dir(self) -> Path:
        return self.cache_dir / "models"

    @property
    def files_index_file(self) -> Path:
        """The index of the user's own files (`desktop/documents`): rebuilt from them if lost."""
        return self.data_dir / "files" / "index.sqlite3"

    @property
    def files_status_file(self) -> Path:
        """The app's indexer's progress, which the tray and the chat show."""
        return self.state_dir / "files.json"

    @property
    def runtime_status_file(self) -> Path:
        return self.state_dir / "runtime.json"

    @property
    def run_record_file(self) -> Path:
        return self.state_dir / "run.json"

    def create(self) -> AppPaths:
        """Make every folder exist, the user's alone (0700, and 0600 files in it: also what an
        older version left readable by others); returns self so it chains."""
        for folder in (self.config_dir, self.data_dir, self.cache_dir, self.log_dir, self.state_dir):
            make_private(folder)
        return self


def is_frozen() -> bool:
    """True inside a PyInstaller build."""
    return bool(getattr(sys, "frozen", False))


def resource_root() -> Path:
    """The folder holding `resources/` and `webgpu/`: the bundle when frozen, else the checkout."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle is not None:
        return Path(bundle)
    return Path(__file__).resolve().parent.parent


def self_command(*args: str) -> list[str]:
    """The command line that runs this program again with `args`, frozen or not.

    Children (the runtime host, the chat server) are the same program in another mode, so a
    frozen build needs no Python on the user's machine.
    """
    if is_frozen():
        return [sys.executable, *args]
    return [sys.executable, "-m", "desktop", *args]
