"""The real runtime host serving real (tiny) models, driven through the real supervisor."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from desktop.config import Settings
from desktop.probe import http_ok
from desktop.runtime.front import answer_room, with_answer_room
from desktop.runtime.service import RuntimeRequestError
from desktop.runtime.status import RuntimeState, RuntimeStatus
from desktop.supervisor import ServiceState
from tests.conftest import ALPHA_ANSWER, BETA_ANSWER, TinyModels, free_port
from tests.support.hosted_runtime import Runtime, StartRuntime, runtimes
from tests.tinymodel import build_model


@pytest.fixture(scope="module")
def runtime_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartRuntime]:
    with runtimes(tmp_path_factory) as start:
        yield start


@pytest.fixture(scope="module")
def runtime(runtime_factory: StartRuntime, tiny_models: TinyModels) -> Runtime:
    """One host shared by the tests that do not disturb it."""
    return runtime_factory(Settings(model_path=tiny_models.alpha, runtime_port=free_port()))


def chat(client: openai.OpenAI, model: str, prompt: str = "Hi there") -> str:
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], max_tokens=32
    )
    return reply.choices[0].message.content or ""


def test_openai_client_lists_and_chats_streamed_and_not(runtime: Runtime) -> None:
    status = runtime.ready()
    client = runtime.openai()
    assert status.model_id in [model.id for model in client.models.list()]

    assert chat(client, status.model_id or "") == ALPHA_ANSWER

    stream = client.chat.completions.create(
        model=status.model_id or "",
        messages=[{"role": "user", "content": "Stream please"}],
        max_tokens=32,
        stream=True,
    )
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert "".join(pieces) == ALPHA_ANSWER
    assert len([p for p in pieces if p]) > 1, "the answer arrived in one piece, not streamed"


def test_bad_requests_get_clear_errors_and_the_host_stays_healthy(runtime: Runtime) -> None:
    status = runtime.ready()
    client = runtime.openai()

    with pytest.raises(openai.NotFoundError):
        chat(client, "no-such-model-generic-cpu:1")
    too_long = "tell me more " * 400  # far over the tiny model's 512-token context
    with pytest.raises(openai.BadRequestError) as raised:
        chat(client, status.model_id or "", too_long)
    assert "context length" in str(raised.value)
    with pytest.raises(openai.APIError):
        list(
            client.chat.completions.create(
                model=status.model_id or "",
                messages=[{"role": "user", "content": too_long}],
                max_tokens=32,
                stream=True,
            )
        )

    assert chat(client, status.model_id or "") == ALPHA_ANSWER
    assert runtime.supervisor.status.state is ServiceState.RUNNING
    assert runtime.supervisor.status.restarts == 0


def test_a_client_that_names_no_answer_length_gets_an_answer_from_a_small_context_model(
    runtime_factory: StartRuntime, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Open WebUI, curl and many tools send no max_tokens. The runtime then keeps 2048 tokens for
    the answer whatever the model, and refused a model with a 1024-token context (HTTP 400,
    "request requires 2059 total tokens")."""
    small = build_model(tmp_path_factory.mktemp("small") / "small", ALPHA_ANSWER, context_length=1024)
    runtime = runtime_factory(Settings(model_path=small, runtime_port=free_port()))
    model = runtime.ready().model_id or ""
    client = runtime.openai()
    question: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hi there"}]

    reply = client.chat.completions.create(model=model, messages=question)
    assert reply.choices[0].message.content == ALPHA_ANSWER
    stream = client.chat.completions.create(model=model, messages=question, stream=True)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == ALPHA_ANSWER
    assert client.responses.create(model=model, input="Hi there").output_text == ALPHA_ANSWER
    # The runtime's own "stop serving" route, which any web page could post to, is not passed on.
    shutdown = urllib.request.Request(f"{runtime.ready().service_url}/shutdown", data=b"", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(shutdown, timeout=5)
    assert refused.value.code == 403
    refused.value.close()
    assert client.chat.completions.create(model=model, messages=question).choices[0].message.content
    runtime.stop()


def test_only_a_request_naming_no_answer_length_for_a_small_model_is_changed() -> None:
    """Everything else reaches the runtime byte for byte."""
    room = {"small-generic-cpu:1": answer_room(1024)}.get
    ask = b'{"model": "small-generic-cpu:1", "messages": [{"role": "user", "content": "Hi"}]}'
    assert json.loads(with_answer_room("/catalogs/local/v1/chat/completions", ask, room))["max_tokens"] == 512
    assert json.loads(with_answer_room("/v1/responses", ask, room))["max_output_tokens"] == 512
    kept = [
        ("/v1/chat/completions", b'{"model": "small-generic-cpu:1", "max_tokens": 32}'),
        ("/v1/chat/completions", b'{"model": "small-generic-cpu:1", "max_completion_tokens": 32}'),
        ("/v1/chat/completions", b'{"model": "big-generic-cpu:1", "messages": []}'),
        ("/v1/embeddings", ask),
        ("/v1/chat/completions", b"not json"),
    ]
    for path, body in kept:
        assert with_answer_room(path, body, room) is body
    assert (answer_room(4095), answer_room(4096), answer_room(None)) == (2047, None, None)


def test_switching_models(runtime: Runtime, tiny_models: TinyModels) -> None:
    first = runtime.ready()
    switched = runtime.client.select(str(tiny_models.beta))
    assert switched.state is RuntimeState.READY and switched.model_alias == "beta"
    client = runtime.openai()
    assert chat(client, switched.model_id or "") == BETA_ANSWER

    listed = {model.alias: model for model in runtime.client.models()}
    assert listed["beta"].loaded and not listed["alpha"].loaded

    back = runtime.client.select("alpha")  # by alias, now that it is registered
    assert back.model_id == first.model_id
    assert chat(client, first.model_id or "") == ALPHA_ANSWER


def test_a_model_chosen_while_the_runtime_starts_is_served_once_it_has_started(
    runtime_factory: StartRuntime, tiny_models: TinyModels
) -> None:
    """A choice made during the start (a chat's pending switch, the tray) waits for the start's own
    model, then wins: the start must not load its model over the one the user chose."""
    runtime = runtime_factory(Settings(model_path=tiny_models.alpha, runtime_port=free_port()))
    runtime.ready()
    runtime.client.select(str(tiny_models.beta))  # registered: chosen by alias below
    first = runtime.client.select("alpha")
    runtime.supervisor.stop()
    runtime.supervisor.start()
    refusals = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # chosen as soon as the new host's control API answers
        status = runtime.client.status()
        if status is not None and status.pid != first.pid and status.control_url:
            try:
                chosen = runtime.client.select("beta")
                break
            except RuntimeRequestError as error:
                refusals.append(str(error))
        time.sleep(0.01)
    else:
        pytest.fail("the restarted runtime host never published its control API")
    assert chosen.state is RuntimeState.READY and chosen.model_alias == "beta", chosen
    assert all("try again when it is ready" in refusal for refusal in refusals), refusals
    runtime.client.select("beta")  # waits for any switch still under way
    this_start = runtime.supervisor.log_file.read_text().split("\n--- ")[-1]
    loaded = re.findall(r"runtime loading Loading (\w+)", this_start)
    assert loaded == ["alpha", "beta"], "the start's model must load first, the chosen one last"
    assert chat(runtime.openai(), chosen.model_id or "") == BETA_ANSWER
    runtime.stop()


def test_switching_to_an_unknown_model_is_refused_and_keeps_the_current_one(runtime: Runtime) -> None:
    before = runtime.ready()
    with pytest.raises(RuntimeRequestError, match="No model available"):
        runtime.client.select("no-such-model")
    after = runtime.client.status()
    assert after is not None and after.state is RuntimeState.READY and after.model_id == before.model_id


def test_busy_default_port_falls_back_and_publishes_the_real_url(
    runtime_factory: StartRuntime, tiny_models: TinyModels
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        busy_port = squatter.getsockname()[1]
        runtime = runtime_factory(Settings(model_path=tiny_models.alpha, runtime_port=busy_port))
        status = runtime.ready()

        assert f":{busy_port}/" not in (status.base_url or "")
        assert chat(runtime.openai(), status.model_id or "") == ALPHA_ANSWER
        # The server we did not start is untouched.
        with socket.create_connection(("127.0.0.1", busy_port), timeout=2):
            pass
        runtime.stop()


def test_killed_host_is_restarted_and_the_endpoint_answers_again(
    runtime_factory: StartRuntime, tiny_models: TinyModels
) -> None:
    port = free_port()
    runtime = runtime_factory(Settings(model_path=tiny_models.alpha, runtime_port=port))
    first = runtime.ready()
    os.kill(first.pid, signal.SIGKILL)

    runtime.supervisor.wait_until(lambda s: s.pid != first.pid and s.state is ServiceState.RUNNING, 30)
    again = runtime.ready()
    assert again.pid != first.pid
    assert again.base_url == first.base_url, "the pinned port was not reused after the restart"
    assert chat(runtime.openai(), again.model_id or "") == ALPHA_ANSWER
    runtime.stop()


def test_after_a_crash_the_model_the_user_chose_is_served_again(
    runtime_factory: StartRuntime, tiny_models: TinyModels
) -> None:
    runtime = runtime_factory(Settings(model_path=tiny_models.alpha, runtime_port=free_port()))
    runtime.ready()
    chosen = runtime.client.select(str(tiny_models.beta))
    os.kill(chosen.pid, signal.SIGKILL)

    runtime.supervisor.wait_until(lambda s: s.pid != chosen.pid and s.state is ServiceState.RUNNING, 30)
    again = runtime.ready()
    assert again.model_id == chosen.model_id
    assert chat(runtime.openai(), again.model_id or "") == BETA_ANSWER
    runtime.stop()


def test_downloads_off_with_nothing_cached_says_no_model_without_asking_the_catalog(
    runtime_factory: StartRuntime,
) -> None:
    runtime = runtime_factory(Settings(model="phi-4-mini", allow_download=False, runtime_port=free_port()))
    runtime.supervisor.wait_for_state(ServiceState.RUNNING, timeout_s=30)
    status = runtime.client.wait(lambda s: s.state is RuntimeState.NO_MODEL, timeout_s=20)

    assert "'phi-4-mini' is not downloaded" in status.message
    assert "downloads are off (allow_download = false), so the model catalog is not asked" in status.message
    assert (status.catalog_reachable, status.download_alias) == (False, None)
    # Alive and answering: the user can still point it at a model.
    assert runtime.supervisor.status.state is ServiceState.RUNNING
    assert http_ok(f"{status.control_url}/health")
    runtime.stop()


def no_model(runtime: Runtime) -> RuntimeStatus:
    """Wait until the current host has settled on having no model."""
    runtime.supervisor.wait_for_state(ServiceState.RUNNING, timeout_s=30)
    return runtime.client.wait(
        lambda s: s.state is RuntimeState.NO_MODEL and s.pid == runtime.supervisor.status.pid, 20
    )


def test_asked_first_and_offline_it_offers_nothing_then_serves_the_folder_chosen(
    runtime_factory: StartRuntime, tiny_models: TinyModels
) -> None:
    """The desktop app's host: no model and no catalog. It says so (no hang, no offer), in words
    for any front end, and serves the folder the user then chooses."""
    runtime = runtime_factory(Settings(runtime_port=free_port()), ask_before_download=True)
    status = no_model(runtime)
    assert status.catalog_reachable is False
    assert status.download_alias is None and status.download_size_mb is None
    assert "could not be reached" in status.message
    assert not [word for word in ("FOUNDRY_DESK", "--model-path", "settings") if word in status.message]

    ready = runtime.client.select(str(tiny_models.alpha))
    assert ready.state is RuntimeState.READY and ready.model_alias == "alpha"
    assert chat(runtime.openai(), ready.model_id or "") == ALPHA_ANSWER
    runtime.stop()


def test_a_catalog_retry_asks_again_and_the_runtime_still_serves_afterwards(
    runtime_factory: StartRuntime, tiny_models: TinyModels
) -> None:
    """Try again restarts the runtime in the host (it asks the catalog once per start): still
    offline, it settles on no model again, on the same port, and a folder is then served."""
    runtime = runtime_factory(Settings(runtime_port=free_port()), ask_before_download=True)
    first = no_model(runtime)
    runtime.client.retry_catalog()
    again = runtime.client.wait(
        lambda s: s.state is RuntimeState.NO_MODEL and s.updated_at > first.updated_at, 30
    )
    assert again.catalog_reachable is False and again.pid == first.pid
    assert again.service_url == first.service_url
    assert runtime.client.select(str(tiny_models.beta)).model_alias == "beta"
    assert chat(runtime.openai(), runtime.ready().model_id or "") == BETA_ANSWER
    runtime.client.retry_catalog()  # with a model served: nothing to retry, nothing interrupted
    assert (runtime.client.status() or first).state is RuntimeState.READY
    runtime.stop()


def test_a_folder_the_runtime_cannot_use_is_refused_and_not_kept(runtime: Runtime, tmp_path: Path) -> None:
    """Not a model folder: refused at once (422, with the reason); a folder whose model does not
    load: the current model stays, and the folder is not listed as a model afterwards."""
    before = runtime.ready()
    with pytest.raises(RuntimeRequestError, match="Cannot use model"):
        runtime.client.select(str(tmp_path))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "genai_config.json").write_text('{"model": {"type": "decoder"}}')
    after = runtime.client.select(str(broken))  # registered, but it has no context length
    assert after.state is RuntimeState.READY and after.model_id == before.model_id
    assert "Could not load broken" in after.message
    assert "broken" not in {model.alias for model in runtime.client.models()}


def test_stop_leaves_no_runtime_process_and_says_stopped(
    runtime_factory: StartRuntime, tiny_models: TinyModels
) -> None:
    runtime = runtime_factory(Settings(model_path=tiny_models.alpha, runtime_port=free_port()))
    status = runtime.ready()
    runtime.stop()

    final = runtime.client.status()
    assert final is not None and final.state is RuntimeState.STOPPED
    assert not http_ok(f"{status.control_url}/health")
    with pytest.raises(openai.APIConnectionError):
        chat(openai.OpenAI(base_url=status.base_url, api_key="x", max_retries=0), status.model_id or "")


def test_control_api_serves_only_holders_of_the_run_secret(runtime: Runtime) -> None:
    """Another program or account on the machine, or a page in the user's browser (CSRF, DNS
    rebinding), must not read the runtime's state or switch its model."""
    status = runtime.ready()
    control = status.control_url or ""
    secret = {"Authorization": runtime.client.secret.authorization}
    select = b'{"model": "beta"}'

    def refused(route: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> int:
        request = urllib.request.Request(f"{control}{route}", data=data, headers=headers or {})
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(request, timeout=5)
        raised.value.close()
        return raised.value.code

    as_json = {"Content-Type": "application/json"}
    assert refused("/status") == 401
    assert refused("/models") == 401
    assert refused("/models/select", select, as_json) == 401
    assert refused("/models/select", select, {**as_json, "Authorization": "Bearer guess"}) == 401
    assert refused("/models/select", select, {**secret, "Content-Type": "text/plain"}) == 415
    assert refused("/status", None, {**secret, "Host": "evil.example:80"}) == 403
    assert http_ok(f"{control}/health")
    assert [m.id for m in runtime.client.models() if m.loaded] == [status.model_id]  # not switched
