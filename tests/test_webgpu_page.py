"""The digit page (webgpu/) in Debian's Chromium, headless and offline, served by desktop.webgpu.

No GPU here, so the page must run on WASM and say why WebGPU is not used. Digits are drawn with
mouse strokes redrawing held-out load_digits samples, and must be recognised. Every request the
page makes is recorded and must go to 127.0.0.1.

Needs `apt-get install chromium`, `pip install playwright` (never `playwright install`) and the
ONNX Runtime Web build step (`npm ci && npm run build` in webgpu/). Missing any of them fails.
"""

from __future__ import annotations

import html
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from desktop.probe import wait_for
from desktop.webgpu import (
    BUILD_COMMAND,
    MIME_TYPES,
    WebGpuServer,
    missing_build_files,
    serve_webgpu,
    webgpu_root,
)
from tests.support.webgpu_browser import (
    CHROMIUM,
    RequestLog,
    draw,
    launch,
    snapshot,
    strokes_for,
    wait_benchmark,
    wait_idle,
    wait_ready,
)
from tests.support.webgpu_digits import HeldOut, held_out

NO_VALUE = "\N{EN DASH}"
"""What the page shows where there is no value yet."""

# ---- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[WebGpuServer]:
    missing = missing_build_files(webgpu_root())
    assert not missing, f"{missing[0]} is missing: run `{BUILD_COMMAND}` in {webgpu_root()}"
    server = serve_webgpu(webgpu_root(), port=0)
    yield server
    server.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).is_file(), f"no Chromium at {CHROMIUM}: apt-get install chromium"
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def requests() -> RequestLog:
    return RequestLog()


@pytest.fixture
def page(browser: Browser, server: WebGpuServer, requests: RequestLog) -> Iterator[Page]:
    """The page, loaded and ready, in a fresh browser context; every request is recorded."""
    context = browser.new_context(viewport={"width": 1100, "height": 1000})
    page = context.new_page()
    page.on("request", requests.record)
    page.goto(server.url)
    state = wait_ready(page)
    assert state["status"] == "ready", state["error"]
    yield page
    context.close()


@pytest.fixture(scope="module")
def digits() -> HeldOut:
    return held_out()


# ---- the page ----------------------------------------------------------------------------------


def test_runs_on_wasm_and_says_why_webgpu_is_unavailable(page: Page, requests: RequestLog) -> None:
    state = snapshot(page)
    assert state["backend"] == "wasm"
    assert state["reason"], "the page must say why WebGPU is not used"
    assert "adapter" in state["reason"]
    assert state["ortVersion"] == "1.30.0"
    assert page.get_attribute("body", "data-backend") == "wasm"
    assert page.text_content("#backend-badge") == "WASM"
    assert state["reason"] in (page.text_content("#backend-detail") or "")
    assert state["readyMs"] > 0  # how long it takes: tests/benchmark_webgpu.py
    assert any(url.endswith("/ort/ort-wasm-simd-threaded.wasm") for url in requests.urls)
    assert not any("webgpu" in url for url in requests.urls), "no WebGPU build without a GPU"
    assert requests.outside() == []


def test_recognises_held_out_digits_drawn_with_the_mouse(
    page: Page, requests: RequestLog, digits: HeldOut
) -> None:
    recognised: dict[int, int] = {}
    for position in digits.first_of_each_class():
        image, label = digits.images[position], int(digits.labels[position])
        page.evaluate("window.digitsApp.clear()")
        draw(page, strokes_for(image))
        state = wait_idle(page)
        assert state["strokeCount"] > 0 and state["inferences"] > 0
        assert len(state["probabilities"]) == 10
        assert sum(state["probabilities"]) == pytest.approx(1.0, abs=1e-4)
        # What the model saw is the sample as redrawn (black and white, re-centred).
        seen = np.array(state["input"]).reshape(8, 8)
        assert np.corrcoef(seen.ravel(), image.ravel())[0, 1] > 0.6
        recognised[label] = state["prediction"]
    assert recognised == {digit: digit for digit in range(10)}
    assert page.get_attribute("body", "data-prediction") == "9"
    assert requests.outside() == []


def test_predicts_while_drawing_and_clear_resets(page: Page, digits: HeldOut) -> None:
    strokes = strokes_for(digits.images[digits.first_of_each_class()[7]])
    draw(page, strokes[:2])
    partial = wait_idle(page)
    assert partial["prediction"] is not None
    draw(page, strokes[2:])
    done = wait_idle(page)
    assert done["inferences"] > partial["inferences"] and done["prediction"] == 7
    page.click("#clear")
    cleared = wait_idle(page)
    assert cleared["strokeCount"] == 0
    assert cleared["prediction"] is None and cleared["probabilities"] is None
    assert page.text_content("#prediction") == NO_VALUE


