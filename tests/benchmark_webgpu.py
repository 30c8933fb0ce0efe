"""Benchmark of the digit page (webgpu/) in Chromium (not part of the test suite).

Measures, with the page served by desktop.webgpu on 127.0.0.1:

- page load to ready (model loaded and warmed up), as the page reports it from navigation start:
  cold (a browser with a new profile: empty HTTP and code caches) and warm (a reload in it),
  median of --loads;
- bytes transferred on a cold and on a warm load (Resource Timing transferSize, headers included);
- inference latency per backend, median of --runs, from the page's Benchmark button;
- the backend the page chose, and the WebGPU adapter it reported (or why there is none);
- requests that did not go to 127.0.0.1 (should be none).

Usage: .venv/bin/python tests/benchmark_webgpu.py [--runs 50] [--loads 3] [--json out.json]
    [--chromium /usr/bin/chromium] [--extra-arg=--enable-unsafe-webgpu ...] [--force-webgpu]

Write extra Chromium arguments as `--extra-arg=--flag` (with `=`), once per flag; with any extra
argument `--disable-gpu` is left out, e.g. for a real GPU:
    --extra-arg=--enable-unsafe-webgpu --extra-arg=--enable-features=Vulkan --extra-arg=--use-angle=vulkan
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from desktop.webgpu import BUILD_COMMAND, missing_build_files, serve_webgpu, webgpu_root
from tests.support.webgpu_browser import (
    CHROMIUM,
    RequestLog,
    launch,
    launch_with_profile,
    snapshot,
    wait_ready,
)

TRANSFERRED_JS = """() => {
  const entries = [...performance.getEntriesByType('navigation'),
                   ...performance.getEntriesByType('resource')];
  return {bytes: entries.reduce((sum, e) => sum + (e.transferSize || 0), 0), files: entries.length};
}"""


def load(page: Page, url: str, reload: bool = False) -> dict[str, Any]:
    started = time.perf_counter()
    if reload:
        page.reload()
    else:
        page.goto(url)
    state = wait_ready(page, timeout_ms=120_000)
    wall_ms = (time.perf_counter() - started) * 1000
    if state["status"] != "ready":
        raise RuntimeError(f"the page did not get ready: {state['error']}")
    transferred: dict[str, Any] = page.evaluate(TRANSFERRED_JS)
    return {"ready_ms": state["readyMs"], "wall_ms": wall_ms, **transferred, "state": state}


def measure_loads(
    playwright: Playwright, args: argparse.Namespace, url: str, requests: RequestLog
) -> dict[str, Any]:
    """Each cold load in a browser with a new profile folder, then a reload in it (warm)."""
    cold: list[dict[str, Any]] = []
    warm: list[dict[str, Any]] = []
    for _ in range(args.loads):
        with tempfile.TemporaryDirectory(prefix="webgpu-bench-") as profile:
            context = launch_with_profile(playwright, Path(profile), args.chromium, args.extra_arg)
            try:
                page = context.new_page()
                page.on("request", requests.record)
                cold.append(load(page, url))
                warm.append(load(page, url, reload=True))
            finally:
                context.close()

    def summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "ready_ms_median": statistics.median(s["ready_ms"] for s in samples),
            "ready_ms_all": [round(s["ready_ms"], 1) for s in samples],
            "goto_to_ready_ms_median": statistics.median(s["wall_ms"] for s in samples),
            "bytes_transferred": samples[-1]["bytes"],
            "files": samples[-1]["files"],
            "page_timings_ms": samples[-1]["state"]["timings"],
        }

    return {"cold": summary(cold), "warm": summary(warm), "state": cold[-1]["state"]}


def measure_inference(browser: Browser, url: str, runs: int, requests: RequestLog) -> dict[str, Any]:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.on("request", requests.record)
        page.goto(url)
        wait_ready(page, timeout_ms=120_000)
        results: dict[str, Any] = page.evaluate("window.digitsApp.runBenchmark()")
        state = snapshot(page)
        if results is None:
            raise RuntimeError(f"the benchmark failed: {state['error']}")
        return results
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chromium", default=CHROMIUM, help=f"browser executable (default {CHROMIUM})")
    parser.add_argument("--extra-arg", action="append", default=[], help="extra Chromium argument")
    parser.add_argument("--force-webgpu", action="store_true", help="open the page with ?webgpu=force")
    parser.add_argument("--runs", type=int, default=50, help="timed inferences per backend")
    parser.add_argument("--loads", type=int, default=3, help="cold and warm page loads")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    missing = missing_build_files(webgpu_root())
    if missing:
        sys.exit(f"{missing[0]} is missing: run `{BUILD_COMMAND}` in {webgpu_root()}")
    requests = RequestLog()
    query = f"?runs={args.runs}" + ("&webgpu=force" if args.force_webgpu else "")
    with serve_webgpu(webgpu_root(), port=0) as server, sync_playwright() as playwright:
        url = server.url + query
        browser = launch(playwright, args.chromium, args.extra_arg)
        try:
            version = browser.version
            loads = measure_loads(playwright, args, url, requests)
            inference = measure_inference(browser, url, args.runs, requests)
        finally:
            browser.close()
    state = loads.pop("state")
    report = {
        "browser": f"{args.chromium} {version}",
        "extra_args": args.extra_arg,
        "url_query": query,
        "backend": state["backend"],
        "webgpu_unavailable_reason": state["reason"],
        "adapter": state["adapter"],
        "adapter_info": state["adapterInfo"],
        "ort_version": state["ortVersion"],
        "ready": loads,
        "inference_ms": {
            name: (
                {key: round(value, 4) if isinstance(value, float) else value for key, value in result.items()}
                if result["available"]
                else result
            )
            for name, result in inference.items()
        },
        "runs": args.runs,
        "requests": len(requests.urls),
        "requests_outside_loopback": requests.outside(),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
