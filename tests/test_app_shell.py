"""The desktop shell on a virtual screen: real Xvfb, tray host, session bus, dunst, pystray and
pywebview (GTK/WebKit2GTK), driving the real app with the real runtime serving a tiny model."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from desktop.app import CHAT_TITLE, WEBGPU_TITLE
from tests.conftest import TinyModels, free_port
from tests.support.shell_driver import ShellApp
from tests.support.xsession import XSession, close_windows, missing_tools, notifications, wait_until

pytestmark = [
    pytest.mark.skipif(bool(missing_tools()), reason=f"virtual desktop tools missing: {missing_tools()}"),
    pytest.mark.usefixtures("no_leftover_children"),
]
SHOTS = Path(os.environ.get("FOUNDRY_DESK_SHOTS", "/tmp/foundry-desk-shots"))


@pytest.fixture
def desktop(tmp_path: Path) -> Iterator[XSession]:
    with XSession(tmp_path / "x", tray=True) as session:
        yield session


@pytest.fixture
def bare_desktop(tmp_path: Path) -> Iterator[XSession]:
    with XSession(tmp_path / "x", tray=False) as session:
        yield session


@pytest.fixture
def apps() -> Iterator[list[ShellApp]]:
    started: list[ShellApp] = []
    yield started
    for app in started:
        app.kill_everything()


def app_env(models: TinyModels, tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (tmp_path / "user" / ".config").mkdir(parents=True, exist_ok=True)
    opened = tmp_path / "opened.txt"
    # a stand-in for the desktop's file manager: records what the app asked to open
    fake = bin_dir / "xdg-open"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {opened}\n')
    fake.chmod(0o755)
    return {
        "FOUNDRY_DESK_MODEL_PATH": str(models.alpha),
        "FOUNDRY_DESK_RUNTIME_PORT": str(free_port()),
        "FOUNDRY_DESK_CHAT_PORT": str(free_port()),
        "HOME": str(tmp_path / "user"),
        "XDG_CONFIG_HOME": str(tmp_path / "user" / ".config"),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
    }


def tray_pixels(shot: Path) -> int:
    """How many pixels of the icon's teal tile are in the tray area (top right corner)."""
    with Image.open(shot) as image:
        corner = image.convert("RGB").crop((image.width - 200, 0, image.width, 40))
        data = corner.tobytes()
    pixels = (data[i : i + 3] for i in range(0, len(data), 3))
    return sum(1 for r, g, b in pixels if abs(r - 17) < 25 and abs(g - 94) < 25 and abs(b - 89) < 25)


def painted(shot: Path) -> bool:
    """The screen shows a page with some detail, not a blank (all white or all dark) window."""
    with Image.open(shot) as image:
        window = image.convert("RGB").crop((100, 20, image.width - 100, image.height - 20))
        return len(window.getcolors(maxcolors=1 << 16) or ()) > 20


def close_until_hidden(desktop: XSession, app: ShellApp, title: str) -> None:
    """Press the (missing) window manager's close button until the app reports the window hidden.

    Without a window manager a close request sent while the window is still settling can be
    lost; a user would click again, and so does this.
    """

    def hidden() -> bool:
        if app.state()["window"]["visible"]:
            close_windows(desktop, title)
            return False
        return True

    wait_until(hidden, 10, "the window hidden", every_s=0.5)


