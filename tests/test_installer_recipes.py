"""The Windows and macOS recipes, checked here against the app they package (they are built and
smoke-tested on Windows and macOS runners by installer/ci/installers.yml, which cannot run here)."""

from __future__ import annotations

import plistlib
import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from desktop import __version__
from desktop.menu import BACKGROUND_FLAG
from desktop.shell import autostart
from installer.macos.plist import BUNDLE_IDENTIFIER, INFO_PLIST

ROOT = Path(__file__).resolve().parents[1]
ISS = ROOT / "installer" / "windows" / "foundry-desk.iss"
SPEC = ROOT / "installer" / "foundry-desk.spec"
WORKFLOW = ROOT / "installer" / "ci" / "installers.yml"


def section(name: str) -> list[str]:
    """The entry lines of one section of the Inno Setup script (comments left out)."""
    text = ISS.read_text(encoding="utf-8")
    body = re.search(rf"^\[{name}\]\n(.*?)(?=^\[\w+\]$|\Z)", text, re.MULTILINE | re.DOTALL)
    assert body is not None, f"no [{name}] section"
    return [line for line in body.group(1).splitlines() if line.strip() and not line.startswith(";")]


def test_windows_setup_quits_the_running_app_before_replacing_or_removing_it() -> None:
    [quit_] = section("UninstallRun")
    assert 'Parameters: "--quit"' in quit_ and "waituntilterminated" in quit_
    code = ISS.read_text(encoding="utf-8").split("[Code]", 1)[1]
    prepare = code.split("function PrepareToInstall", 1)[1].split("end;", 1)[0]
    assert "QuitRunningApp()" in prepare and "Exec(AppExe, '--quit'" in code


def test_windows_start_at_login_is_the_run_value_the_tray_writes() -> None:
    entries = [line for line in section("Registry") if "CurrentVersion\\Run" in line]
    assert entries and all(f'Subkey: "{autostart.RUN_KEY}"' in line for line in entries)
    assert all(f'ValueName: "{autostart.RUN_VALUE}"' in line for line in entries)
    assert any("uninsdeletevalue" in line for line in entries)  # removed even if the tray set it
    assert any(f'{BACKGROUND_FLAG}"; Tasks: startatlogin' in line for line in entries)


def test_windows_setup_starts_the_windowed_executable_the_spec_builds() -> None:
    assert '#define AppExe "foundry-desk.exe"' in ISS.read_text(encoding="utf-8")
    windows = SPEC.read_text(encoding="utf-8").split('if sys.platform == "win32":', 1)[1].split("else:", 1)[0]
    assert 'executable("foundry-desk", console=False)' in windows
    assert 'executable("foundry-desk-cli", console=True)' in windows
    assert any("{autoprograms}" in line and "{#AppExe}" in line for line in section("Icons"))
    # Microsoft's documented registry key of the Evergreen WebView2 Runtime
    assert "{F3017226-FE2A-4295-8BDF-00C3A9A7E4C5}" in ISS.read_text(encoding="utf-8")


def test_the_macos_app_lives_in_the_menu_bar_with_the_apps_identity() -> None:
    assert INFO_PLIST["LSUIElement"] is True and INFO_PLIST["CFBundleShortVersionString"] == __version__
    assert BUNDLE_IDENTIFIER == "io.foundry-desk" == autostart.LAUNCH_AGENT_LABEL
    plistlib.dumps(INFO_PLIST)  # every value is one a property list can hold
    assert "BUNDLE(" in SPEC.read_text(encoding="utf-8").split('if sys.platform == "darwin":', 1)[1]
    with Image.open(ROOT / "resources" / "icons" / "app.icns") as icon:
        assert max(icon.info["sizes"])[0] >= 512


def test_the_workflow_builds_with_the_commands_the_readme_documents() -> None:
    workflow, readme = WORKFLOW.read_text(encoding="utf-8"), (ROOT / "README.md").read_text(encoding="utf-8")
    for target in ("exe", "dmg"):
        assert f"bash installer/build.sh --skip-setup {target}" in workflow
        assert f"bash installer/build.sh {target}" in readme
    assert "windows-latest" in workflow and "macos-14" in workflow


@pytest.mark.parametrize(("script", "function"), [("windows", "build_exe"), ("macos", "build_dmg")])
def test_each_platform_part_only_defines_its_build_function(script: str, function: str) -> None:
    sourced = subprocess.run(
        ["bash", "-c", f"set -eu; source installer/{script}/build.sh; type -t {function}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert sourced.returncode == 0 and sourced.stdout == "function\n", sourced.stderr
