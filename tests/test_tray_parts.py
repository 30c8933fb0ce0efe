"""The shell's parts without a screen: icons, notifications, start at login, one instance, the
window's size and when it reloads."""

from __future__ import annotations

import plistlib
from pathlib import Path

import pytest
from PIL import Image

from desktop.shell import instance, pystray_notifications
from desktop.shell.autostart import RUN_KEY, RUN_VALUE, LaunchAgent, WindowsRunKey, XdgAutostart
from desktop.shell.notify import Notice, Notifier, Snapshot, notices
from desktop.shell.tray import ShellState, icon_file
from desktop.shell.window import WINDOW_SIZE, fit_to_screen, same_site

COMMAND = ["/opt/Foundry Desk/foundry-desk"]


@pytest.mark.parametrize("state", list(ShellState))
def test_every_state_has_its_icons(state: ShellState) -> None:
    for size in (16, 22, 24, 32, 48, 64):
        with Image.open(icon_file(state, size)) as image:
            assert image.size == (size, size)
    with Image.open(icon_file(state).parent / f"tray-{state.value}.ico") as ico:
        assert (16, 16) in ico.info["sizes"] and (64, 64) in ico.info["sizes"]


def test_notifications_say_what_the_user_wants_to_know() -> None:
    starting = Snapshot()
    downloading = Snapshot("downloading", "phi-4-mini")
    ready = Snapshot("ready", "phi-4-mini")
    assert notices(starting, downloading) == []
    assert [n.title for n in notices(downloading, ready)] == ["Download finished", "Model ready"]
    assert notices(ready, ready) == []
    assert [n.title for n in notices(ready, Snapshot("ready", "beta"))] == ["Model ready"]
    failed = Snapshot("ready", "beta", failed_services=frozenset({"chat"}))
    assert [n.title for n in notices(Snapshot("ready", "beta"), failed)] == ["The chat service failed"]
    offline, offered = Snapshot("no_model"), Snapshot("no_model", download="phi-4-mini")
    assert notices(starting, offline)[0].message == "Open Foundry Desk to choose a model folder."
    assert notices(starting, offered) == [
        Notice("No model available", "Open Foundry Desk to choose a model folder or download phi-4-mini.")
    ]
    assert notices(offered, offered) == []
    sent: list[str] = []
    notifier = Notifier(lambda title, _: sent.append(title))
    notifier.observe(ready)
    notifier.observe(ready)
    assert sent == ["Model ready"]


def test_xdg_autostart_entry_is_written_and_removed(tmp_path: Path) -> None:
    entry = XdgAutostart({"HOME": str(tmp_path)})
    assert not entry.enabled()
    entry.enable(COMMAND)
    path = tmp_path / ".config" / "autostart" / "foundry-desk.desktop"
    assert entry.enabled() and path.is_file()
    assert "Exec='/opt/Foundry Desk/foundry-desk'" in path.read_text()
    entry.disable()
    assert not entry.enabled() and not path.exists()
    assert (
        XdgAutostart({"HOME": "/x", "XDG_CONFIG_HOME": str(tmp_path / "c")}).path.parent
        == tmp_path / "c" / "autostart"
    )


def test_launch_agent_is_written_and_removed(tmp_path: Path) -> None:
    agent = LaunchAgent({"HOME": str(tmp_path)})
    agent.enable(COMMAND)
    data = plistlib.loads((tmp_path / "Library" / "LaunchAgents" / "io.foundry-desk.plist").read_bytes())
    assert data["ProgramArguments"] == COMMAND and data["RunAtLoad"] is True
    agent.disable()
    assert not agent.enabled()


