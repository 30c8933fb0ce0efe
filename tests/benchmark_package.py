"""Benchmark of the Linux packages: size, build, install, and the installed app's start.

    .venv/bin/python tests/benchmark_package.py [--runs 3] [--no-build]

Measures the bundle's size and its ten largest parts, the .deb's and the .tar.gz's sizes, the
time to build each, `apt-get install` and `apt-get remove` of the .deb, and the start of the
installed app to its chat painted (cold: a new user's first start, with the page cache dropped
when the kernel allows it; warm: the next start), against the same from source
(`.venv/bin/foundry-desk`). "Chat painted" is read off the virtual screen: the window shows the
chat's sidebar and message box, not a placeholder. Needs root (or password-less sudo) to install.
Budgets: bundle < 200 MB, .deb < 70 MB, installed start no slower than from source.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from desktop import __version__
from tests.conftest import free_port
from tests.support.xsession import XSession, wait_until
from tests.test_package import as_root, run
from tests.tinymodel import build_model

ROOT = Path(__file__).resolve().parents[1]
DIST = ROOT / "build" / "dist"
BUNDLE = DIST / "foundry-desk"
INSTALLED = "/usr/bin/foundry-desk"
FROM_SOURCE = str(ROOT / ".venv" / "bin" / "foundry-desk")


def timed(*command: str) -> float:
    started = time.monotonic()
    subprocess.run(list(command), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started


def megabytes(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


def build() -> dict[str, float]:
    python = str(ROOT / ".venv" / "bin" / "python")
    return {
        "bundle": timed("bash", str(ROOT / "installer" / "build.sh"), "--skip-setup", "bundle"),
        "deb": timed(python, str(ROOT / "installer/linux/debian.py"), "deb", str(BUNDLE), str(DIST)),
        "tar": timed(python, str(ROOT / "installer/linux/debian.py"), "tar", str(BUNDLE), str(DIST)),
    }


def report_sizes() -> None:
    [deb] = DIST.glob(f"foundry-desk_{__version__}_*.deb")
    [tarball] = DIST.glob(f"foundry-desk-{__version__}-linux-*.tar.gz")
    print(f"bundle: {megabytes(BUNDLE):.1f} MB in {sum(1 for p in BUNDLE.rglob('*') if p.is_file())} files")
    executable = megabytes(BUNDLE / "foundry-desk")
    print(f"    {executable:6.1f} MB  foundry-desk (the executable and its Python modules)")
    internal = [p for p in (BUNDLE / "_internal").iterdir() if not p.is_symlink()]  # links: no bytes
    parts = sorted(((megabytes(p), p.name) for p in internal), reverse=True)
    for size, name in parts[:10]:
        print(f"    {size:6.1f} MB  {name}")
    print(f".deb: {megabytes(deb):.1f} MB   .tar.gz: {megabytes(tarball):.1f} MB")


class ChatOnScreen:
    """Whether the chat window shows the chat: its light sidebar at the left, with text in it (many
    colours), not the dark placeholder. Read straight from the X server, so that looking often
    costs the app being measured next to nothing."""

    def __init__(self, session: XSession) -> None:
        from Xlib import display  # type: ignore[import-untyped,import-not-found,unused-ignore]

        self.session = session
        self.screen = display.Display(session.display)
        self.area: tuple[int, int, int, int] | None = None

    def painted(self) -> bool:
        from Xlib import X  # type: ignore[import-untyped,import-not-found,unused-ignore]

        if self.area is None:
            windows = self.session.windows("^Foundry Desk — Chat$")
            if not windows:
                return False
            x, y, width, height = self.session.geometry(windows[0])
            self.area = (x, y, min(width, 360), height)
        x, y, width, height = self.area
        raw = self.screen.screen().root.get_image(x, y, width, height, X.ZPixmap, 0xFFFFFFFF).data
        image = Image.frombytes("RGB", (width, height), raw, "raw", "BGRX")
        sidebar = image.getpixel((20, height - 60))
        assert isinstance(sidebar, tuple)
        return min(sidebar) > 225 and len(image.getcolors(maxcolors=1 << 16) or ()) > 20

    def close(self) -> None:
        self.screen.close()


def drop_page_cache() -> bool:
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def start_to_chat(session: XSession, command: str, home: Path, model: Path) -> float:
    env = {**os.environ, **session.env, "FOUNDRY_DESK_HOME": str(home), "FOUNDRY_DESK_MODEL_PATH": str(model),
           "FOUNDRY_DESK_RUNTIME_PORT": str(free_port()), "FOUNDRY_DESK_CHAT_PORT": str(free_port()),
           "HOME": str(home.parent / "user")}  # fmt: skip
    chat = ChatOnScreen(session)
    started = time.monotonic()
    app = subprocess.Popen([command], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(chat.painted, 90, "the chat painted", every_s=0.05)
        elapsed = time.monotonic() - started
        run(command, "--quit", env=env, timeout=60)
        app.wait(timeout=30)
    finally:
        chat.close()
        if app.poll() is None:
            app.kill()
            app.wait()
    return elapsed


def starts(root: Path, model: Path, runs: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    for run_number in range(runs):
        for label, command in (("installed", INSTALLED), ("source", FROM_SOURCE)):
            with XSession(root / f"x-{label}-{run_number}") as session:
                home = root / f"home-{label}-{run_number}"
                dropped = drop_page_cache()
                cold = start_to_chat(session, command, home, model)
                warm = start_to_chat(session, command, home, model)
            results.setdefault(f"{label} cold", []).append(cold)
            results.setdefault(f"{label} warm", []).append(warm)
            cache = "" if dropped else " (page cache not dropped: not allowed here)"
            print(f"run {run_number} {label}: cold {cold:.2f} s{cache}, warm {warm:.2f} s")
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--no-build", action="store_true", help="measure the packages in build/dist as they are"
    )
    options = parser.parse_args()
    if not options.no_build:
        for stage, seconds in build().items():
            print(f"build {stage}: {seconds:.0f} s")
    report_sizes()
    [deb] = DIST.glob(f"foundry-desk_{__version__}_*.deb")
    print(f"install: {timed(*as_root('apt-get', 'install', '-y', '-qq', str(deb.resolve()))):.1f} s")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            model = build_model(root / "alpha", "Hello from the tiny model.")
            results = starts(root, model, options.runs)
    finally:
        print(f"remove: {timed(*as_root('apt-get', 'remove', '-y', '-qq', 'foundry-desk')):.1f} s")
    for key, values in results.items():
        print(
            f"start to chat painted, {key}: median {statistics.median(values):.2f} s (max {max(values):.2f})"
        )


if __name__ == "__main__":
    main()
