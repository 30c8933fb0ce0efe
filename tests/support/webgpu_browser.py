"""Driving the digit page (webgpu/) in Debian's Chromium, offline: launch, draw, read state.

Shared by tests/test_webgpu_page.py and tests/benchmark_webgpu.py. The page publishes its state
as `window.digitsApp.snapshot()`; this module waits on it, never on the clock.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Request

CHROMIUM = os.environ.get("FOUNDRY_DESK_CHROMIUM", "/usr/bin/chromium")
"""Debian's Chromium; never a browser downloaded by `playwright install`."""

OFFLINE_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--metrics-recording-only",
    # Every host name but 127.0.0.1 fails to resolve: nothing can leave the machine, and a
    # request that tries shows up in the request log instead of on the network.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)
"""Chromium flags for a headless run with no outside traffic (see tests/test_webgpu_page.py)."""

READY_TIMEOUT_MS = 20_000


def chromium_args(extra_args: Sequence[str] = ()) -> list[str]:
    """The offline flags plus `extra_args`; with any extra argument (e.g. ones that enable a real
    GPU) `--disable-gpu` is left out."""
    return [arg for arg in OFFLINE_ARGS if not (extra_args and arg == "--disable-gpu")] + list(extra_args)


def launch(playwright: Playwright, executable: str = CHROMIUM, extra_args: Sequence[str] = ()) -> Browser:
    """Headless Chromium with the offline flags; each context gets a fresh in-memory profile."""
    return playwright.chromium.launch(
        executable_path=executable, headless=True, args=chromium_args(extra_args)
    )


def launch_with_profile(
    playwright: Playwright, profile: Path, executable: str = CHROMIUM, extra_args: Sequence[str] = ()
) -> BrowserContext:
    """Headless Chromium with a profile folder, so its disk caches work as in a user's browser."""
    return playwright.chromium.launch_persistent_context(
        profile, executable_path=executable, headless=True, args=chromium_args(extra_args)
    )


@dataclass
class RequestLog:
    """Every request a page made, by URL; `outside()` lists those not to 127.0.0.1."""

    urls: list[str] = field(default_factory=list)

    def record(self, request: Request) -> None:
        self.urls.append(request.url)

    def outside(self) -> list[str]:
        return [
            url
            for url in self.urls
            if not (url.startswith(("data:", "blob:")) or urlsplit(url).hostname == "127.0.0.1")
        ]


def snapshot(page: Page) -> dict[str, Any]:
    """The page's published state (see `window.digitsApp.snapshot` in webgpu/app.mjs)."""
    state: dict[str, Any] = page.evaluate("window.digitsApp.snapshot()")
    return state


def wait_ready(page: Page, timeout_ms: int = READY_TIMEOUT_MS) -> dict[str, Any]:
    """Wait until the model is loaded (or the page gave up); returns the state."""
    page.wait_for_function(
        "() => window.digitsApp && ['ready', 'error'].includes(window.digitsApp.snapshot().status)",
        timeout=timeout_ms,
    )
    return snapshot(page)


def wait_idle(page: Page, timeout_ms: int = 10_000) -> dict[str, Any]:
    """Wait until the prediction shown belongs to the drawing as it is now."""
    page.wait_for_function("() => window.digitsApp.snapshot().idle", timeout=timeout_ms)
    return snapshot(page)


def wait_benchmark(page: Page, timeout_ms: int = 60_000) -> dict[str, Any]:
    """Press Benchmark and wait for its results; returns them."""
    page.click("#benchmark")
    page.wait_for_function("() => window.digitsApp.snapshot().benchmark !== null", timeout=timeout_ms)
    result: dict[str, Any] = snapshot(page)["benchmark"]
    return result


# ---- drawing a load_digits sample with the mouse ---------------------------------------------


def strokes_for(image: np.ndarray, threshold: float = 8.0) -> list[list[tuple[float, float]]]:
    """Pen strokes that redraw an 8x8 load_digits image: in each row, one horizontal stroke
    through the centres of each run of cells at least `threshold` bright.

    Points are in cell units (0..8). The page draws with a pen one cell wide and scales the
    strokes so the digit fills the height (every load_digits image has ink in its first and
    last row), so cell centres land on the centres of the page's 8x8 blocks.
    """
    strokes: list[list[tuple[float, float]]] = []
    lit = np.asarray(image) >= threshold
    for row in range(lit.shape[0]):
        col = 0
        while col < lit.shape[1]:
            if lit[row, col]:
                start = col
                while col + 1 < lit.shape[1] and lit[row, col + 1]:
                    col += 1
                strokes.append([(start + 0.5, row + 0.5), (col + 0.5, row + 0.5)])
            col += 1
    return strokes


def draw(page: Page, strokes: list[list[tuple[float, float]]], steps_per_cell: int = 3) -> None:
    """Draw `strokes` (cell units, 0..8) on the page's pad with mouse drags."""
    box = page.locator("#pad").bounding_box()
    assert box is not None, "the drawing pad is not visible"
    margin = 0.1 * box["width"]
    cell = (box["width"] - 2 * margin) / 8

    def at(point: tuple[float, float]) -> tuple[float, float]:
        return box["x"] + margin + point[0] * cell, box["y"] + margin + point[1] * cell

    for stroke in strokes:
        x, y = at(stroke[0])
        page.mouse.move(x, y)
        page.mouse.down()
        for point in stroke[1:]:
            tx, ty = at(point)
            length = max(abs(point[0] - stroke[0][0]), abs(point[1] - stroke[0][1]))
            page.mouse.move(tx, ty, steps=max(1, round(length * steps_per_cell)))
        page.mouse.up()
