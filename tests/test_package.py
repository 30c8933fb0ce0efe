"""The built Linux packages, installed and used as a user would use them.

The bundle's contents; the `.deb` installed with apt; the installed command headless with a tiny
model (completion, chat page, Socket.IO, children running from the bundle, Ctrl+C); its WebGPU
page; the installed app on a virtual screen from an empty first run to an answered message;
and removing the package while the app runs.

The packages come from `bash installer/build.sh bundle deb tar`: tests/run.sh builds them once
before the tests and names their folder in FOUNDRY_DESK_PACKAGES; without it they are built here
first (a few minutes). The tests run in file order: removal comes last.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tarfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
from PIL import Image

from desktop import __version__
from desktop.paths import AppPaths
from desktop.runtime.status import RuntimeState, read_status
from tests.conftest import ALPHA_ANSWER, BETA_ANSWER, TinyModels, free_port
from tests.support import corpus
from tests.support.headless_app import Headless
from tests.support.xsession import XSession, missing_tools, painted, tray_pixels, wait_until

ROOT = Path(__file__).resolve().parents[1]
PACKAGES_ENV = "FOUNDRY_DESK_PACKAGES"
INSTALL_DIR = Path("/opt/foundry-desk")
COMMAND = Path("/usr/bin/foundry-desk")
DESKTOP_ENTRY = Path("/usr/share/applications/foundry-desk.desktop")
SYSTEM_LIBRARIES = ("libgtk-3", "libgdk-3", "libglib-2.0", "libgobject-2.0", "libgio-2.0",
                    "libwebkit2gtk", "libjavascriptcoregtk", "libsoup", "libgirepository", "libcairo.",
                    "libpango")  # fmt: skip

pytestmark = [
    pytest.mark.skipif(not shutil.which("dpkg-deb"), reason="the Linux packages need dpkg-deb"),
    pytest.mark.timeout(900),
]


@dataclass(frozen=True)
class Packages:
    bundle: Path
    deb: Path
    tarball: Path


@pytest.fixture(scope="module")
def packages() -> Packages:
    """The packages of this checkout: built by tests/run.sh, or here."""
    folder = os.environ.get(PACKAGES_ENV)
    if folder is None:
        subprocess.run(
            ["bash", str(ROOT / "installer" / "build.sh"), "--skip-setup", "deb", "tar"], check=True
        )
        folder = str(ROOT / "build" / "dist")
    dist = Path(folder)
    [deb] = dist.glob(f"foundry-desk_{__version__}_*.deb")
    [tarball] = dist.glob(f"foundry-desk-{__version__}-linux-*.tar.gz")
    return Packages(dist / "foundry-desk", deb, tarball)


def run(*command: str, **options: object) -> subprocess.CompletedProcess[str]:
    """Run a command to completion, its output kept (what it says is part of what is checked)."""
    return subprocess.run(list(command), check=False, capture_output=True, text=True, **options)  # type: ignore[call-overload,no-any-return]


def as_root(*command: str) -> list[str]:
    return list(command) if os.geteuid() == 0 else ["sudo", "-n", *command]


def can_install() -> str:
    """Why packages cannot be installed here ("" when they can)."""
    if os.geteuid() != 0 and run("sudo", "-n", "true").returncode != 0:
        return "installing a package needs root or password-less sudo"
    if run("dpkg", "-s", "foundry-desk").returncode == 0:
        return "a foundry-desk package is already installed here; remove it to run the install tests"
    return ""


@pytest.fixture(scope="module")
def installed(packages: Packages) -> Iterator[Path]:
    """The .deb installed with apt (its dependencies resolved as for a user); removed at the end."""
    reason = can_install()
    if reason:
        pytest.skip(reason)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(
        as_root("apt-get", "install", "-y", "-qq", str(packages.deb.resolve())), check=True, env=env
    )
    try:
        yield COMMAND
    finally:
        if run("dpkg", "-s", "foundry-desk").returncode == 0:
            subprocess.run(as_root("apt-get", "remove", "-y", "-qq", "foundry-desk"), check=False, env=env)


def from_bundle() -> list[psutil.Process]:
    """Every running process whose program is the installed bundle's."""
    found = []
    for proc in psutil.process_iter(["exe"]):
        exe = proc.info["exe"] or ""
        if exe.startswith(f"{INSTALL_DIR}/"):
            found.append(proc)
    return found


