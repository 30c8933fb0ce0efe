"""`foundry-desk compare` as a user runs it: two real tiny models through the real runtime, each
answer measured; the remote side served by a second runtime; the running app's runtime used."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from desktop.compare.sides import serves_companion
from desktop.paths import AppPaths
from desktop.runtime.status import read_status
from tests.conftest import app_command, free_port
from tests.support.headless_app import Headless
from tests.tinymodel import build_model

STOPPING_ANSWER = "Two and two make four."
ENDLESS_ANSWER = "on and"
MAX_TOKENS = 24


@dataclass(frozen=True)
class Models:
    stopping: Path
    """Answers STOPPING_ANSWER and stops."""
    endless: Path
    """Repeats ENDLESS_ANSWER until the token budget."""
    remote: Path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    root = tmp_path_factory.mktemp("compared")
    return Models(
        stopping=build_model(root / "stopping", STOPPING_ANSWER),
        endless=build_model(root / "endless", ENDLESS_ANSWER, endless=True),
        remote=build_model(root / "faraway", "Answered far away."),
    )


def compare_command(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`foundry-desk compare …` as a user runs it, with the app's folders under `home`."""
    pinned = {"FOUNDRY_DESK_RUNTIME_PORT": str(free_port()), "FOUNDRY_DESK_ALLOW_DOWNLOAD": "false"}
    return app_command(home, "compare", *args, env={**pinned, **(env or {})})


def compared(first: str | Path, second: str | Path) -> tuple[str, ...]:
    """The command line's two models."""
    return ("--model", str(first), "--model", str(second))


def as_json(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    runs = json.loads(result.stdout)
    assert isinstance(runs, list)
    return runs


def assert_measured(run: dict[str, Any]) -> None:
    """The numbers are there and agree with each other."""
    assert 0 < run["ttft_ms"] <= run["total_ms"]
    assert run["tokens_per_s"] > 0
    # The tokens after the first came within the time after the first token.
    assert (run["output_tokens"] - 1) / run["tokens_per_s"] * 1000 <= run["total_ms"] - run["ttft_ms"] + 1


def test_two_models_answer_at_once_through_a_runtime_of_its_own_and_are_measured(
    tmp_path: Path, models: Models, no_leftover_children: None
) -> None:
    args = (
        "What is two and two?",
        *compared(models.stopping, models.endless),
        "--max-tokens",
        str(MAX_TOKENS),
        "--at-once",
    )
    stopping, endless = as_json(compare_command(tmp_path, *args, "--json"))

    assert stopping["model"] == str(models.stopping)
    assert stopping["text"] == STOPPING_ANSWER
    assert stopping["finish_reason"] == "stop"
    assert stopping["output_tokens"] == len(STOPPING_ANSWER.split())  # one token per word
    assert endless["model"] == str(models.endless)
    assert endless["text"].startswith(ENDLESS_ANSWER)
    assert endless["output_tokens"] == MAX_TOKENS
    assert endless["finish_reason"] == "length"
    for run in (stopping, endless):
        assert_measured(run)
        assert run["where"] == "this computer (CPU)"
    # The runtime it started for the comparison is gone (no_leftover_children), and said so.
    status = read_status(AppPaths.under(tmp_path).runtime_status_file)
    assert status is not None and status.state.value == "stopped"


def test_rounds_give_a_median_and_a_spread_in_a_table_and_in_json(
    tmp_path: Path, models: Models, no_leftover_children: None
) -> None:
    args = ("Hi", *compared(models.endless, models.stopping), "--max-tokens", "8", "--runs", "3")
    table = compare_command(tmp_path, *args)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:7] == ["model", "TTFT", "ms", "tokens/s", "output", "tokens", "total"]
    assert lines[1].startswith(str(models.endless)) and lines[2].startswith(str(models.stopping))
    assert " 8 " in lines[1]  # output tokens, the same in every round: no spread
    assert "Medians of 3 rounds" in table.stdout
    assert f"── {models.stopping}\n{STOPPING_ANSWER}" in table.stdout
    assert f"── {models.endless} [cut at --max-tokens]" in table.stdout

    endless, stopping = as_json(compare_command(tmp_path, *args, "--json"))
    for run in (endless, stopping):
        assert run["runs"] == 3
        assert len(run["rounds"]) == 3
        low, high = run["spread"]["ttft_ms"]
        assert low <= run["ttft_ms"] <= high
    assert [r["output_tokens"] for r in endless["rounds"]] == [8, 8, 8]


