"""`bash installer/run-from-source.sh`: the README's one command to run the app from a checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from desktop import __version__

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "installer" / "run-from-source.sh"


def test_with_everything_in_place_it_starts_the_app_at_once() -> None:
    result = subprocess.run(
        ["bash", str(SCRIPT), "--version"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"foundry-desk {__version__}"
    assert "Installing" not in result.stdout + result.stderr  # nothing was missing, nothing installed


def test_elsewhere_it_names_what_is_missing_and_changes_nothing(tmp_path: Path) -> None:
    """A system without dpkg, apt-get and npm (not Debian, and Node.js not installed)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "python3", "gcc", "pkg-config", "dirname", "id", "cut", "sha256sum"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "installer", checkout / "installer")
    result = subprocess.run(
        ["bash", str(checkout / "installer" / "run-from-source.sh")],
        env={**os.environ, "PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "Missing here: npm" in result.stderr and "Not a Debian or Ubuntu system" in result.stderr
    assert not (checkout / ".venv").exists()
