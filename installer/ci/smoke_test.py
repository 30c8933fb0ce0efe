"""Smoke tests of a built Foundry Desk, run by installers.yml on the machine that built it.

    python installer/ci/smoke_test.py app EXECUTABLE          # --version; --headless started, stopped
    python installer/ci/smoke_test.py windows-setup SETUP     # silent per-user install and uninstall
    python installer/ci/smoke_test.py macos-dmg IMAGE         # the image's app, its link to /Applications

Run it with the checkout's virtual environment (it needs psutil, a dependency of the app). Every
wait has a deadline; a failure exits non-zero with what was seen.
"""

from __future__ import annotations

import argparse
import json
import os
import plistlib
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from installer.macos.plist import APP_NAME, BUNDLE_IDENTIFIER  # noqa: E402

IS_WINDOWS = sys.platform == "win32"
STARTED_STATES = {"no_model", "ready"}
"""The runtime is up and answering (with --no-download and nothing cached: no model)."""


class SmokeError(Exception):
    pass


def app_version() -> str:
    text = (ROOT / "desktop" / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'^__version__ = "(.+)"$', text, re.MULTILINE)
    if found is None:
        raise SmokeError("no __version__ in desktop/__init__.py")
    return found.group(1)


def run(command: Sequence[str | Path], timeout_s: float = 120, **kwargs: object) -> str:
    """Run a command to its end; its output, or SmokeError with it when it failed."""
    print("$", subprocess.list2cmdline([str(part) for part in command]), flush=True)
    done = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    if done.returncode != 0:
        raise SmokeError(f"exit code {done.returncode}\n{done.stdout}\n{done.stderr}")
    return str(done.stdout)