def test_benchmark_times_wasm_and_explains_missing_webgpu(page: Page, requests: RequestLog) -> None:
    results = wait_benchmark(page)
    wasm, webgpu = results["wasm"], results["webgpu"]
    assert wasm["available"] and wasm["runs"] == 50
    assert 0 < wasm["minMs"] <= wasm["medianMs"] <= wasm["p90Ms"]  # the times: benchmark_webgpu.py
    assert webgpu == {"available": False, "reason": snapshot(page)["reason"]}
    wasm_row = page.locator('#bench-body tr[data-backend="wasm"] td')
    assert wasm_row.nth(0).text_content() not in ("", NO_VALUE)
    assert "done" in (wasm_row.nth(4).text_content() or "")
    assert requests.outside() == []


def test_a_fallback_adapter_is_not_used_unless_forced(browser: Browser, server: WebGpuServer) -> None:
    """--enable-unsafe-webgpu is not set here, so there is no adapter at all; ?webgpu=force must
    then still end on WASM with the reason, not fail."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(server.url + "?webgpu=force")
        state = wait_ready(page)
        assert state["status"] == "ready" and state["backend"] == "wasm" and state["webgpuForced"]
    finally:
        context.close()


# ---- the server ------------------------------------------------------------------------------


def get(server: WebGpuServer, path: str, host: str = "127.0.0.1") -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", path, headers={"Host": f"{host}:{server.port}"})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


@pytest.mark.parametrize(
    ("path", "mime"),
    [
        ("/", MIME_TYPES[".html"]),
        ("/app.mjs", "text/javascript; charset=utf-8"),
        ("/ort/ort.wasm.min.mjs", "text/javascript; charset=utf-8"),
        ("/ort/ort-wasm-simd-threaded.wasm", "application/wasm"),
        ("/model/digits.onnx", "application/octet-stream"),
        ("/style.css", "text/css; charset=utf-8"),
    ],
)
def test_server_sends_the_right_mime_types(server: WebGpuServer, path: str, mime: str) -> None:
    response = get(server, path)
    assert response.status == 200
    assert response.getheader("Content-Type") == mime


@pytest.mark.parametrize("path", ["/node_modules/onnxruntime-web/package.json", "/.gitignore", "/model/"])
def test_server_hides_what_is_not_the_page(server: WebGpuServer, path: str) -> None:
    assert get(server, path).status == 404


def test_server_answers_loopback_names_only(server: WebGpuServer) -> None:
    assert get(server, "/", host="localhost").status == 200
    assert get(server, "/", host="attacker.example").status == 403
    # ... and listens on loopback only: other computers on the network cannot reach it at all.
    listening = {
        conn.laddr[0]
        for conn in psutil.net_connections("tcp")
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr[1] == server.port
    }
    assert listening == {"127.0.0.1"}


def test_server_explains_a_missing_build_step(tmp_path: Path) -> None:
    root = tmp_path / "webgpu"
    root.mkdir()
    shutil.copy(webgpu_root() / "index.html", root / "index.html")
    with serve_webgpu(root, port=0) as server:
        assert not server.built
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("GET", "/")
        response = connection.getresponse()
        body = response.read().decode()
        connection.close()
    assert response.status == 503
    assert html.escape(BUILD_COMMAND) in body and html.escape(str(root)) in body


def test_server_moves_to_a_free_port_when_the_pinned_one_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = int(taken.getsockname()[1])
        with serve_webgpu(webgpu_root(), port=busy) as server:
            assert server.port != busy
            assert get(server, "/app.mjs").status == 200


def test_server_refuses_a_folder_without_the_page(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        serve_webgpu(tmp_path, port=0)


def test_the_command_serves_the_page_and_opens_it_in_the_browser(tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\necho "$1" > "{opened}"\n')
    browser.chmod(0o755)
    with subprocess.Popen(
        [sys.executable, "-m", "desktop", "--webgpu"],
        env={**os.environ, "BROWSER": str(browser)},
        stdout=subprocess.PIPE,
        text=True,
    ) as app:
        try:
            assert app.stdout is not None
            url = app.stdout.readline().removeprefix("WebGPU demo: ").strip()
            assert url.startswith("http://127.0.0.1:")
            assert wait_for(lambda: opened.exists() and opened.read_text().strip() == url, timeout_s=10)
            with urllib.request.urlopen(url, timeout=5) as page:
                assert page.headers["Content-Type"].startswith("text/html")
            app.send_signal(signal.SIGTERM)
            assert app.wait(timeout=10) == 0
        finally:
            app.kill()
