"""The desktop shell on a virtual screen: real Xvfb, tray host, session bus, dunst, pystray and
pywebview (GTK/WebKit2GTK), driving the real app with the real runtime serving a tiny model."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
import pytest
from PIL import Image

from desktop.documents.index import DocumentIndex
from desktop.openwebui.service import CONTAINER_NAME
from desktop.paths import AppPaths
from desktop.probe import http_ok
from desktop.process import process_alive
from desktop.runsecret import RunSecret
from desktop.runtime.service import RuntimeClient
from desktop.shell.pages import CHAT_TITLE, WEBGPU_TITLE
from tests.conftest import TinyModels, free_port, not_private
from tests.support import corpus
from tests.support.docker_cli import FakeDocker
from tests.support.shell_driver import ShellApp
from tests.support.xsession import (
    XSession,
    close_windows,
    missing_tools,
    notification_texts,
    notifications,
    painted,
    tray_pixels,
    wait_until,
)

pytestmark = [
    pytest.mark.skipif(bool(missing_tools()), reason=f"virtual desktop tools missing: {missing_tools()}"),
    pytest.mark.usefixtures("no_leftover_children"),
]
SHOTS = Path(os.environ.get("FOUNDRY_DESK_SHOTS", "/tmp/foundry-desk-shots"))
T = TypeVar("T")
SERVICES = ("runtime-host", "chat-server", "window-host")
"""Words in the command lines of the app's service processes."""


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


def opened(tmp_path: Path) -> list[str]:
    """What the app asked the desktop to open (the `xdg-open` stand-in's record), oldest first."""
    record = tmp_path / "opened.txt"
    return record.read_text().splitlines() if record.exists() else []


COMPOSER = """(() => {
  const box = document.querySelector('#message-composer');
  if (!box || !document.querySelector('#chat-input')) return null;
  const r = box.getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  let opacity = 1;
  for (let e = box; e; e = e.parentElement) opacity *= parseFloat(getComputedStyle(e).opacity);
  return {rect: [r.left, r.top, r.width, r.height], viewport: [innerWidth, innerHeight],
          opacity: opacity, on_top: !!hit && box.contains(hit), page: performance.timeOrigin};
})()"""
"""The chat's message box in the window's page: where it is, whether anything covers it, how opaque."""


