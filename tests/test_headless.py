"""`foundry-desk --headless` as a user runs it: a real process, real children, real signals."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import psutil
import pytest

from desktop.chat.gate import COOKIE_NAME
from desktop.paths import AppPaths
from desktop.probe import http_ok, wait_for
from desktop.process import process_alive
from tests.conftest import ALPHA_ANSWER, SUPPORT, TinyModels, free_port
from tests.support.headless_app import Headless
from tests.support.openai_standin import RemoteStandIn

pytestmark = pytest.mark.usefixtures("no_leftover_children")


StartHeadless = Callable[..., Headless]


@pytest.fixture
def headless(tmp_path: Path) -> Iterator[StartHeadless]:
    started: list[Headless] = []

    def start(env: dict[str, str], *args: str, home: Path | None = None) -> Headless:
        app = Headless(home or tmp_path / f"home{len(started)}", env, *args)
        started.append(app)
        return app

    yield start
    for app in started:
        app.finish(signal.SIGKILL)


def serving(models: TinyModels) -> dict[str, str]:
    return {"FOUNDRY_DESK_MODEL_PATH": str(models.alpha), "FOUNDRY_DESK_RUNTIME_PORT": str(free_port())}


def chat(base_url: str, model: str) -> str:
    client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=30)
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hello?"}], max_tokens=32
    )
    return reply.choices[0].message.content or ""


def test_prints_the_endpoint_serves_it_and_quits_cleanly(
    headless: StartHeadless, tiny_models: TinyModels
) -> None:
    app = headless(serving(tiny_models))
    base_url, model = app.endpoint()
    assert base_url.startswith("http://127.0.0.1:")
    app.wait_for_line(r"device: +CPU$")  # the user is told where the model runs
    assert chat(base_url, model) == ALPHA_ANSWER
    host = app.host_pid()

    assert app.finish(signal.SIGTERM) == 0
    assert "Stopped." in app.seen
    assert not process_alive(host)
    assert not AppPaths.under(app.home).run_record_file.exists()


def test_killing_the_app_takes_the_runtime_with_it(headless: StartHeadless, tiny_models: TinyModels) -> None:
    app = headless(serving(tiny_models))
    app.endpoint()
    host = app.host_pid()

    app.finish(signal.SIGKILL)
    assert wait_for(lambda: not process_alive(host), timeout_s=5), "runtime host outlived the app"


def test_offline_without_a_model_it_says_so_and_how_to_serve_a_folder(headless: StartHeadless) -> None:
    """The command line downloads by itself (its user asked for the model): the host is not told
    to ask first. Offline there is nothing to download, and it says what to do instead."""
    app = headless({"FOUNDRY_DESK_RUNTIME_PORT": str(free_port())})
    app.wait_for_line(r"no model: No model available: 'phi-4-mini' .*could not be reached")
    app.wait_for_line(r"To serve a model folder of your own: foundry-desk --headless --model-path <folder>")
    host = psutil.Process(app.host_pid())
    assert "runtime-host" in host.cmdline() and "--ask-before-download" not in host.cmdline()
    assert app.finish(signal.SIGTERM) == 0


def test_a_second_instance_refuses_to_start(
    headless: StartHeadless, tiny_models: TinyModels, tmp_path: Path
) -> None:
    first = headless(serving(tiny_models), home=tmp_path / "shared")
    first.endpoint()
    second = headless(serving(tiny_models), home=tmp_path / "shared")
    second.wait_for_line(r"already running \(pid \d+\)")
    assert second.finish(signum=None) == 1
    assert first.process.poll() is None


def test_corrupt_settings_are_reported_and_the_app_still_serves(
    headless: StartHeadless, tiny_models: TinyModels, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    settings_file = AppPaths.under(home).settings_file
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text("model = [unclosed\n")
    app = headless(serving(tiny_models), home=home)
    base_url, model = app.endpoint()
    assert chat(base_url, model) == ALPHA_ANSWER
    app.finish()
    assert "is not valid TOML" in app.stderr and "defaults are used" in app.stderr
    assert len(list(settings_file.parent.glob("settings.toml.broken-*"))) == 1


def test_attach_mode_uses_base_url_and_hosts_nothing(
    headless: StartHeadless, tiny_models: TinyModels
) -> None:
    server = headless(serving(tiny_models))
    base_url, model = server.endpoint()

    attached = headless({"BASE_URL": base_url, "API_KEY": "secret"})
    attached.wait_for_line(r"ready: attached to " + re.escape(base_url))
    attached.wait_for_line(r"models: +.*" + re.escape(model))
    assert psutil.Process(attached.process.pid).children() == []
    assert attached.finish() == 0


def test_attach_to_a_dead_endpoint_says_what_to_do(headless: StartHeadless) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    app = headless({"BASE_URL": dead})
    line = app.wait_for_line(r"unreachable: .*").group(0)
    assert f"Cannot reach {dead}/models" in line and "unset BASE_URL" in line
    assert app.finish() == 0


def fake_foundry_cli(folder: Path, service_url: str, cache_dir: Path) -> dict[str, str]:
    """A `foundry` command on PATH that answers like the Foundry Local app's CLI."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "foundry"
    script.write_text(
        "#!/bin/sh\n"
        'case "$1 $2" in\n'
        f'  "service status") echo "🟢 Model management service is running on '
        f'{service_url}/openai/status";;\n'
        f'  "cache location") echo "💾 Cache directory path: {cache_dir}";;\n'
        '  *) echo "unknown command" >&2; exit 1;;\n'
        "esac\n"
    )
    script.chmod(0o755)
    return {"PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


def test_foundry_app_is_offered_and_its_model_cache_reused(
    headless: StartHeadless, tiny_models: TinyModels, tmp_path: Path
) -> None:
    cache = tmp_path / "foundry-cache"
    cache.mkdir()
    cli = fake_foundry_cli(tmp_path / "bin", f"http://127.0.0.1:{free_port()}", cache)
    app = headless({**serving(tiny_models), **cli})

    app.wait_for_line(
        r"A Foundry Local service is running at http://127\.0\.0\.1:\d+\. .*--use-foundry-service"
    )
    app.wait_for_line(r"Sharing the Foundry Local app's model cache: " + re.escape(str(cache)))
    base_url, model = app.endpoint()
    assert chat(base_url, model) == ALPHA_ANSWER
    assert (cache / "foundry.local.modelinfo.json").exists(), "the shared cache was not used"


def test_use_foundry_service_attaches_to_the_running_service(
    headless: StartHeadless, tiny_models: TinyModels, tmp_path: Path
) -> None:
    """The 'Foundry Local app' here is a real Foundry Local runtime, started by another instance."""
    server = headless(serving(tiny_models))
    base_url, _ = server.endpoint()
    service_url = base_url.split("/catalogs/")[0]
    cli = fake_foundry_cli(tmp_path / "bin", service_url, tmp_path)

    app = headless(cli, "--use-foundry-service")
    app.wait_for_line(r"Using the Foundry Local app's service at " + re.escape(service_url))
    app.wait_for_line(r"ready: attached to " + re.escape(service_url + "/v1"))
    assert psutil.Process(app.process.pid).children() == []


def test_status_command_prints_the_published_state(headless: StartHeadless, tiny_models: TinyModels) -> None:
    app = headless(serving(tiny_models))
    base_url, model = app.endpoint()
    shown = subprocess.run(
        [sys.executable, "-m", "desktop", "--status"],
        env={**os.environ, "FOUNDRY_DESK_HOME": str(app.home)},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    status = json.loads(shown.stdout)
    assert (status["state"], status["base_url"], status["model_id"]) == ("ready", base_url, model)
    assert "open_webui" not in status, "Open WebUI is not running"


def status_of(home: Path) -> dict[str, Any]:
    """What `foundry-desk --status` prints for the app whose home is `home`."""
    shown = subprocess.run(
        [sys.executable, "-m", "desktop", "--status"],
        env={**os.environ, "FOUNDRY_DESK_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return dict(json.loads(shown.stdout))


def open_webui_command(folder: Path) -> Path:
    """The Open WebUI stand-in as an installed `open-webui` command."""
    folder.mkdir(parents=True, exist_ok=True)
    command = folder / "open-webui"
    command.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{SUPPORT / "open_webui_standin.py"}" "$@"\n')
    command.chmod(0o755)
    return command


def test_open_webui_going_down_is_told_and_status_shows_it(headless: StartHeadless, tmp_path: Path) -> None:
    """Killed for real (kill -9): the console says it is restarting, then running again; killed
    once more past the restart limit, that it failed for good, with its log and what to do; and
    it runs again when the user restarts it (SIGHUP). `--status` shows its state, address,
    backend and process from the run record meanwhile."""
    ui_port = free_port()
    url = f"http://127.0.0.1:{ui_port}"
    with RemoteStandIn() as endpoint:
        app = headless(
            {
                "BASE_URL": endpoint.base_url,
                "FOUNDRY_DESK_OPEN_WEBUI_BACKEND": "pip",
                "FOUNDRY_DESK_OPEN_WEBUI_COMMAND": str(open_webui_command(tmp_path / "pip-bin")),
                "FOUNDRY_DESK_OPEN_WEBUI_PORT": str(ui_port),
                "FOUNDRY_DESK_RESTART_LIMIT": "1",
            },
            "--open-webui",
        )
        log = re.escape(str(AppPaths.under(app.home).log_dir / "open-webui.log"))
        running_at = rf"Open WebUI is running at {re.escape(url)}"
        app.wait_for_line(rf"open-webui: running: {running_at}", timeout_s=60)
        link = app.wait_for_line(r"open-webui: open it signed in \(the link works once\): (\S+)").group(1)
        shown = status_of(app.home)["open_webui"]
        assert (shown["state"], shown["url"], shown["backend"]) == ("running", url, "pip")
        assert re.fullmatch(log, shown["log"])
        first = shown["pid"]
        assert psutil.Process(first).ppid() == app.process.pid
        assert shown["sign_in_link"] != link and shown["sign_in_link"].startswith(link.split("?")[0])

        os.kill(first, signal.SIGKILL)
        app.wait_for_line(
            r"open-webui: restarting: Open WebUI stopped by itself \(exited with code -9; restarting in "
            rf"[\d.]+ s\)\. Its log: {log}$"
        )
        app.wait_for_line(rf"open-webui: running again: {running_at}", timeout_s=60)
        again = status_of(app.home)["open_webui"]
        assert again["state"] == "running" and again["pid"] != first

        os.kill(again["pid"], signal.SIGKILL)
        app.wait_for_line(r"open-webui: failed: Open WebUI failed: exited with code -9; gave up after 1 ")
        app.wait_for_line(rf"^  Its log: {log}$")
        hint = app.wait_for_line(r"^  Fix what its log says, then start it again.* kill -HUP (\d+)$")
        failed = status_of(app.home)["open_webui"]
        assert failed["state"] == "failed" and "pid" not in failed and "sign_in_link" not in failed

        # Restart, as the line said: it runs again, and --status shows it running
        assert int(hint.group(1)) == app.process.pid
        os.kill(app.process.pid, signal.SIGHUP)
        app.wait_for_line(r"^open-webui: restarting, as asked$")
        app.wait_for_line(rf"open-webui: running again: {running_at}", timeout_s=60)
        assert status_of(app.home)["open_webui"]["state"] == "running"
        assert app.finish() == 0
    assert not AppPaths.under(app.home).run_record_file.exists()


def test_a_runtime_that_cannot_start_ends_failed_with_its_log(
    headless: StartHeadless, tmp_path: Path
) -> None:
    not_a_folder = tmp_path / "cache-is-a-file"
    not_a_folder.write_text("")
    app = headless(
        {
            "FOUNDRY_DESK_MODEL_CACHE_DIR": str(not_a_folder),
            "FOUNDRY_DESK_RESTART_LIMIT": "1",
            "FOUNDRY_DESK_RUNTIME_PORT": str(free_port()),
        }
    )
    app.wait_for_line(r"runtime host failed: .*gave up after 1 restarts")
    app.wait_for_line(r"\| .*The model runtime could not start: .*File exists")
    assert app.finish(signum=None) == 1


def test_headless_chat_serves_the_chat_prints_its_url_and_stops_it(
    headless: StartHeadless, tiny_models: TinyModels
) -> None:
    """On its pinned port, or (that port held by another program) on a free one, which it prints;
    the other program's server is left alone."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        busy = squatter.getsockname()[1]
        app = headless({**serving(tiny_models), "FOUNDRY_DESK_CHAT_PORT": str(busy)}, "--chat")
        url, link = app.wait_for_line(r"chat: ((http://127\.0\.0\.1:\d+)/\?token=\S+)", timeout_s=60).group(
            2, 1
        )
        assert url != f"http://127.0.0.1:{busy}"
        with socket.create_connection(("127.0.0.1", busy), timeout=2):
            pass  # still the other program's
    assert http_ok(f"{url}/health")
    assert not http_ok(url, headers={"Accept": "text/html"}), "the chat opens only with the run's link"
    with httpx.Client(follow_redirects=True, timeout=10) as browser, httpx.Client(timeout=10) as another:
        assert browser.get(link).status_code == 200 and browser.cookies.get(COOKIE_NAME)
        assert another.get(link).status_code == 403, "a link opens the chat once"
    chat_pids = [p.pid for p in psutil.Process(app.process.pid).children() if "chat-server" in p.cmdline()]
    assert chat_pids

    assert app.finish(signal.SIGTERM) == 0
    assert not http_ok(f"{url}/health")
    assert all(not process_alive(pid) for pid in chat_pids)