class DictRegistry:
    """The registry calls, kept in a dict (what winreg does on Windows)."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], str] = {}

    def get(self, key: str, name: str) -> str | None:
        return self.values.get((key, name))

    def set(self, key: str, name: str, value: str) -> None:
        self.values[(key, name)] = value

    def delete(self, key: str, name: str) -> None:
        self.values.pop((key, name), None)


def test_windows_run_key_is_written_and_removed() -> None:
    registry = DictRegistry()
    run_key = WindowsRunKey(registry)
    run_key.enable(COMMAND)
    assert registry.values == {(RUN_KEY, RUN_VALUE): '"/opt/Foundry Desk/foundry-desk"'}
    run_key.disable()
    assert not run_key.enabled()


def test_second_instance_hands_over_to_the_first(tmp_path: Path) -> None:
    first = instance.InstanceLock(tmp_path)
    assert first.acquire()
    shown: list[bool] = []
    first.serve({"show": lambda: shown.append(True)})
    try:
        second = instance.InstanceLock(tmp_path)
        assert not second.acquire()
        assert instance.send(tmp_path, "show", timeout_s=5)
        assert shown == [True]
        assert not instance.send(tmp_path, "unknown", timeout_s=5)
    finally:
        first.release()
    again = instance.InstanceLock(tmp_path)
    assert again.acquire()  # the lock went with its owner
    again.release()


def test_the_window_fits_on_small_screens() -> None:
    assert fit_to_screen((1920, 1080)) == WINDOW_SIZE
    assert fit_to_screen(None) == WINDOW_SIZE  # the screen's size unknown
    assert fit_to_screen((1366, 768)) == (1100, 691)  # a laptop shorter than the window
    assert fit_to_screen((1024, 600)) == (921, 540)
    assert fit_to_screen((400, 300)) == (400, 300)  # never less than the least size, but on screen


def test_showing_the_chat_again_keeps_the_page_the_user_is_on() -> None:
    chat = "http://127.0.0.1:8765"
    assert same_site("http://127.0.0.1:8765/", chat)
    assert same_site("http://127.0.0.1:8765/thread/1f0c", chat)
    assert not same_site("http://127.0.0.1:8766/", chat)  # the WebGPU page, another server
    assert not same_site("about:blank", chat)  # the placeholder
    assert not same_site("", chat)


def test_pystray_internals_we_rely_on() -> None:
    """desktop/shell/pystray_notifications.py replaces the notifier pystray's GTK backends create.

    Read from pystray's source (importing pystray picks a backend, which needs a display)."""
    import ast
    import importlib.util
    from importlib import metadata

    spec = importlib.util.find_spec("pystray")
    assert spec is not None and spec.origin is not None
    util = Path(spec.origin).parent / "_util"
    assert metadata.version("pystray") == "0.19.5"
    assert "notify_dbus.Notifier()" in (util / "gtk.py").read_text(encoding="utf-8")
    module = ast.parse((util / "notify_dbus.py").read_text(encoding="utf-8"))
    [notifier] = [node for node in module.body if isinstance(node, ast.ClassDef) and node.name == "Notifier"]
    methods = {f.name: [a.arg for a in f.args.args] for f in notifier.body if isinstance(f, ast.FunctionDef)}
    assert methods["notify"] == ["self", "title", "message", "icon"] and methods["hide"] == ["self"]


class DaemonNotifier:
    """Stands for pystray's notifier; `daemon` False: no notification daemon answers."""

    daemon = True

    def __init__(self) -> None:
        if not self.daemon:
            raise RuntimeError("org.freedesktop.Notifications was not provided by any .service files")
        self.shown: list[str] = []

    def notify(self, title: str, message: str, icon: object) -> None:
        self.shown.append(title)

    def hide(self) -> None:
        if not self.daemon:
            raise RuntimeError("no daemon")
        self.shown.clear()


def test_without_a_notification_daemon_the_tray_still_runs_and_quits() -> None:
    notifier = pystray_notifications.tolerant_notifier(DaemonNotifier)()
    notifier.notify("Model ready", "alpha is ready", None)
    assert notifier.shown == ["Model ready"]
    notifier.hide()
    assert notifier.shown == []

    DaemonNotifier.daemon = False
    try:
        quiet = pystray_notifications.tolerant_notifier(DaemonNotifier)()  # the icon starts
        quiet.notify("Model ready", "alpha is ready", None)  # dropped, no error
        quiet.hide()  # quitting is clean
        assert not quiet.available
    finally:
        DaemonNotifier.daemon = True