def wait_for(what: str, condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SmokeError(f"gave up after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.5)


def check_version(executable: Path) -> None:
    printed = run([executable, "--version"], timeout_s=120).strip()
    expected = f"foundry-desk {app_version()}"
    if printed != expected:
        raise SmokeError(f"--version printed {printed!r}, expected {expected!r}")
    print(f"ok: {printed}")


def processes_of(bundle: Path) -> list[psutil.Process]:
    """Running processes whose executable lies in the bundle folder."""
    found = []
    for process in psutil.process_iter(["exe"]):
        exe = process.info.get("exe")
        if exe and Path(exe).resolve().is_relative_to(bundle):
            found.append(process)
    return found


def check_headless(executable: Path) -> None:
    """`--headless --no-download` publishes a running runtime, then stops with nothing left over."""
    bundle = executable.resolve().parent
    with tempfile.TemporaryDirectory(prefix="foundry-desk-smoke-") as home:
        env = {**os.environ, "FOUNDRY_DESK_HOME": home}
        status_file = Path(home) / "state" / "runtime.json"
        log = Path(home) / "headless.out"
        with log.open("w", encoding="utf-8") as out:
            app = subprocess.Popen(
                [str(executable), "--headless", "--no-download"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            started = lambda: state(status_file) in STARTED_STATES or app.poll() is not None  # noqa: E731
            wait_for("the runtime's status", started, 240)
            if app.poll() is not None:
                raise SmokeError(f"--headless exited with {app.returncode}:\n{log.read_text()}")
            status = json.loads(run([executable, "--status"], env=env))
            if status.get("state") not in STARTED_STATES:
                raise SmokeError(f"--status said {status}")
            print(f"ok: --headless is up ({status['state']}: {status.get('message', '')})")
        finally:
            stop(app)
        print(log.read_text(encoding="utf-8"))
        wait_for("the app's processes to end", lambda: not processes_of(bundle), 60)
        print("ok: --headless stopped, and no process of the bundle is left")


def state(status_file: Path) -> str | None:
    try:
        return str(json.loads(status_file.read_text(encoding="utf-8")).get("state"))
    except (OSError, ValueError):
        return None


def stop(app: subprocess.Popen[bytes]) -> None:
    """POSIX: Ctrl+C, which must end it cleanly. Windows: kill it; its children must follow."""
    if app.poll() is not None:
        return
    if IS_WINDOWS:
        app.kill()
        app.wait(timeout=30)
        return
    app.send_signal(signal.SIGINT)
    if app.wait(timeout=60) != 0:
        raise SmokeError(f"--headless ended with exit code {app.returncode} after Ctrl+C")


def check_app(executable: Path) -> None:
    check_version(executable)
    check_headless(executable)


def run_value() -> str | None:
    import winreg  # type: ignore[import-not-found,unused-ignore]

    from desktop.shell.autostart import RUN_KEY, RUN_VALUE

    try:
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:  # type: ignore[attr-defined,unused-ignore]
            return str(winreg.QueryValueEx(key, RUN_VALUE)[0])  # type: ignore[attr-defined,unused-ignore]
    except OSError:
        return None


def check_windows_setup(setup: Path) -> None:
    """Per-user silent install with start-at-login; the installed app runs; uninstall leaves nothing."""
    app_dir = Path(os.environ["LOCALAPPDATA"]) / "Programs" / APP_NAME
    shortcut = Path(os.environ["APPDATA"]) / "Microsoft/Windows/Start Menu/Programs" / f"{APP_NAME}.lnk"
    logs = Path(tempfile.mkdtemp(prefix="foundry-desk-setup-"))
    quiet = ["/VERYSILENT", "/SUPPRESSMSGBOXES", "/NORESTART"]
    run([setup, *quiet, "/CURRENTUSER", "/MERGETASKS=startatlogin", f"/LOG={logs / 'setup.log'}"], 600)
    installed = [app_dir / name for name in ("foundry-desk.exe", "foundry-desk-cli.exe", "unins000.exe")]
    for path in [*installed, shortcut]:
        if not path.is_file():
            raise SmokeError(f"not installed: {path}")
    expected = f'"{app_dir}\\foundry-desk.exe" --background'
    if run_value() != expected:
        raise SmokeError(f"Run value {run_value()!r}, expected {expected!r}")
    print(f"ok: installed in {app_dir}, Start menu entry, start at login")
    check_version(app_dir / "foundry-desk-cli.exe")

    run([app_dir / "unins000.exe", *quiet, f"/LOG={logs / 'uninstall.log'}"], 600)
    # The uninstaller's last act, deleting itself and the folder, follows its exit.
    wait_for(f"{app_dir} to be removed", lambda: not app_dir.exists(), 60)
    if shortcut.exists() or run_value() is not None:
        raise SmokeError("the uninstaller left the Start menu entry or the Run value")
    print("ok: uninstalled: no folder, no Start menu entry, no Run value")


def check_macos_dmg(image: Path) -> None:
    """The image holds the app (signed, its Info.plist as built) and a link to /Applications."""
    with tempfile.TemporaryDirectory(prefix="foundry-desk-dmg-") as mount:
        run(["hdiutil", "attach", "-nobrowse", "-readonly", "-mountpoint", mount, image])
        try:
            app = Path(mount) / f"{APP_NAME}.app"
            applications = Path(mount) / "Applications"
            if not applications.is_symlink() or str(applications.readlink()) != "/Applications":
                raise SmokeError("the image has no link to /Applications")
            info = plistlib.loads((app / "Contents" / "Info.plist").read_bytes())
            expected = {
                "CFBundleIdentifier": BUNDLE_IDENTIFIER,
                "CFBundleShortVersionString": app_version(),
                "LSUIElement": True,
            }
            if any(info.get(key) != value for key, value in expected.items()):
                raise SmokeError(f"Info.plist: {info}")
            run(["codesign", "--verify", "--deep", "--strict", app])
            check_version(app / "Contents" / "MacOS" / "foundry-desk")
            print(f"ok: {image.name} holds {app.name} and a link to /Applications")
        finally:
            run(["hdiutil", "detach", mount])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("check", choices=("app", "windows-setup", "macos-dmg"))
    parser.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    checks = {"app": check_app, "windows-setup": check_windows_setup, "macos-dmg": check_macos_dmg}
    try:
        checks[args.check](args.path.resolve())
    except (SmokeError, subprocess.TimeoutExpired) as error:
        print(f"smoke test failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