def completion(base_url: str, model: str | None) -> str:
    """The model's answer to "hi", through its OpenAI-compatible endpoint."""
    body = {"model": model, "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}
    request = urllib.request.Request(
        f"{base_url}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.loads(response.read())["choices"][0]["message"]["content"])


def get(url: str, timeout_s: float = 10.0) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return response.status, response.headers.get("content-type", ""), response.read()


# -- what was built --------------------------------------------------------------------------------


def test_the_bundle_holds_the_app_and_none_of_the_system(packages: Packages) -> None:
    files = [path.relative_to(packages.bundle).as_posix() for path in packages.bundle.rglob("*")]
    internal = packages.bundle / "_internal"
    for needed in ("resources/chainlit/frontend/index.html", "webgpu/index.html", "webgpu/ort/manifest.json",
                   "resources/chainlit/frontend/assets/vendor/manifest.json", "webgpu/model/digits.onnx",
                   "resources/icons/tray-ready-64.png"):  # fmt: skip
        assert (internal / needed).is_file(), needed
    assert list(internal.glob("webgpu/ort/*.wasm"))
    assert [f for f in files if any(Path(f).name.startswith(lib) for lib in SYSTEM_LIBRARIES)] == []
    assert [f for f in files if f.endswith(".typelib")] == []
    assert [
        f for f in files if "node_modules" in f or f.endswith(("package.json", "package-lock.json"))
    ] == []
    assert not (internal / "chainlit" / "frontend").exists()  # Chainlit's own page: ours is used
    assert [f for f in files if f.endswith(("train_digits.py", "make_icons.py", "build.mjs"))] == []


def test_the_deb_and_the_tarball(packages: Packages) -> None:
    listing = subprocess.run(
        ["dpkg-deb", "-c", str(packages.deb)], capture_output=True, text=True, check=True
    )
    entries = {line.split()[5].removeprefix("."): line for line in listing.stdout.splitlines()}
    assert "./opt/foundry-desk/foundry-desk" in {f".{k}" for k in entries}
    assert "-> /opt/foundry-desk/foundry-desk" in entries["/usr/bin/foundry-desk"]
    assert str(DESKTOP_ENTRY) in entries
    assert "/usr/share/icons/hicolor/256x256/apps/foundry-desk.png" in entries
    assert all(" root/root " in line for line in entries.values())
    depends = run("dpkg-deb", "-f", str(packages.deb), "Depends")
    for needed in ("gir1.2-gtk-3.0", "gir1.2-webkit2-4.1", "libatomic1", "libgirepository-1.0-1"):
        assert needed in depends.stdout
    # every system library the bundle links against comes from a package it depends on
    check = run(sys.executable, str(ROOT / "installer/linux/debian.py"), "check", str(packages.bundle))
    assert check.returncode == 0, check.stdout
    with tarfile.open(packages.tarball) as archive:
        names = set(archive.getnames())
    top = f"foundry-desk-{__version__}"
    assert {f"{top}/foundry-desk", f"{top}/README.txt", f"{top}/share/foundry-desk.desktop"} <= names
    assert not any("node_modules" in name for name in names)


@pytest.mark.skipif(not shutil.which("desktop-file-validate"), reason="desktop-file-utils is not installed")
def test_the_desktop_entry_validates() -> None:
    entry = ROOT / "installer" / "linux" / "foundry-desk.desktop"
    result = run("desktop-file-validate", str(entry))
    assert result.returncode == 0 and result.stdout == "", result.stdout


# -- installed -------------------------------------------------------------------------------------


def test_installed_files_command_reads_every_kind_of_document(installed: Path, tmp_path: Path) -> None:
    """The bundle holds what reads PDF and Word files (pypdf, python-docx and its lxml)."""
    folder = tmp_path / "documents"
    facts = corpus.write_corpus(folder, count=50)
    env = {**os.environ, "FOUNDRY_DESK_HOME": str(tmp_path / "home")}

    def files(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(installed), "files", *args], env=env, capture_output=True, text=True,
                              timeout=120, check=False)  # fmt: skip

    added = files("add", str(folder))
    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines()[-1].startswith("50 indexed,"), added.stdout
    for suffix in (".pdf", ".docx", ".html"):
        fact = next(f for f in facts if f.path.suffix == suffix)
        found = json.loads(files("search", fact.question, "--json").stdout)
        assert found[0]["path"] == str(fact.path) and fact.answer in found[0]["text"]


@pytest.mark.usefixtures("no_leftover_children")
def test_installed_headless_serves_the_model_and_the_chat(
    installed: Path, tiny_models: TinyModels, tmp_path: Path
) -> None:
    assert DESKTOP_ENTRY.is_file() and (INSTALL_DIR / "foundry-desk").is_file()
    chat_port = free_port()
    app = Headless(
        tmp_path / "home",
        {},
        "--chat", "--model-path", str(tiny_models.alpha), "--runtime-port", str(free_port()),
        "--chat-port", str(chat_port),
        command=(str(installed),),
    )  # fmt: skip
    try:
        base_url, model = app.endpoint()
        link = app.wait_for_line(rf"chat: (http://127\.0\.0\.1:{chat_port}/\?token=\S+)").group(1)
        assert completion(base_url, model) == ALPHA_ANSWER
        with httpx.Client(follow_redirects=True, timeout=10) as browser:  # a browser given the link
            page = browser.get(link)
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            assert "assets/app.mjs" in page.text
            handshake = browser.get(f"http://127.0.0.1:{chat_port}/ws/socket.io/?EIO=4&transport=polling")
            assert handshake.text.startswith("0{") and '"sid"' in handshake.text
        # the app and its children (runtime host, chat server, indexer) all run from the bundle
        children = psutil.Process(app.process.pid).children(recursive=True)
        assert len(children) >= 3
        assert {child.exe() for child in children} == {str(INSTALL_DIR / "foundry-desk")}
        assert psutil.Process(app.process.pid).exe() == str(INSTALL_DIR / "foundry-desk")
    finally:
        code = app.finish(signal.SIGINT)  # Ctrl+C
    assert code == 0, app.stderr
    assert "Stopped." in app.seen
    wait_until(lambda: not from_bundle(), 10, "no process of the bundle left")


@pytest.mark.usefixtures("no_leftover_children")
def test_installed_compare_command_measures_two_models_at_once(
    installed: Path, tiny_models: TinyModels, tmp_path: Path
) -> None:
    """`foundry-desk compare` from the bundle: a runtime of its own, both models loaded in it."""
    env = {**os.environ, "FOUNDRY_DESK_HOME": str(tmp_path / "home"), "FOUNDRY_DESK_OFFLINE": "1",
           "FOUNDRY_DESK_RUNTIME_PORT": str(free_port())}  # fmt: skip
    command = [
        str(installed),
        "compare",
        "Hi",
        "--model",
        str(tiny_models.alpha),
        "--model",
        str(tiny_models.beta),
    ]
    result = subprocess.run(
        [*command, "--json"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    alpha, beta = json.loads(result.stdout)
    assert (alpha["text"], beta["text"]) == (ALPHA_ANSWER, BETA_ANSWER)
    assert alpha["ttft_ms"] > 0 and beta["tokens_per_s"] > 0


@pytest.mark.usefixtures("no_leftover_children")
def test_installed_webgpu_page_and_the_browser_gets_the_systems_libraries(
    installed: Path, tmp_path: Path
) -> None:
    opened = tmp_path / "opened.json"
    browser = tmp_path / "browser"
    browser.write_text(
        "#!/bin/sh\n"
        f"""printf '{{"url": "%s", "ld": "%s"}}' "$1" "${{LD_LIBRARY_PATH-unset}}" > {opened}\n"""
    )
    browser.chmod(0o755)
    env = {**os.environ, "BROWSER": str(browser), "FOUNDRY_DESK_HOME": str(tmp_path / "home"),
           "LD_LIBRARY_PATH": "/opt/the-users/lib"}  # fmt: skip
    process = subprocess.Popen([str(installed), "--webgpu"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split(": ", 1)[1].strip()
        wait_until(opened.exists, 10, "the page opened in the browser")
        launched = json.loads(opened.read_text())
        assert launched == {"url": url, "ld": "/opt/the-users/lib"}  # not the bundle's library path
        status, kind, page = get(url)
        assert status == 200 and kind.startswith("text/html") and b"app.mjs" in page
        manifest = json.loads(get(f"{url}ort/manifest.json")[2])
        wasm = next(name for name in manifest["files"] if name.endswith(".wasm"))
        status, kind, body = get(f"{url}ort/{wasm}")
        assert status == 200 and kind == "application/wasm" and body[:4] == b"\0asm"
        status, _, model = get(f"{url}model/digits.onnx")
        assert status == 200 and len(model) > 100_000
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        assert process.stdout is not None
        process.stdout.close()


def history_answers(home: Path) -> list[str]:
    database = AppPaths.under(home).data_dir / "chat" / "history.sqlite3"
    if not database.exists():
        return []
    with contextlib.closing(sqlite3.connect(database)) as connection:
        rows = connection.execute("SELECT output FROM steps WHERE type = 'assistant_message'").fetchall()
    return [str(row[0] or "") for row in rows]


def screen_settled(session: XSession, shots: Path) -> bool:
    """The screen shows a painted page and did not change between two looks (nothing loading)."""
    first = session.screenshot(shots / "a.png").read_bytes()
    second = session.screenshot(shots / "b.png")
    return painted(second) and first == second.read_bytes()


ACCENT = (15, 118, 110)
"""The chat page's accent colour (`--accent` in chat.css): the first-run page's main button."""


def first_run_page_on_screen(session: XSession, shot: Path) -> bool:
    """The chat window shows the first-run page: its main button ("Choose a model folder…", filled
    with the accent colour) stands where the conversation is, which has no such colour."""
    [window] = session.windows("^Foundry Desk — Chat$")
    x, y, width, height = session.geometry(window)
    with Image.open(session.screenshot(shot)) as image:
        middle = image.convert("RGB").crop((x + 300, y + 60, x + width, y + height - 120))
    return (
        sum(count for count, colour in middle.getcolors(maxcolors=1 << 20) or () if colour == ACCENT) > 3000
    )


@pytest.mark.skipif(bool(missing_tools()), reason=f"virtual desktop tools missing: {missing_tools()}")
@pytest.mark.usefixtures("no_leftover_children")
def test_installed_app_first_run_to_an_answer(
    installed: Path, tiny_models: TinyModels, tmp_path: Path
) -> None:
    """No model, no notification daemon (the quit used to crash there), a tray: as a new user."""
    home = tmp_path / "home"
    paths = AppPaths.under(home)
    output = tmp_path / "app.log"
    with XSession(tmp_path / "x", tray=True, notifications=False) as desktop:
        env = {**os.environ, **desktop.env, "FOUNDRY_DESK_HOME": str(home), "HOME": str(tmp_path / "user"),
               "FOUNDRY_DESK_RUNTIME_PORT": str(free_port()),
               "FOUNDRY_DESK_CHAT_PORT": str(free_port())}  # fmt: skip
        with output.open("wb") as log:
            app = subprocess.Popen([str(installed)], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(
                lambda: tray_pixels(desktop.screenshot(tmp_path / "tray.png")) > 50, 30, "the tray icon"
            )
            wait_until(lambda: desktop.windows("^Foundry Desk — Chat$"), 60, "the chat window")
            no_model = read_status(paths.runtime_status_file)
            wait_until(
                lambda: (
                    (status := read_status(paths.runtime_status_file)) is not None
                    and status.state is RuntimeState.NO_MODEL
                ),
                60,
                f"the runtime to find no model (it says {no_model})",
            )
            # the first-run page: its folder field has the focus; type a model folder's path
            shots = tmp_path / "shots"
            wait_until(
                lambda: first_run_page_on_screen(desktop, shots / "first-run.png"), 30, "the first-run page"
            )
            wait_until(lambda: screen_settled(desktop, shots), 30, "the first-run page settled", every_s=0.5)
            [window] = desktop.windows("^Foundry Desk — Chat$")
            desktop.x("xdotool", "windowfocus", "--sync", window)
            desktop.x("xdotool", "type", "--delay", "20", str(tiny_models.alpha))
            desktop.x("xdotool", "key", "Return")
            wait_until(
                lambda: (
                    (status := read_status(paths.runtime_status_file)) is not None
                    and status.state is RuntimeState.READY
                    and status.model_alias == "alpha"
                ),
                60,
                "the chosen model served",
            )
            # ... and saved for the next start, once it is served
            wait_until(
                lambda: (
                    paths.settings_file.exists() and str(tiny_models.alpha) in paths.settings_file.read_text()
                ),
                30,
                "the model folder saved in the settings",
            )
            # the chat takes over; a typed message gets the model's answer
            wait_until(lambda: not first_run_page_on_screen(desktop, shots / "chat.png"), 30, "the chat")
            wait_until(lambda: screen_settled(desktop, shots), 30, "the chat settled", every_s=0.5)
            desktop.x("xdotool", "type", "--delay", "20", "Hello?")
            desktop.x("xdotool", "key", "Return")
            wait_until(lambda: any(ALPHA_ANSWER in a for a in history_answers(home)), 30, "the answer")
            desktop.screenshot(tmp_path / "answered.png")
            # Quit (as an installer or a script does it) stops everything
            quit_ = run(str(installed), "--quit", env=env, timeout=60)
            assert quit_.returncode == 0 and "has quit" in quit_.stdout
            assert app.wait(timeout=30) == 0
        finally:
            if app.poll() is None:
                app.kill()
                app.wait()
    assert "Traceback" not in output.read_text(errors="replace")
    wait_until(lambda: not from_bundle(), 10, "no process of the bundle left")


# -- on a plain Debian --------------------------------------------------------------------------


DEBIAN_MIRROR = "http://deb.debian.org/debian"


def os_codename() -> str:
    for line in Path("/etc/os-release").read_text(encoding="utf-8").splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip('"')
    return ""


@pytest.fixture(scope="module")
def plain_debian(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A minimal Debian of this machine's release (debootstrap: no desktop, no Python), with /proc."""
    if os.geteuid() != 0 or not shutil.which("debootstrap") or not os_codename():
        pytest.skip("a plain Debian needs root, debootstrap and a Debian release to copy")
    root = tmp_path_factory.mktemp("plain-debian")
    made = run("debootstrap", "--variant=minbase", os_codename(), str(root), DEBIAN_MIRROR, timeout=900)
    if "Failed getting release file" in made.stdout + made.stderr:
        pytest.skip(f"the Debian mirror {DEBIAN_MIRROR} cannot be reached from here")
    assert made.returncode == 0, made.stderr[-2000:]
    proc = root / "proc"
    subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)
    try:
        yield root
    finally:
        subprocess.run(["umount", "--lazy", str(proc)], check=False)
        if not os.path.ismount(proc):  # never delete through a mount
            shutil.rmtree(root, ignore_errors=True)


def in_chroot(root: Path) -> list[psutil.Process]:
    """The processes running inside the chroot at `root`."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if Path(f"/proc/{proc.pid}/root").resolve() == root.resolve():
                found.append(proc)
    return found


@pytest.mark.skipif(bool(missing_tools()), reason=f"virtual desktop tools missing: {missing_tools()}")
@pytest.mark.usefixtures("no_leftover_children")
def test_on_a_plain_debian_the_deb_brings_all_it_needs(
    packages: Packages, plain_debian: Path, tiny_models: TinyModels, tmp_path: Path
) -> None:
    """The package's Depends, and nothing else, run the tray, the window and the model."""
    root = plain_debian
    shutil.copy(packages.deb, root / "tmp" / packages.deb.name)
    shutil.copytree(tiny_models.alpha, root / "tmp" / "model")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LANG": "C.UTF-8"}
    assert run("chroot", str(root), "apt-get", "update", "-qq", env=env).returncode == 0
    installed = run("chroot", str(root), "apt-get", "install", "-y", "-qq", "--no-install-recommends",
                    f"/tmp/{packages.deb.name}", env=env, timeout=900)  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-2000:]
    assert not (root / "usr" / "bin" / "python3").exists()  # the app brings its own Python

    home = root / "tmp" / "home"
    with XSession(tmp_path / "x", tray=True, notifications=False) as desktop:
        app_env = {**env, "DISPLAY": desktop.display, "HOME": "/root", "FOUNDRY_DESK_HOME": "/tmp/home",
                   "FOUNDRY_DESK_MODEL_PATH": "/tmp/model", "FOUNDRY_DESK_RUNTIME_PORT": str(free_port()),
                   "FOUNDRY_DESK_CHAT_PORT": str(free_port()), "NO_AT_BRIDGE": "1",
                   "GTK_USE_PORTAL": "0"}  # fmt: skip
        with (tmp_path / "app.log").open("wb") as log:
            app = subprocess.Popen(["chroot", str(root), "foundry-desk"], env=app_env, stdout=log, stderr=log)
        try:
            tray_shot = tmp_path / "tray.png"
            wait_until(lambda: tray_pixels(desktop.screenshot(tray_shot)) > 50, 60, "the tray icon")
            wait_until(lambda: desktop.windows("^Foundry Desk — Chat$"), 60, "the chat window")
            status_file = AppPaths.under(home).runtime_status_file
            wait_until(
                lambda: (
                    (status := read_status(status_file)) is not None and status.state is RuntimeState.READY
                ),
                60,
                "the model served",
            )
            ready = read_status(status_file)
            assert ready is not None and ready.base_url is not None
            assert completion(ready.base_url, ready.model_id) == ALPHA_ANSWER
            shots = tmp_path / "shots"
            wait_until(lambda: screen_settled(desktop, shots), 30, "the chat painted", every_s=0.5)
            quit_ = run("chroot", str(root), "foundry-desk", "--quit", env=app_env, timeout=60)
            assert quit_.returncode == 0, quit_.stdout + quit_.stderr
            assert app.wait(timeout=30) == 0
        finally:
            if app.poll() is None:
                app.kill()
                app.wait()
    assert "Traceback" not in (tmp_path / "app.log").read_text(errors="replace")
    wait_until(lambda: not in_chroot(root), 10, "nothing left running in the plain Debian")


# -- removal (last) --------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_leftover_children")
def test_removing_the_package_quits_the_app_and_leaves_nothing(
    installed: Path, tiny_models: TinyModels, tmp_path: Path
) -> None:
    app = Headless(tmp_path / "home", {}, "--model-path", str(tiny_models.alpha), "--runtime-port", "0",
                   command=(str(installed),))  # fmt: skip
    try:
        app.endpoint()
        subprocess.run(
            as_root("apt-get", "remove", "-y", "-qq", "foundry-desk"), check=True, capture_output=True
        )
        assert app.finish(signum=None, timeout_s=30) == 0  # asked to quit by the package's removal
    finally:
        app.finish(signal.SIGKILL)
    assert not from_bundle()
    assert not INSTALL_DIR.exists() and not COMMAND.is_symlink() and not DESKTOP_ENTRY.exists()
    assert not Path("/usr/share/icons/hicolor/256x256/apps/foundry-desk.png").exists()
    assert (tmp_path / "home" / "config").is_dir()  # the user's own files stay
