"""A second chat model, the companion, beside the chat model: the real runtime host serving real
(tiny) models, driven through the real supervisor, as "Compare models" uses it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from desktop.compare.runs import compare
from desktop.compare.sides import pair_up
from desktop.config import Settings
from desktop.runtime.service import RuntimeRequestError
from desktop.runtime.status import CompanionState, RuntimeState
from tests.conftest import ALPHA_ANSWER, BETA_ANSWER, TinyModels, free_port
from tests.support.hosted_runtime import Runtime, StartRuntime, runtimes
from tests.tinymodel import build_model

GAMMA_ANSWER = "Gamma takes its turn here."
BIG_MODEL_MB = 4
"""What `big_gamma` needs, as the host estimates it: its 3 MB of files and a margin, rounded up."""


@pytest.fixture(scope="module")
def start_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartRuntime]:
    with runtimes(tmp_path_factory) as start:
        yield start


def offline(model: Path) -> Settings:
    """Serve the folder `model`, never asking the catalog (nothing to download in these tests)."""
    return Settings(model_path=model, runtime_port=free_port(), offline=True)


@pytest.fixture(scope="module")
def host(start_host: StartRuntime, tiny_models: TinyModels) -> Runtime:
    """One host shared by the tests that leave it as they found it: alpha, no companion."""
    return start_host(offline(tiny_models.alpha))


@pytest.fixture(scope="module")
def gamma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(tmp_path_factory.mktemp("gamma") / "gamma", GAMMA_ANSWER)


@pytest.fixture(scope="module")
def big_gamma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model whose files take about 3 MB (an MLP of real weights), so a small memory budget
    does not hold it beside the chat model."""
    return build_model(tmp_path_factory.mktemp("big") / "gamma", GAMMA_ANSWER, width=512, depth=2)


def chat(client: openai.OpenAI, model: str | None) -> str:
    reply = client.chat.completions.create(
        model=model or "", messages=[{"role": "user", "content": "Hi there"}], max_tokens=32
    )
    return reply.choices[0].message.content or ""


def stream_at_once(client: openai.OpenAI, models: list[str]) -> dict[str, str]:
    """Stream an answer from each model in a thread of its own. A stream that has its first
    words waits for every other stream to have its own, so all are open at the same time."""
    begun = threading.Barrier(len(models), timeout=30)
    answers: dict[str, str] = {}
    errors: list[BaseException] = []

    def stream(model: str) -> None:
        try:
            pieces: list[str] = []
            question: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Compare, please"}]
            for chunk in client.chat.completions.create(
                model=model, messages=question, max_tokens=32, stream=True
            ):
                text = chunk.choices[0].delta.content if chunk.choices else None
                if text:
                    if not pieces:
                        begun.wait()
                    pieces.append(text)
            answers[model] = "".join(pieces)
        except BaseException as error:
            errors.append(error)
            begun.abort()

    threads = [threading.Thread(target=stream, args=(model,), daemon=True) for model in models]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return answers


def test_a_companion_streams_beside_the_chat_model_at_the_same_time(
    host: Runtime, tiny_models: TinyModels
) -> None:
    chat_model = host.ready()
    status = host.client.load_companion(str(tiny_models.beta))

    assert status.companion_state == CompanionState.READY, status.companion_message
    assert status.companion_message == "beta is loaded beside alpha: both answer at once."
    assert (status.model_alias, status.companion_alias) == ("alpha", "beta")
    assert status.companion_base_url == chat_model.base_url  # both are models of your own
    assert (status.companion_context_length, status.companion_device) == (512, "CPU")
    alpha, beta = chat_model.model_id or "", status.companion_model_id or ""
    assert host.loaded() == {alpha, beta}
    listed = {entry.alias: entry for entry in host.client.models()}
    assert (listed["alpha"].loaded, listed["alpha"].companion) == (True, False)
    assert (listed["beta"].loaded, listed["beta"].companion) == (False, True)

    client = host.openai()
    assert stream_at_once(client, [alpha, beta]) == {alpha: ALPHA_ANSWER, beta: BETA_ANSWER}
    # Naming no answer length, as Open WebUI does: the front fills one in for the companion too.
    unbounded = client.chat.completions.create(model=beta, messages=[{"role": "user", "content": "Hi"}])
    assert unbounded.choices[0].message.content == BETA_ANSWER
    with pytest.raises(RuntimeRequestError, match="both answer at once, there are no turns") as refused:
        host.client.companion_turn("companion")
    assert refused.value.status == 409

    host.client.release_companion()
    released = host.client.status()
    assert released is not None and released.companion_state == CompanionState.NONE
    assert (released.companion_model_id, released.companion_base_url) == (None, None)
    assert host.loaded() == {alpha}
    assert chat(client, alpha) == ALPHA_ANSWER
    with pytest.raises(openai.BadRequestError, match="not loaded"):
        chat(client, beta)


def test_a_companion_that_cannot_be_used_is_refused_and_the_chat_model_is_still_served(
    host: Runtime, tmp_path: Path
) -> None:
    before = host.ready()
    with pytest.raises(RuntimeRequestError, match="'no-such-model' is not downloaded") as unknown:
        host.client.load_companion("no-such-model")
    assert unknown.value.status == 404
    with pytest.raises(RuntimeRequestError, match="Cannot use model") as unusable:
        host.client.load_companion(str(tmp_path))  # a folder, but no model in it
    assert unusable.value.status == 422

    after = host.client.status()
    assert after is not None and after.state is RuntimeState.READY and after.model_id == before.model_id
    assert after.companion_state == CompanionState.NONE
    assert chat(host.openai(), before.model_id) == ALPHA_ANSWER