@pytest.fixture
def remote_runtime(tmp_path_factory: pytest.TempPathFactory, models: Models) -> Iterator[tuple[str, str]]:
    """A second runtime (another app's, in a home of its own) standing in for a remote endpoint."""
    home = tmp_path_factory.mktemp("remote-home")
    app = Headless(
        home, {}, "--model-path", str(models.remote), "--runtime-port", str(free_port()), "--offline"
    )
    try:
        yield app.endpoint()
    finally:
        app.finish()


def test_the_remote_endpoint_as_one_side(
    tmp_path: Path, models: Models, remote_runtime: tuple[str, str], no_leftover_children: None
) -> None:
    base_url, model = remote_runtime
    env = {"FOUNDRY_DESK_REMOTE_BASE_URL": base_url, "FOUNDRY_DESK_REMOTE_MODEL": model}
    args = ("Hi", *compared(models.stopping, "remote"), "--json")
    local, remote = as_json(compare_command(tmp_path, *args, env=env))

    assert local["text"] == STOPPING_ANSWER and local["where"] == "this computer (CPU)"
    assert remote["model"] == "remote"
    assert remote["text"] == "Answered far away."
    assert remote["where"] == "remote host 127.0.0.1"
    assert_measured(remote)

    offline = compare_command(tmp_path, *args, env={**env, "FOUNDRY_DESK_OFFLINE": "1"})
    assert offline.returncode == 1
    assert "Cannot compare with the remote model: offline mode is on." in offline.stderr

    # Attached to an endpoint (BASE_URL): its models, asked there, with no runtime of ours.
    attached = {**env, "BASE_URL": base_url}
    endpoint, remote = as_json(
        compare_command(tmp_path, "Hi", *compared(model, "remote"), "--json", env=attached)
    )
    assert endpoint["text"] == remote["text"] == "Answered far away."
    assert endpoint["where"] == "this computer (CPU)"
    unknown = compare_command(tmp_path, "Hi", *compared("nothing-here", "remote"), env=attached)
    assert unknown.returncode == 1
    assert f"{base_url} does not offer nothing-here (it offers: {model})." in unknown.stderr


def test_the_running_apps_runtime_is_used_and_its_companion_let_go_after(
    tmp_path: Path, models: Models, no_leftover_children: None
) -> None:
    app = Headless(
        tmp_path, {}, "--model-path", str(models.stopping), "--runtime-port", str(free_port()), "--offline"
    )
    try:
        app.endpoint()
        host = app.host_pid()
        args = ("Hi", *compared(models.endless, models.stopping), "--max-tokens", "6", "--json")
        endless, stopping = as_json(compare_command(tmp_path, *args))
        assert stopping["text"] == STOPPING_ANSWER
        assert endless["output_tokens"] == 6

        status = read_status(AppPaths.under(tmp_path).runtime_status_file)
        assert status is not None and status.pid == host  # the app's runtime answered both
        assert not serves_companion(status, str(models.endless))  # and let the second model go

        # The app serves neither model: the user is told which one it serves.
        refused = compare_command(tmp_path, "Hi", *compared(models.endless, "remote"))
        assert refused.returncode == 1
        assert "The running app serves stopping" in refused.stderr
    finally:
        app.finish()


def test_a_model_that_is_not_there_is_refused_with_the_reason(
    tmp_path: Path, models: Models, no_leftover_children: None
) -> None:
    offline = {"FOUNDRY_DESK_OFFLINE": "1"}
    result = compare_command(tmp_path, "Hi", *compared(models.stopping, "no-such-model"), env=offline)
    assert result.returncode == 1
    assert "Cannot compare with no-such-model:" in result.stderr
    usage = compare_command(tmp_path, "Hi", "--model", str(models.stopping))
    assert usage.returncode == 2
    assert "give --model exactly twice" in usage.stderr
