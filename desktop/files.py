"""The app's files: the user's alone, and small files that other processes read while we write
them (JSON state, the settings) always written atomically."""

from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

GROUP_AND_OTHERS = 0o077


def keep_new_files_private() -> None:
    """Whatever this process and its children create (history, logs, secrets, the runtime's and
    the chat's own files) is the user's alone: 0600 files, 0700 folders. POSIX only: on Windows
    the user's profile folders are private already."""
    if os.name == "posix":
        os.umask(GROUP_AND_OTHERS)


def make_private(folder: Path) -> None:
    """Create `folder` (0700), the user's alone with all in it. An older version left its folders
    0755 and its files 0644: such a folder is walked, and group and others' access is taken away
    from all in it, the folder itself last. A folder that is private already was created or fixed
    so (and all made in it since is private by the umask): it is not walked again at every start
    (a model cache holds many files). Links are not followed."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.name != "posix" or not folder.stat().st_mode & GROUP_AND_OTHERS:
        return
    for root, folders, files in os.walk(folder, topdown=False):
        for name in (*folders, *files):
            _take_away_group_and_others(Path(root, name))
    _take_away_group_and_others(folder)


def _take_away_group_and_others(path: Path) -> None:
    try:
        mode = path.lstat().st_mode
        if not stat.S_ISLNK(mode) and mode & GROUP_AND_OTHERS:
            path.chmod(stat.S_IMODE(mode) & ~GROUP_AND_OTHERS)
    except OSError as error:  # another user's file, or gone meanwhile: leave it, say so
        log.warning("could not make %s private: %s", path, error)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write `data` so a reader sees either the old file or the new one, never half of one."""
    write_text_atomic(path, json.dumps(data, indent=2))


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` so a reader sees either the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any | None:
    """The file's data, or None when it is missing or not valid JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def set_aside(path: Path) -> Path:
    """Move a file that cannot be read out of the way, beside itself as `<name>.broken-<time>`, so
    that nothing in it is lost; the new path. Raises OSError."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{path.name}.broken-{stamp}")
    path.replace(backup)
    return backup
