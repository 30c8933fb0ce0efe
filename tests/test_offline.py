"""Nothing leaves the machine: whole sessions of `foundry-desk --headless --chat` under strace.

Every connect/sendto/sendmsg of the app and all its children is recorded (the test's browser is
not traced: it is the user's). A contact is any address but loopback, any DNS port, or the socket
of a resolver that goes out for us (systemd-resolved, avahi): one would tell the outside what the
user runs. (nscd's socket is not one: it answers user and group lookups from the disk too.)
"""

from __future__ import annotations

import re
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from playwright.sync_api import Browser

from desktop.paths import AppPaths
from desktop.runsecret import RunSecret
from desktop.runtime.control import OFFLINE_CATALOG
from desktop.runtime.service import RuntimeClient
from desktop.runtime.status import RuntimeState
from tests.conftest import ALPHA_ANSWER, BETA_ANSWER, TinyModels, free_port
from tests.support.chat_browser import logged_page, open_chat, send, wait_for_answer
from tests.support.headless_app import FROM_SOURCE, Headless

pytestmark = pytest.mark.skipif(
    shutil.which("strace") is None, reason="needs strace (apt-get install strace)"
)

NETWORK_CALLS = "trace=connect,sendto,sendmsg,sendmmsg"
_INET = re.compile(
    r'sa_family=AF_INET6?, sin6?_port=htons\((\d+)\),.*?(?:inet_addr|inet_pton)\((?:AF_INET6, )?"([^"]+)"'
)
_UNIX = re.compile(r'sa_family=AF_UNIX, sun_path=@?"([^"]+)"')
NAME_SERVICES = ("/run/systemd/resolve/", "avahi")


@dataclass(frozen=True)
class Contacts:
    """What a traced session tried to reach, from strace's record."""

    outside: list[str]
    """Attempts to reach anything but this computer (or to look a name up)."""
    loopback: int
    """Connections within the computer: the services talking to each other."""


def contacts(trace: Path) -> Contacts:
    outside: list[str] = []
    loopback = 0
    for line in trace.read_text(errors="replace").splitlines():
        inet = _INET.search(line)
        unix = _UNIX.search(line)
        if inet is not None:
            port, address = int(inet.group(1)), inet.group(2)
            local = address.startswith(("127.", "::ffff:127.")) or address == "::1"
            if local and port != 53:
                loopback += 1
            else:
                outside.append(line)
        elif unix is not None and any(name in unix.group(1) for name in NAME_SERVICES):
            outside.append(line)
    return Contacts(outside, loopback)


class TracedHeadless(Headless):
    """`foundry-desk --headless` and all its children under strace, network calls only."""

    def __init__(self, home: Path, trace: Path, env: dict[str, str], *args: str) -> None:
        strace = ("strace", "-f", "-qq", "--seccomp-bpf", "-e", NETWORK_CALLS, "-o", str(trace))
        super().__init__(home, env, *args, command=(*strace, *FROM_SOURCE))
        self.trace = trace

    def quit(self) -> int:
        """SIGTERM to the app itself (strace only passes its exit on), as at logout; every process
        of it must be gone afterwards."""
        app = psutil.Process(self.process.pid).children()
        tree = [*app, *(process for child in app for process in child.children(recursive=True))]
        for child in app:
            child.send_signal(signal.SIGTERM)
        code = self.finish(signum=None, timeout_s=30)
        _, alive = psutil.wait_procs(tree, timeout=5)
        assert not alive, f"left running after the app quit: {alive}"
        return code


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[list[TracedHeadless]]:
    started: list[TracedHeadless] = []
    yield started
    for app in started:
        app.finish(signal.SIGKILL)


def start(traced: list[TracedHeadless], home: Path, env: dict[str, str], *args: str) -> TracedHeadless:
    ports = {"FOUNDRY_DESK_RUNTIME_PORT": str(free_port()), "FOUNDRY_DESK_CHAT_PORT": str(free_port())}
    app = TracedHeadless(home, home.parent / f"{home.name}.trace", {**ports, **env}, *args)
    traced.append(app)
    return app