def composer_on_screen(desktop: XSession, app: ShellApp, title: str, shot: Path) -> dict[str, Any] | None:
    """The chat's message box as the user sees it: in the page, opaque, not covered, inside the
    window and the screen, and painted there (its box differs from the page around it). Returns
    the page's report, or None while it is not so."""
    answer = app.ask("probe", script=COMPOSER) or {}
    found = answer.get("value")
    windows = desktop.windows(title)
    if not found or not windows or found["opacity"] < 1 or not found["on_top"]:
        return None
    left, top, width, height = (round(v) for v in found["rect"])
    if left < 0 or top < 0 or left + width > found["viewport"][0] or top + height > found["viewport"][1]:
        return None  # scrolled or cut off inside the window
    x, y, _, _ = desktop.geometry(windows[0])
    with Image.open(desktop.screenshot(shot)) as image:
        screen = image.convert("RGB")
        x, y = x + left, y + top
        if x < 8 or y < 0 or x + width > screen.width or y + height > screen.height:
            return None  # the window hangs over the screen's edge
        around = screen.getpixel((x - 6, y + height // 2))
        inside = screen.crop((x + 4, y + 4, x + width - 4, y + height - 4)).convert("RGB")
        pixels = inside.tobytes()
    differing = sum(1 for i in range(0, len(pixels), 3) if tuple(pixels[i : i + 3]) != around)
    return found if differing > 0.8 * len(pixels) / 3 else None


def wait_value(produce: Callable[[], T | None], timeout_s: float, what: str) -> T:
    """Wait until `produce()` gives a value (not None) and return it."""
    box: list[T] = []

    def ready() -> bool:
        value = produce()
        if value is not None:
            box.append(value)
        return bool(box)

    wait_until(ready, timeout_s, what, every_s=0.2)
    return box[0]


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
    older_log = tmp_path / "home" / "logs" / "foundry-desk.log"  # as an older version left it
    older_log.parent.mkdir(parents=True, mode=0o755)
    older_log.write_text("an older run\n")
    older_log.chmod(0o644)
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
        """The chat itself, signed in as the local user (the welcome text needs a signed-in request)."""
        app.ask("probe")
        text = app.state()["window"]["text"]
        return "Private AI chat" in text

    wait_until(chat_painted, 20, "the chat page signed in", every_s=0.2)
    wait_until(lambda: painted(desktop.screenshot(SHOTS / "chat.png")), 15, "the chat on screen", every_s=0.5)
    # ... with its message box on screen, to type in
    wait_value(
        lambda: composer_on_screen(desktop, app, CHAT_TITLE, SHOTS / "chat.png"), 15, "the message box"
    )
    wait_until(lambda: "Model ready" in notifications(desktop), 5, "the model-ready notification")

    # the menu shows the live state
    menu = {item["text"]: item for item in app.ask("menu")}
    assert menu["Ready: alpha"]["enabled"] is False
    assert [(m["text"], m["checked"]) for m in menu["Model"]["items"]] == [("alpha", True)]
    stop = menu["Open WebUI (stopped)"]["items"][1]
    assert (stop["text"], stop["enabled"], stop["checked"]) == ("Stop", False, None)
    assert menu["Restart"]["visible"] is False  # no service failed
    assert menu["Start at login"]["checked"] is False

    # switch to the WebGPU page and back
    app.click("Open WebGPU demo")
    state = app.wait_state(lambda s: s["window"]["title"] == WEBGPU_TITLE, 15, "the WebGPU page")
    assert state["window"]["url"].startswith("http://127.0.0.1:")
    wait_until(lambda: desktop.windows(WEBGPU_TITLE), 5, "the retitled window")
    desktop.screenshot(SHOTS / "webgpu.png")

    # closing the window hides it; the app keeps running; reopening shows the same window
    close_until_hidden(desktop, app, WEBGPU_TITLE)
    wait_until(lambda: not desktop.windows("^Foundry Desk — "), 5, "no visible window")
    window_pid = app.state()["window"]["pid"]
    assert window_pid is not None
    app.click("Open chat")  # how fast it shows again: tests/benchmark_shell.py
    state = app.wait_state(
        lambda s: s["window"]["visible"] and s["window"]["title"] == CHAT_TITLE, 10, "chat"
    )
    assert state["window"]["pid"] == window_pid  # the same window, shown again

    # closing the chat and opening it again keeps its page (no reload: a thread, a draft stay),
    # message box included, on screen at once
    before = wait_value(lambda: composer_on_screen(desktop, app, CHAT_TITLE, SHOTS / "chat.png"), 15, "chat")
    close_until_hidden(desktop, app, CHAT_TITLE)
    app.click("Open chat")
    app.wait_state(lambda s: s["window"]["visible"], 5, "the chat shown again")
    after = wait_value(
        lambda: composer_on_screen(desktop, app, CHAT_TITLE, SHOTS / "chat-again.png"), 3, "it"
    )
    assert after["page"] == before["page"]

    # a second launch shows the running app's chat window and exits; no second app
    app.click("Open WebGPU demo")
    app.wait_state(lambda s: s["window"]["title"] == WEBGPU_TITLE, 10, "away from the chat")
    state_dir = AppPaths.under(tmp_path / "home").state_dir
    secret = RunSecret.read(state_dir)
    second = ShellApp(desktop, tmp_path / "home", env, name="second")
    assert second.finish(timeout_s=30) == 0
    assert "already running" in second.stderr
    assert secret is not None and RunSecret.read(state_dir) == secret  # still the running app's
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
    wait_until(lambda: opened(tmp_path), 5, "the logs folder opened")
    assert opened(tmp_path) == [str(tmp_path / "home" / "logs")]

    # Your files: a folder added (as the chat's dialog adds one) is read by the app's indexer, and
    # listed with its count; Add folder… opens the chat's Your files dialog; Remove takes it out
    folder = tmp_path / "notes"
    corpus.write_corpus(folder, count=50)
    with DocumentIndex(AppPaths.under(tmp_path / "home").files_index_file) as index:
        index.add(folder)
    listed = wait_value(
        lambda: menu_item(app, "Your files", "notes (50 files)"), 60, "the folder in the menu"
    )
    assert [item["text"] for item in listed["items"]] == ["Open", "Remove from the index"]
    app.click("Your files", "notes (50 files)", "Open")
    wait_until(lambda: str(folder) in opened(tmp_path), 5, "the folder opened")
    app.click("Your files", "Add folder…")

    def files_dialog_shown() -> bool:
        app.ask("probe")
        window = app.state()["window"]
        return bool(window["visible"]) and 'With "Use my files" on' in window["text"]

    wait_until(files_dialog_shown, 10, "the chat's Your files dialog", every_s=0.2)
    app.click("Your files", "notes (50 files)", "Remove from the index")
    wait_until(lambda: menu_item(app, "Your files", "notes (50 files)") is None, 10, "the folder removed")
    assert [item["text"] for item in menu_item(app, "Your files")["items"]] == ["Add folder…"]  # type: ignore[index]

    # quit means quit
    app.remember_children()
    assert len(app.seen_pids) >= 4  # runtime host, chat server, indexer, window
    app.click("Quit")
    assert app.finish(timeout_s=30) == 0
    assert app.leftovers() == []
    # everything the session wrote (history, logs, secrets, run records, the runtime's own files)
    # is the user's alone, and so is what the older version had left open
    assert not_private(tmp_path / "home") == []
    assert older_log.read_text().startswith("an older run")
    assert RunSecret.read(state_dir) is None  # the run's secret went with it


@pytest.fixture
def fake_docker(tmp_path: Path) -> Iterator[FakeDocker]:
    fake = FakeDocker.install(tmp_path)
    yield fake
    fake.kill_containers()


def docker_env(fake: FakeDocker) -> dict[str, str]:
    """For the app: the stand-in first on its PATH, Open WebUI through Docker on a free port."""
    return {
        **fake.env(),
        "FOUNDRY_DESK_OPEN_WEBUI_BACKEND": "docker",
        "FOUNDRY_DESK_OPEN_WEBUI_PORT": str(free_port()),
    }


def app_runtime_client(home: Path) -> RuntimeClient:
    """A client of the running app's runtime, with the secret the app wrote for the user's tools."""
    paths = AppPaths.under(home)
    secret = RunSecret.read(paths.state_dir)
    assert secret is not None, "the app wrote no run secret"
    return RuntimeClient(paths.runtime_status_file, secret)


def menu_item(app: ShellApp, *path: str) -> dict[str, Any] | None:
    """The menu entry reached by these labels, as the menu shows it now; None when there is none."""
    items: list[dict[str, Any]] = app.ask("menu")
    found = None
    for label in path:
        found = next((item for item in items if item["text"] == label), None)
        if found is None:
            return None
        items = found.get("items", [])
    return found


def latest_notification(desktop: XSession) -> str:
    shown = notification_texts(desktop)
    return " ".join(shown[0]) if shown else ""


def command_line(pid: int) -> str:
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return ""


def test_model_menu_open_webui_and_sigterm(  # noqa: PLR0915 (one session, one story)
    desktop: XSession, apps: list[ShellApp], tiny_models: TinyModels, fake_docker: FakeDocker, tmp_path: Path
) -> None:
    env = {**app_env(tiny_models, tmp_path), **docker_env(fake_docker), "FOUNDRY_DESK_RESTART_LIMIT": "1"}
    home = tmp_path / "home"
    app = ShellApp(desktop, home, env)
    apps.append(app)
    app.connect()
    state = app.wait_state(lambda s: s["state"] == "ready", 60, "alpha ready")
    assert state["text"] == "Ready: alpha"

    # Model ▸ lists the models the runtime has (beta registered the way the chat's picker does it)
    runtime = app_runtime_client(home)
    assert runtime.select(str(tiny_models.beta)).model_alias == "beta"
    assert runtime.select("alpha").model_alias == "alpha"
    # the tray caught up (else its "Ready: beta" from just before could answer the wait below)
    app.wait_state(lambda s: s["text"] == "Ready: alpha", 10, "alpha served again")

    def models() -> list[tuple[str, bool]]:
        return [(m["text"], m["checked"]) for m in (menu_item(app, "Model") or {}).get("items", [])]

    wait_until(lambda: models() == [("alpha", True), ("beta", False)], 10, "both models, alpha checked")

    # choosing the other one switches the runtime to it: icon, tooltip, check mark and a notification
    app.click("Model", "beta")
    state = app.wait_state(lambda s: s["text"] == "Ready: beta", 30, "beta served")
    assert state["tooltip"] == "Foundry Desk: Ready: beta"
    served = runtime.status()
    assert served is not None and served.model_alias == "beta" and state["endpoint"] == served.base_url
    wait_until(lambda: models() == [("alpha", False), ("beta", True)], 5, "the check mark on beta")
    # (the runtime's "Model ready" and the menu's "Model switched" race; the later one replaces the other)
    wait_until(lambda: "beta" in latest_notification(desktop), 5, "a notification naming beta")

    # Open WebUI ▸ Start runs our container on the runtime's endpoint; the menu says it runs
    assert (menu_item(app, "Open WebUI (stopped)", "Start") or {}).get("enabled") is True
    app.click("Open WebUI (stopped)", "Start")
    wait_until(lambda: menu_item(app, "Open WebUI (running)"), 20, "Open WebUI running")
    ui_url = f"http://127.0.0.1:{env['FOUNDRY_DESK_OPEN_WEBUI_PORT']}"
    assert http_ok(f"{ui_url}/health")
    [run] = [call for call in fake_docker.calls() if call[:1] == ["run"]]
    assert f"OPENAI_API_BASE_URL={served.base_url}" in run and run[run.index("--name") + 1] == CONTAINER_NAME
    running = menu_item(app, "Open WebUI (running)") or {}
    assert {i["text"]: i["enabled"] for i in running["items"]} == {"Start": False, "Stop": True, "Open": True}
    wait_until(lambda: "Open WebUI is running" in notifications(desktop), 5, "the running notification")
    assert (menu_item(app, "Restart") or {}).get("visible") is False  # nothing failed

    # Open WebUI is watched like the other services: its container's process killed, it is run
    # again; killed again past the restart limit (1 here), the menu says it failed and the tray
    # offers to restart it; Restart runs it again
    first = fake_docker.containers()[CONTAINER_NAME]["pid"]
    os.kill(first, signal.SIGKILL)

    def running_again() -> bool:
        container = fake_docker.containers().get(CONTAINER_NAME) or {}
        return container.get("pid") not in (None, first) and bool(menu_item(app, "Open WebUI (running)"))

    wait_until(running_again, 20, "Open WebUI run again")
    os.kill(fake_docker.containers()[CONTAINER_NAME]["pid"], signal.SIGKILL)
    wait_until(lambda: menu_item(app, "Open WebUI (failed)"), 10, "Open WebUI shown failed")
    restart = menu_item(app, "Restart Open WebUI")
    assert restart is not None and restart.get("visible", True) is True
    app.click("Restart Open WebUI")
    wait_until(lambda: menu_item(app, "Open WebUI (running)"), 20, "Open WebUI running after Restart")
    assert http_ok(f"{ui_url}/health") and (menu_item(app, "Restart") or {}).get("visible") is False

    # Open opens it in the browser, signed in with the app's account: a one-time link to the
    # app's sign-in page, which hands Open WebUI's /auth a session; Stop removes the container
    app.click("Open WebUI (running)", "Open")
    wait_until(lambda: any("/open-webui?token=" in url for url in opened(tmp_path)), 5, "Open WebUI opened")
    [link] = [url for url in opened(tmp_path) if "/open-webui?token=" in url]
    with httpx.Client(timeout=10) as browser:
        signed_in = browser.get(link)
        assert signed_in.status_code == 303 and signed_in.headers["location"] == f"{ui_url}/auth"
        assert browser.get(f"{ui_url}/api/v1/auths/").json()["role"] == "admin"  # (its cookie: any port)
    app.click("Open WebUI (running)", "Stop")
    wait_until(lambda: menu_item(app, "Open WebUI (stopped)"), 10, "Open WebUI stopped")
    assert fake_docker.containers() == {} and not http_ok(f"{ui_url}/health")

    # Offline mode: checked, saved, and the runtime starts again without any catalog; the models
    # on the disk are still offered, and the chat comes back in the window
    app.click("Offline mode")
    wait_until(lambda: (menu_item(app, "Offline mode") or {}).get("checked") is True, 5, "the check mark")
    wait_until(lambda: "Offline mode is on" in notifications(desktop), 60, "the offline notification")
    app.wait_state(lambda s: s["text"] == "Ready: alpha", 60, "alpha served offline")
    hosts = [p for p in psutil.Process(app.process.pid).children() if "runtime-host" in p.cmdline()]
    assert [("--offline" in p.cmdline()) for p in hosts] == [True]
    assert "offline = true" in (home / "config" / "settings.toml").read_text()
    wait_until(lambda: [m for m, _ in models()] == ["alpha", "beta"], 10, "both models, offline")
    app.wait_state(lambda s: bool(s["chat_url"]) and bool((s["window"] or {}).get("url")), 30, "the chat")

    # started again, then the session ends: every process of it gets SIGTERM at once (the
    # container is the Docker engine's, not the session's). SIGTERM means Quit: the services are
    # not restarted although they exit by themselves, and our container is stopped.
    app.click("Open WebUI (stopped)", "Start")
    wait_until(lambda: menu_item(app, "Open WebUI (running)"), 20, "Open WebUI running again")
    container = fake_docker.containers()[CONTAINER_NAME]["pid"]
    app.wait_state(lambda s: bool(s["chat_url"]) and bool((s["window"] or {}).get("visible")), 30, "chat up")
    app.remember_children()
    services = {pid for pid in app.seen_pids if any(m in command_line(pid) for m in SERVICES)}
    assert len(services) == 3  # runtime host, chat server, window
    for pid in [app.process.pid, *app.seen_pids]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    during_quit = app.descendants_until_exit(timeout_s=30)
    assert app.finish(timeout_s=5) == 0
    respawned = {
        pid: cmd
        for pid, cmd in during_quit.items()
        if pid not in services and any(m in cmd for m in SERVICES)
    }
    assert respawned == {}
    assert app.leftovers() == [] and app.strays() == []
    assert fake_docker.containers() == {} and not process_alive(container)
    assert [call[0] for call in fake_docker.calls()][-2:] == ["stop", "rm"]


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


SETUP_VIEW = """(() => {
  const setup = document.querySelector('#setup');
  return {setup: !!setup && !setup.hidden, composer: !!document.querySelector('#chat-input')?.offsetParent,
          dialog: typeof window.pywebview?.api?.choose_folder === 'function'};
})()"""
"""What the chat page in the window shows: the setup view or the chat, and whether the page can
open the native folder dialog."""


def page_shows(app: ShellApp, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    """The window's page (text and SETUP_VIEW's report) once `check` holds for it, else None."""
    answer = app.ask("probe", script=SETUP_VIEW) or {}
    value = answer.get("value")
    return answer if isinstance(value, dict) and check({**value, "text": answer.get("text", "")}) else None


def test_first_run_without_a_model_offers_the_setup_view_and_the_native_folder_dialog(
    desktop: XSession, apps: list[ShellApp], tiny_models: TinyModels, tmp_path: Path
) -> None:
    env = app_env(tiny_models, tmp_path)
    del env["FOUNDRY_DESK_MODEL_PATH"]
    home = tmp_path / "home"
    app = ShellApp(desktop, home, env)
    apps.append(app)
    app.connect()

    # Offline with no model: the window shows the setup view, and the page can open the folder dialog
    app.wait_state(lambda s: s["text"] == "No model: choose a model folder", 60, "no model")
    wait_value(
        lambda: page_shows(app, lambda p: p["setup"] and p["dialog"] and "You're offline" in p["text"]),
        30,
        "the setup view, with the folder dialog offered",
    )
    desktop.screenshot(SHOTS / "setup.png")
    runtime = app_runtime_client(home)
    status = runtime.status()
    assert status is not None
    assert "--ask-before-download" in command_line(status.pid)  # it never downloads unasked

    # ... the notification and the tray's Model menu say how to get a model
    told = ("No model available", "Open Foundry Desk to choose a model folder.")
    wait_until(lambda: told in notification_texts(desktop), 10, "the no-model notification")
    assert (menu_item(app, "Model") or {}).get("items") == [
        {"text": "Choose a model…", "enabled": True, "checked": None}
    ]
    close_until_hidden(desktop, app, CHAT_TITLE)
    app.click("Model", "Choose a model…")
    app.wait_state(lambda s: s["window"]["visible"] and s["window"]["title"] == CHAT_TITLE, 10, "chat")

    # Choose a model folder… opens the system's folder dialog; a typed path chooses the folder
    app.ask("probe", script="document.querySelector('#setup-choose-folder').click() === undefined")
    wait_until(lambda: desktop.windows("^Open folder$"), 10, "the folder dialog")
    [dialog] = desktop.windows("^Open folder$")
    for keys in (["windowfocus", "--sync", dialog], ["key", "--clearmodifiers", "ctrl+l"],
                 ["type", "--delay", "20", f"{tiny_models.alpha}/"]):  # fmt: skip
        assert desktop.x("xdotool", *keys).returncode == 0, keys
    desktop.screenshot(SHOTS / "folder-dialog.png")
    desktop.x("xdotool", "key", "Return")  # the typed folder is the one chosen
    ready = runtime.wait(lambda s: s.state.value == "ready", 60)
    assert ready.model_alias == "alpha"
    wait_value(lambda: page_shows(app, lambda p: p["composer"] and not p["setup"]), 30, "the chat")
    settings = home / "config" / "settings.toml"
    saved = f"model_path = {json.dumps(str(tiny_models.alpha.resolve()))}"
    wait_until(lambda: settings.exists() and saved in settings.read_text(encoding="utf-8"), 10, "saved")
    app.wait_state(lambda s: s["text"] == "Ready: alpha", 10, "the tray on alpha")

    app.remember_children()
    app.click("Quit")
    assert app.finish(timeout_s=30) == 0
    assert app.leftovers() == []
