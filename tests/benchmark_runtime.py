"""Benchmark of the runtime host (not part of the test suite).

Measures, with models this script builds (the tiny one, and a ~20M-parameter one so that the
numbers mean something):

- runtime host start to ready, model cached (median of --runs), beside the model's own load time;
- for the same prompt and model: time to first token and streamed tokens/s in-process (Foundry
  Local SDK in this process) versus through the host's OpenAI-compatible HTTP endpoint, and
  through its front (`desktop/runtime/front.py`) versus straight to the runtime behind it;
- host RSS with the tiny model loaded, after a chat.

Usage: .venv/bin/python tests/benchmark_runtime.py [--runs 5] [--tokens 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from desktop.config import Settings
from desktop.paths import AppPaths
from desktop.runsecret import RunSecret
from desktop.runtime.service import RuntimeClient, runtime_spec
from desktop.runtime.status import RuntimeState, RuntimeStatus
from desktop.supervisor import ServiceState, Supervisor
from tests.conftest import free_port
from tests.tinymodel import build_model, parameter_count

PROMPT = "Tell me a long story about a lighthouse keeper."
ANSWER = "Once upon a time a keeper kept the light burning every night."


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def start_host(settings: Settings, root: Path) -> tuple[Supervisor, RuntimeStatus, float]:
    """Start a supervised host; returns it, its READY status and the seconds it took."""
    paths = AppPaths.under(root).create()
    secret = RunSecret.create(paths.state_dir)
    supervisor = Supervisor(runtime_spec(settings, paths, secret), paths.log_dir)
    client = RuntimeClient(paths.runtime_status_file, secret)
    started = time.perf_counter()
    supervisor.start()
    supervisor.wait_for_state(ServiceState.RUNNING, timeout_s=60)
    status = client.wait(
        lambda s: s.state is RuntimeState.READY and s.pid == supervisor.status.pid, timeout_s=120
    )
    return supervisor, status, time.perf_counter() - started


def behind_the_front(status: RuntimeStatus) -> str:
    """The base URL of the runtime's own web service, behind the front: the one port the host
    listens on that is neither the front's nor its control API's."""
    assert status.pid is not None and status.base_url and status.service_url and status.control_url
    published = {urllib.parse.urlsplit(url).port for url in (status.service_url, status.control_url)}
    [port] = {
        c.laddr.port
        for c in psutil.Process(status.pid).net_connections("tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port not in published
    }
    return status.base_url.replace(status.service_url, f"http://127.0.0.1:{port}")


def host_start_to_ready(model: Path, runs: int, root: Path) -> list[float]:
    times = []
    for run in range(runs):
        supervisor, _, seconds = start_host(
            Settings(model_path=model, runtime_port=free_port()), root / f"s{run}"
        )
        supervisor.stop()
        times.append(seconds)
    return times


def stream_http(client: openai.OpenAI, model_id: str, tokens: int) -> tuple[float, float]:
    """(seconds to first token, tokens per second after it) for one streamed HTTP request."""
    started = time.perf_counter()
    first = 0.0
    count = 0
    stream = client.chat.completions.create(
        model=model_id,
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=tokens,
        stream=True,
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            count += 1
            if count == 1:
                first = time.perf_counter()
    end = time.perf_counter()
    return first - started, (count - 1) / (end - first)


def stream_raw_sse(base_url: str, model_id: str, tokens: int) -> tuple[float, float]:
    """The same request read as raw server-sent events: the endpoint without client overhead."""
    body = json.dumps(
        {
            "model": model_id,
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": tokens,
            "stream": True,
        }
    ).encode()
    request = urllib.request.Request(
        f"{base_url}/chat/completions", data=body, headers={"Content-Type": "application/json"}
    )
    started = time.perf_counter()
    first = 0.0
    count = 0
    with urllib.request.urlopen(request, timeout=120) as response:
        for line in response:
            if line.startswith(b"data: {") and b'"content"' in line:
                count += 1
                if count == 1:
                    first = time.perf_counter()
    end = time.perf_counter()
    return first - started, (count - 1) / (end - first)


class InProcess:
    """The same model, in this process, through the SDK's own chat session."""

    def __init__(self, model_dir: Path, root: Path) -> None:
        from foundry_local_sdk import CatalogType, Configuration, FoundryLocalManager, ModelInfoBuilder

        FoundryLocalManager.initialize(
            Configuration(
                app_name="foundry-desk-bench",
                app_data_dir=str(root / "data"),
                model_cache_dir=str(root / "models"),
                logs_dir=str(root / "logs"),
                disable_nonessential_telemetry=True,
            )
        )
        manager = FoundryLocalManager.instance
        assert manager is not None
        self.manager = manager
        local = self.manager.get_catalog(CatalogType.LOCAL)
        with ModelInfoBuilder() as info:
            info.set_string_property("task", "chat-completion")
            self.model = local.register_model(
                model_path=model_dir, model_id="bench-generic-cpu:1", metadata=info
            )
        started = time.perf_counter()
        self.model.load()
        self.load_s = time.perf_counter() - started

    def stream(self, tokens: int) -> tuple[float, float]:
        from foundry_local_sdk import (
            ChatSession,
            MessageItem,
            Request,
            RequestOptions,
            SearchOptions,
            TextItem,
        )

        with ChatSession(self.model) as session:
            session.set_options(RequestOptions(search=SearchOptions(max_output_tokens=tokens)))
            session.set_streaming(True)
            started = time.perf_counter()
            first = 0.0
            count = 0
            with (
                Request().add_item(MessageItem.user(PROMPT)) as request,
                session.process_streaming_request(request) as stream,
            ):
                for item in stream:
                    if isinstance(item, TextItem) and item.text:
                        count += 1
                        if count == 1:
                            first = time.perf_counter()
            end = time.perf_counter()
        return first - started, (count - 1) / (end - first)

    def close(self) -> None:
        self.model.unload()
        self.manager.close()


