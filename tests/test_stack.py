"""The service stack that both front ends use, with the real runtime host: a service that failed for
good is offered to restart, and Restart brings it back."""

from __future__ import annotations

from pathlib import Path

from desktop.config import Settings
from desktop.paths import AppPaths
from desktop.probe import wait_for
from desktop.process import process_alive
from desktop.runtime.service import SERVICE_NAME as RUNTIME
from desktop.runtime.status import RuntimeState
from desktop.stack import ServiceStack
from tests.conftest import TinyModels, free_port


def test_a_runtime_that_failed_for_good_is_restarted_and_serves(
    tmp_path: Path, tiny_models: TinyModels
) -> None:
    cache = tmp_path / "cache"
    cache.write_text("")  # a file where the model cache should be: the runtime cannot start
    settings = Settings(
        model_path=tiny_models.alpha, model_cache_dir=cache, restart_limit=1, runtime_port=free_port()
    )
    stack = ServiceStack(settings, AppPaths.under(tmp_path / "app").create(), chat_factory=None)
    stack.claim()
    stack.start()
    try:
        failed = wait_for(lambda: stack.status.failed, timeout_s=60)
        assert failed is not None and [service.name for service in failed] == [RUNTIME]
        assert any("File exists" in line for line in failed[0].log_tail), failed[0].log_tail

        cache.unlink()  # the user fixed what the log said
        stack.restart(RUNTIME)
        ready = wait_for(
            lambda: (runtime := stack.status.runtime) is not None and runtime.state is RuntimeState.READY,
            timeout_s=60,
        )
        assert ready, stack.status
        assert stack.status.failed == []
        assert stack.status.runtime is not None and stack.status.runtime.model_alias == "alpha"
        host = stack.status.runtime.pid
    finally:
        stack.stop()
    assert not process_alive(host), "the runtime host outlived the stack"