def test_the_chat_model_as_its_own_companion_loads_nothing_more(host: Runtime) -> None:
    chat_model = host.ready()
    status = host.client.load_companion("alpha")
    assert status.companion_state == CompanionState.READY
    assert status.companion_message == "alpha is the chat model too: it answers as both."
    assert (status.companion_model_id, status.companion_base_url) == (
        chat_model.model_id,
        chat_model.base_url,
    )
    assert host.loaded() == {chat_model.model_id}

    host.client.release_companion()  # the chat model stays
    assert host.loaded() == {chat_model.model_id}
    assert chat(host.openai(), chat_model.model_id) == ALPHA_ANSWER


def test_switching_the_chat_model_keeps_the_companion_answering(
    host: Runtime, tiny_models: TinyModels, gamma: Path
) -> None:
    alpha = host.ready().model_id or ""
    beta = host.client.load_companion(str(tiny_models.beta)).companion_model_id or ""
    client = host.openai()

    switched = host.client.select(str(gamma))
    assert switched.model_alias == "gamma" and switched.companion_state == CompanionState.READY
    assert switched.companion_message == "beta is loaded beside gamma: both answer at once."
    gamma_id = switched.model_id or ""
    assert host.loaded() == {gamma_id, beta}
    assert stream_at_once(client, [gamma_id, beta]) == {gamma_id: GAMMA_ANSWER, beta: BETA_ANSWER}

    # The companion's model as the chat model, then another chat model: beta stays loaded, as the
    # companion, all along.
    same = host.client.select("beta")
    assert same.companion_message == "beta is the chat model too: it answers as both."
    assert host.loaded() == {beta}
    back = host.client.select("alpha")
    assert (back.model_id, back.companion_model_id, back.companion_state) == (alpha, beta, "ready")
    assert host.loaded() == {alpha, beta}
    assert stream_at_once(client, [alpha, beta]) == {alpha: ALPHA_ANSWER, beta: BETA_ANSWER}

    host.client.release_companion()
    assert host.loaded() == {alpha}


def test_models_that_do_not_fit_together_take_turns(
    start_host: StartRuntime, tiny_models: TinyModels, big_gamma: Path
) -> None:
    """Memory for 3 MB of models (--memory-mb): alpha is served; gamma's 3 MB do not fit beside
    it. The user is told, and the two answer one after the other."""
    host = start_host(offline(tiny_models.alpha), "--memory-mb", "3")
    alpha = host.ready().model_id or ""
    status = host.client.load_companion(str(big_gamma))

    assert status.companion_state == CompanionState.ONE_AT_A_TIME, status.companion_message
    assert status.companion_message.startswith(
        "gamma and alpha do not fit in memory together "
        f"(gamma needs about {BIG_MODEL_MB} MB, 2 MB are free): they answer one after the other."
    )
    gamma = status.companion_model_id or ""
    assert host.loaded() == {alpha}
    client = host.openai()
    assert chat(client, alpha) == ALPHA_ANSWER

    turn = host.client.companion_turn("companion")
    assert turn.companion_state == CompanionState.ONE_AT_A_TIME
    assert turn.companion_message.endswith("Now gamma answers; alpha waits its turn.")
    assert turn.state is RuntimeState.READY and turn.message == "alpha waits while gamma has its turn"
    assert host.loaded() == {gamma}
    assert chat(client, gamma) == GAMMA_ANSWER

    back = host.client.companion_turn("chat")
    assert back.companion_message.endswith("Now alpha answers; gamma waits its turn.")
    assert host.loaded() == {alpha}
    assert chat(client, alpha) == ALPHA_ANSWER

    # Releasing the companion during its turn gives the chat model back.
    host.client.companion_turn("companion")
    host.client.release_companion()
    assert host.loaded() == {alpha}
    assert chat(client, alpha) == ALPHA_ANSWER

    # So does a switch of the chat model; the companion still waits its turn beside the new one.
    host.client.load_companion(str(big_gamma))
    host.client.companion_turn("companion")
    switched = host.client.select(str(tiny_models.beta))
    assert switched.model_alias == "beta" and switched.companion_state == CompanionState.ONE_AT_A_TIME
    assert switched.companion_message.startswith("gamma and beta do not fit in memory together")
    assert host.loaded() == {switched.model_id}
    assert chat(client, switched.model_id) == BETA_ANSWER
    host.stop()


def test_a_comparison_of_models_that_do_not_fit_together_asks_them_in_turn(
    start_host: StartRuntime, tiny_models: TinyModels, big_gamma: Path
) -> None:
    """`desktop.compare` over such a runtime: told why, each model loaded for its answer (both
    answer right, although only one fits at a time), and the chat model loaded again after."""
    host = start_host(offline(tiny_models.alpha), "--memory-mb", "3")
    alpha = host.ready().model_id or ""
    settings = offline(tiny_models.alpha)
    pair = pair_up((str(tiny_models.alpha), str(big_gamma)), settings, host.client)
    assert not pair.together
    assert pair.note.startswith("gamma and alpha do not fit in memory together")

    alpha_runs, gamma_runs = asyncio.run(compare(pair, "Hi", max_tokens=16, rounds=2))
    assert [run.text for run in alpha_runs.runs] == [ALPHA_ANSWER, ALPHA_ANSWER]
    assert [run.text for run in gamma_runs.runs] == [GAMMA_ANSWER, GAMMA_ANSWER]
    assert host.loaded() == {alpha}  # the chat model's turn again
    host.client.release_companion()
    host.stop()