def test_tray_menu_window_and_quit(  # noqa: PLR0915 (one session, one story)
    desktop: XSession, apps: list[ShellApp], tiny_models: TinyModels, tmp_path: Path
) -> None:
    env = app_env(tiny_models, tmp_path)
    app = ShellApp(desktop, tmp_path / "home", env)
    apps.append(app)
    app.connect()

    # the icon appears in the tray host
    state = app.wait_state(lambda s: s["milestones"]["icon_visible"] is not None, 10, "the tray icon")
    assert state["tray"]
    wait_until(lambda: tray_pixels(desktop.screenshot(SHOTS / "tray.png")) > 50, 10, "the icon on screen")

    # first start: the window opens on the chat once the model and the chat are up
    state = app.wait_state(
        lambda s: s["state"] == "ready" and bool(s["chat_url"]) and bool((s["window"] or {}).get("url")),
        60,
        "ready, chat shown",
    )
    assert state["tooltip"] == "Foundry Desk: Ready: alpha"
    assert state["window"]["url"].startswith(state["chat_url"])
    assert state["window"]["title"] == CHAT_TITLE
    assert desktop.windows(CHAT_TITLE)

    def chat_painted() -> bool:
        """The chat itself, signed in as the local user: not a blank page, not a login form."""
        app.ask("probe")
        text = app.state()["window"]["text"]
        return bool(text.strip()) and "Login to access" not in text and "Readme" in text

    wait_until(chat_painted, 20, "the chat page signed in", every_s=0.2)
    wait_until(lambda: painted(desktop.screenshot(SHOTS / "chat.png")), 15, "the chat on screen", every_s=0.5)
    wait_until(lambda: "Model ready" in notifications(desktop), 5, "the model-ready notification")

    # the menu shows the live state
    menu = {item["text"]: item for item in app.ask("menu")}
    assert menu["Ready: alpha"]["enabled"] is False
    assert [(m["text"], m["checked"]) for m in menu["Model"]["items"]] == [("alpha", True)]
    assert menu["Open WebUI (stopped)"]["items"][1] == {"text": "Stop", "enabled": False, "checked": None}
    assert menu["Start at login"]["checked"] is False

    # switch to the WebGPU page and back
    app.click("Open WebGPU demo")
    state = app.wait_state(lambda s: s["window"]["title"] == WEBGPU_TITLE, 15, "the WebGPU page")
    assert state["window"]["url"].startswith("http://127.0.0.1:")
    wait_until(lambda: desktop.windows(WEBGPU_TITLE), 5, "the retitled window")
    desktop.screenshot(SHOTS / "webgpu.png")

    # closing the window hides it; the app keeps running; reopening is fast
    close_until_hidden(desktop, app, WEBGPU_TITLE)
    wait_until(lambda: not desktop.windows("^Foundry Desk — "), 5, "no visible window")
    window_pid = app.state()["window"]["pid"]
    assert window_pid is not None
    started = time.monotonic()
    app.click("Open chat")
    state = app.wait_state(
        lambda s: s["window"]["visible"] and s["window"]["title"] == CHAT_TITLE, 10, "chat"
    )
    assert time.monotonic() - started < 5.0  # the same window shown again (typically < 0.5 s)
    assert state["window"]["pid"] == window_pid  # the same window, shown again

    # a second launch shows the running app's chat window and exits; no second app
    app.click("Open WebGPU demo")
    app.wait_state(lambda s: s["window"]["title"] == WEBGPU_TITLE, 10, "away from the chat")
    second = ShellApp(desktop, tmp_path / "home", env, name="second")
    assert second.finish(timeout_s=30) == 0
    assert "already running" in second.stderr
    app.wait_state(lambda s: s["window"]["title"] == CHAT_TITLE, 10, "the chat shown by the second launch")
    assert app.process.poll() is None

    # start at login: written and removed in the user's XDG autostart folder
    entry = Path(env["XDG_CONFIG_HOME"]) / "autostart" / "foundry-desk.desktop"
    app.click("Start at login")
    wait_until(entry.exists, 5, "the autostart entry")
    assert "Exec=" in entry.read_text()
    assert next(i for i in app.ask("menu") if i["text"] == "Start at login")["checked"] is True
    app.click("Start at login")
    wait_until(lambda: not entry.exists(), 5, "the autostart entry removed")

    # copy endpoint, open logs
    app.click("Copy endpoint URL")
    wait_until(lambda: "Endpoint URL copied" in notifications(desktop), 5, "the copy notification")
    app.click("Open logs folder")
    opened = tmp_path / "opened.txt"
    wait_until(opened.exists, 5, "the logs folder opened")
    assert opened.read_text().strip() == str(tmp_path / "home" / "logs")

    # quit means quit
    app.remember_children()
    assert len(app.seen_pids) >= 3  # runtime host, chat server, window
    app.click("Quit")
    assert app.finish(timeout_s=30) == 0
    assert app.leftovers() == []


def test_without_a_tray_the_window_still_opens(
    bare_desktop: XSession, apps: list[ShellApp], tiny_models: TinyModels, tmp_path: Path
) -> None:
    app = ShellApp(bare_desktop, tmp_path / "home", app_env(tiny_models, tmp_path))
    apps.append(app)
    app.connect()
    state = app.wait_state(lambda s: bool((s["window"] or {}).get("visible")), 30, "the window")
    assert not state["tray"]
    assert "no system tray" in state["tray_problem"]
    assert "No tray icon" in app.stderr
    wait_until(lambda: bare_desktop.windows(CHAT_TITLE), 10, "the chat window on screen")
    wait_until(lambda: "Foundry Desk has no tray icon" in notifications(bare_desktop), 5, "the notice")
    bare_desktop.screenshot(SHOTS / "no-tray.png")
    # without a tray the window is the way out: closing it quits the app
    app.remember_children()
    wait_until(
        lambda: app.process.poll() is not None or close_windows(bare_desktop, CHAT_TITLE),
        30,
        "the app to quit when its window closes",
        every_s=0.5,
    )
    assert app.finish(timeout_s=30) == 0
    assert app.leftovers() == []
