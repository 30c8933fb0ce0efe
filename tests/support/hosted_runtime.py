"""A real runtime host under the real supervisor, for the tests that drive it directly, and the
clients a test talks to it with."""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import openai
import pytest

from desktop.config import Settings
from desktop.paths import AppPaths
from desktop.runsecret import RunSecret
from desktop.runtime.service import RuntimeClient, runtime_spec
from desktop.runtime.status import RuntimeState, RuntimeStatus
from desktop.supervisor import RestartPolicy, ServiceState, Supervisor


@dataclass
class Runtime:
    supervisor: Supervisor
    client: RuntimeClient
    paths: AppPaths
    openai_clients: list[openai.OpenAI] = field(default_factory=list)

    def ready(self, timeout_s: float = 30.0) -> RuntimeStatus:
        """Wait until the current host process has published READY."""
        self.supervisor.wait_for_state(ServiceState.RUNNING, timeout_s=timeout_s)
        return self.client.wait(
            lambda s: s.state is RuntimeState.READY and s.pid == self.supervisor.status.pid, timeout_s
        )

    def openai(self) -> openai.OpenAI:
        """A client of the local models' endpoint (the chat model's and the companion's)."""
        client = openai.OpenAI(base_url=self.ready().base_url, api_key="unused", max_retries=0, timeout=30)
        self.openai_clients.append(client)
        return client

    def loaded(self) -> set[str]:
        """The models the runtime holds in memory now, as the runtime itself lists them."""
        url = f"{self.ready().service_url}/catalogs/local/models/loaded"
        with urllib.request.urlopen(url, timeout=10) as answer:
            return set(json.loads(answer.read()))

    def stop(self) -> None:
        """Stop the host, and close the connections the tests' clients keep."""
        self.supervisor.stop()
        for client in self.openai_clients:
            client.close()


StartRuntime = Callable[..., Runtime]


@contextlib.contextmanager
def runtimes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartRuntime]:
    """`start(settings, *host_flags, ask_before_download=False)` starts a runtime host, with extra
    flags on its command line (the host's own options that no setting sets, such as
    --memory-mb); every host started is stopped at the end."""
    started: list[Runtime] = []

    def start(settings: Settings, *host_flags: str, ask_before_download: bool = False) -> Runtime:
        paths = AppPaths.under(tmp_path_factory.mktemp("app")).create()
        secret = RunSecret.create(paths.state_dir)
        spec = runtime_spec(settings, paths, secret, ask_before_download=ask_before_download)
        supervisor = Supervisor(
            replace(spec, command=[*spec.command, *host_flags]),
            paths.log_dir,
            RestartPolicy(backoff_base_s=0.1, probe_interval_s=0.2),
        )
        runtime = Runtime(supervisor, RuntimeClient(paths.runtime_status_file, secret), paths)
        started.append(runtime)
        supervisor.start()
        return runtime

    try:
        yield start
    finally:
        for runtime in started:
            runtime.stop()