@pytest.mark.parametrize("offline", [True, False], ids=["offline", "model-folder"])
def test_a_whole_chat_session_reaches_nothing_but_this_computer(
    traced: list[TracedHeadless], browser: Browser, tiny_models: TinyModels, tmp_path: Path, offline: bool
) -> None:
    """Start with a model folder, chat in the browser, switch model, chat, quit: in offline mode,
    and in the normal mode too (a model folder needs no catalog, so it is not asked)."""
    home = tmp_path / "home"
    flags = ("--chat", "--offline") if offline else ("--chat",)
    app = start(traced, home, {"FOUNDRY_DESK_MODEL_PATH": str(tiny_models.alpha)}, *flags)
    link = app.wait_for_line(r"chat: (\S+\?token=\S+)", timeout_s=90).group(1)
    paths = AppPaths.under(home)
    secret = RunSecret.read(paths.state_dir)
    assert secret is not None
    runtime = RuntimeClient(paths.runtime_status_file, secret)
    assert runtime.wait(lambda s: s.state is RuntimeState.READY, 60).model_alias == "alpha"

    with logged_page(browser) as page:
        open_chat(page, link)
        send(page, "Who answers?")
        wait_for_answer(page, ALPHA_ANSWER)
        assert runtime.select(str(tiny_models.beta)).model_alias == "beta"
        assert {m.alias for m in runtime.models()} == {"alpha", "beta"}
        send(page, "And now?")
        wait_for_answer(page, BETA_ANSWER)

    assert app.quit() == 0
    seen = contacts(app.trace)
    assert seen.loopback > 0, "the trace recorded none of the services' own connections"
    assert seen.outside == []
    runtime_log = [
        line for path in (paths.log_dir / "runtime").glob("*.log") for line in path.read_text().splitlines()
    ]
    # offline, the runtime asks the catalog of ours that has no models; else no catalog at all
    assert [line for line in runtime_log if "catalog from" in line and OFFLINE_CATALOG not in line] == []


def test_offline_a_model_that_is_not_downloaded_is_refused_at_once_saying_what_to_do(
    traced: list[TracedHeadless], tmp_path: Path
) -> None:
    """Offline, an alias that is not in the cache is answered from the disk, with no catalog
    asked; not offline, the same alias goes to the catalog (the trace sees it: the test can tell)."""
    offline = start(traced, tmp_path / "offline", {"MODEL": "phi-4-mini"}, "--offline")
    line = offline.wait_for_line(r"no model: .*", timeout_s=60).group(0)
    assert "'phi-4-mini' is not downloaded" in line and "offline mode is on (--offline)" in line
    assert offline.quit() == 0
    assert contacts(offline.trace).outside == []

    online = start(traced, tmp_path / "online", {"MODEL": "phi-4-mini"})
    online.wait_for_line(r"no model: .*", timeout_s=60)
    assert online.quit() == 0
    assert contacts(online.trace).outside, "asking the catalog left no trace: the trace sees nothing"


def test_the_trace_reader_tells_loopback_from_the_outside(tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    trace.write_text(
        '1 connect(3, {sa_family=AF_INET, sin_port=htons(5283), sin_addr=inet_addr("127.0.0.1")}, 16) = 0\n'
        "1 connect(4, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), "
        'inet_pton(AF_INET6, "2001:db8::1", &sin6_addr), sin6_scope_id=0}, 28) = -1\n'
        '2 connect(5, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}, 16) = 0\n'
        '2 connect(6, {sa_family=AF_UNIX, sun_path="/run/systemd/resolve/io.systemd.Resolve"}, 110) = 0\n'
        '2 connect(9, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT\n'
        '2 connect(7, {sa_family=AF_UNIX, sun_path="/tmp/.X11-unix/X0"}, 110) = 0\n'
        '3 sendto(8, "x", 1, 0, {sa_family=AF_INET, sin_port=htons(80), '
        'sin_addr=inet_addr("10.1.2.3")}, 16) = 1\n'
    )
    seen = contacts(trace)
    assert seen.loopback == 1
    assert [line.split()[1].split("(")[1].rstrip(",") for line in seen.outside] == ["4", "5", "6", "8"]