def measure_interleaved(
    runs: int, ways: dict[str, Callable[[], tuple[float, float]]]
) -> list[dict[str, float]]:
    """Median time to first token and tokens/s of each way, runs taken in turn."""
    for fn in ways.values():
        fn()  # warm-up: the first request pays one-time costs
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    for _ in range(runs):
        for name, fn in ways.items():
            samples[name].append(fn())
    return [
        {
            "ttft_ms": median([r[0] for r in results]) * 1000,
            "tokens_per_s": median([r[1] for r in results]),
        }
        for results in samples.values()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    os.environ.setdefault("CI", "true")  # no telemetry upload from the in-process manager

    with tempfile.TemporaryDirectory(prefix="foundry-desk-bench-") as temp:
        root = Path(temp)
        tiny = build_model(root / "models" / "tiny", ANSWER)
        big = build_model(root / "models" / "big", ANSWER, endless=True, width=1024, depth=19)
        results: dict[str, Any] = {"big_model_parameters": parameter_count(big)}

        results["host_start_to_ready_tiny_s"] = median(host_start_to_ready(tiny, args.runs, root / "tiny"))
        results["host_start_to_ready_big_s"] = median(host_start_to_ready(big, args.runs, root / "big"))

        supervisor, status, _ = start_host(Settings(model_path=tiny, runtime_port=free_port()), root / "rss")
        client = openai.OpenAI(base_url=status.base_url, api_key="unused", max_retries=0)
        client.chat.completions.create(
            model=status.model_id or "", messages=[{"role": "user", "content": "hi"}], max_tokens=32
        )
        results["host_rss_tiny_mb"] = psutil.Process(status.pid).memory_info().rss / 2**20
        supervisor.stop()

        in_process = InProcess(big, root / "inproc")  # first, so its load time is measured alone
        results["big_model_load_s"] = in_process.load_s
        supervisor, status, _ = start_host(Settings(model_path=big, runtime_port=free_port()), root / "http")
        client = openai.OpenAI(base_url=status.base_url, api_key="unused", max_retries=0, timeout=120)
        # Interleaved, so that drift of the machine (other load, clock) hits both alike.
        direct = behind_the_front(status)
        local, http, raw, raw_direct = measure_interleaved(
            args.runs,
            {
                "in_process": lambda: in_process.stream(args.tokens),
                "http_openai": lambda: stream_http(client, status.model_id or "", args.tokens),
                "http_raw_sse": lambda: stream_raw_sse(
                    status.base_url or "", status.model_id or "", args.tokens
                ),
                "http_raw_sse_behind_front": lambda: stream_raw_sse(
                    direct, status.model_id or "", args.tokens
                ),
            },
        )
        in_process.close()
        supervisor.stop()

    results["in_process"] = local
    results["http"] = http
    results["http_raw_sse"] = raw
    results["http_raw_sse_behind_front"] = raw_direct
    results["front_first_token_overhead_ms"] = raw["ttft_ms"] - raw_direct["ttft_ms"]
    results["front_throughput_ratio"] = raw["tokens_per_s"] / raw_direct["tokens_per_s"]
    results["http_raw_throughput_ratio"] = raw["tokens_per_s"] / local["tokens_per_s"]
    results["http_throughput_ratio"] = http["tokens_per_s"] / local["tokens_per_s"]
    results["http_first_token_overhead_ms"] = http["ttft_ms"] - local["ttft_ms"]
    results["http_raw_first_token_overhead_ms"] = raw["ttft_ms"] - local["ttft_ms"]
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
