"""The first run's setup API on the real chat server, with the real runtime host offline and no
model, as the desktop app starts it (it asks before downloading)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from desktop.config import Settings, load_settings
from desktop.probe import wait_for
from desktop.runtime.status import RuntimeState
from tests.conftest import TinyModels, free_port
from tests.support.chat_browser import ChatStack

pytestmark = pytest.mark.usefixtures("no_leftover_children")

USER_SETTINGS = "# Mine: keep this comment\ntemperature = 0.3  # calmer answers\n"
JSON = "application/json"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[ChatStack]:
    """No model, the catalog unreachable (offline), the settings file the user wrote."""
    stack = ChatStack.start(
        tmp_path / "app", Settings(model="phi-4-mini", runtime_port=free_port()), ask_before_download=True
    )
    stack.paths.settings_file.write_text(USER_SETTINGS, encoding="utf-8")
    try:
        stack.chat_ready()
        yield stack
    finally:
        stack.stop()


def call(
    stack: ChatStack, route: str, body: Any = None, content_type: str = JSON, **headers: str
) -> tuple[int, Any]:
    """GET (no body) or POST `route` as a program with the run's secret; the status and the
    answer (decoded when JSON), errors included."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    headers = {"Content-Type": content_type, **stack.authorization, **headers}
    request = urllib.request.Request(f"{stack.url}{route}", data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            text = error.read().decode()
            return error.code, json.loads(text) if error.headers.get_content_type() == JSON else text


def setup_needed(stack: ChatStack) -> dict[str, Any]:
    """Wait until the setup view is due (the runtime looked for its model and has none)."""

    def due() -> dict[str, Any] | None:
        state: dict[str, Any] = call(stack, "/setup/state")[1]
        return state if state["needed"] else None

    state = wait_for(due, 30)
    assert state is not None, call(stack, "/setup/state")
    return state


def test_what_is_not_a_usable_model_folder_is_refused_and_nothing_saved(
    stack: ChatStack, tmp_path: Path
) -> None:
    state = setup_needed(stack)
    assert (state["state"], state["catalog_reachable"], state["download"]) == ("no_model", False, None)
    assert state["model"] == "phi-4-mini" and state["downloads_allowed"] is True

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("not a model")
    missing = tmp_path / "no-such-folder"
    broken = tmp_path / "broken"  # has a genai_config.json, but the runtime cannot load it
    broken.mkdir()
    (broken / "genai_config.json").write_text('{"model": {"type": "decoder"}}')
    folder_route = "/setup/model-folder"
    for folder, words in (
        (notes, ["is not a model folder", "genai_config.json"]),
        (missing, ["There is no folder"]),
        (broken, ["could not load the model in", "context_length"]),
    ):
        status, answer = call(stack, folder_route, {"path": str(folder)})
        assert status == 400, answer
        assert str(folder) in answer["error"] and all(word in answer["error"] for word in words), answer
        assert "ONNX Runtime GenAI format" in answer["error"]  # what a model folder needs
    status, answer = call(stack, folder_route, {"path": "Models/alpha"})
    assert status == 400 and "not a full path" in answer["error"]

    # What another web page could send without asking: a plain form, a text body.
    form = f"path={notes}".encode()
    for body, kind in ((form, "application/x-www-form-urlencoded"), (form, "text/plain")):
        status, answer = call(stack, folder_route, body, content_type=kind)
        assert status == 415 and "JSON" in answer["error"]
    status, _ = call(stack, "/setup/state", Host="evil.example")
    assert status == 400  # a request not addressed to loopback (DNS rebinding)

    assert stack.paths.settings_file.read_text(encoding="utf-8") == USER_SETTINGS
    runtime = stack.client.status()
    assert runtime is not None and runtime.state is RuntimeState.NO_MODEL


def test_a_model_folder_is_served_then_saved_with_the_users_settings_kept(
    stack: ChatStack, tiny_models: TinyModels
) -> None:
    setup_needed(stack)
    status, answer = call(stack, "/setup/model-folder", {"path": f"  '{tiny_models.alpha}' "})
    assert status == 200, answer
    assert answer["model_path"] == str(tiny_models.alpha.resolve())
    assert answer["state"]["needed"] is False and answer["state"]["state"] == "ready"
    runtime = stack.client.status()
    assert runtime is not None and (runtime.state, runtime.model_alias) == (RuntimeState.READY, "alpha")

    text = stack.paths.settings_file.read_text(encoding="utf-8")
    assert text.startswith(USER_SETTINGS)  # the user's comments and keys, as they were
    loaded = load_settings(stack.paths.settings_file, environ={})
    assert loaded.settings.model_path == tiny_models.alpha.resolve() and loaded.notices == ()
    assert loaded.settings.temperature == 0.3


def test_offline_there_is_nothing_to_download_and_try_again_asks_the_catalog_again(stack: ChatStack) -> None:
    before = setup_needed(stack)
    status, answer = call(stack, "/setup/download", {})
    assert status == 409 and "nothing to download" in answer["error"]
    first = stack.client.status()
    assert first is not None

    status, answer = call(stack, "/setup/retry", {})
    assert status == 202, answer
    again = stack.client.wait(
        lambda s: s.state is RuntimeState.NO_MODEL and s.updated_at > first.updated_at, 30
    )
    assert again.catalog_reachable is False
    assert setup_needed(stack) == before
