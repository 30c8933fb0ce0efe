"""Readiness probes: "running" means the service answered, not that its process exists."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

import psutil

T = TypeVar("T")

# Loopback traffic must never go through a proxy configured for the internet.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get_json(url: str, timeout_s: float = 2.0, headers: dict[str, str] | None = None) -> Any:
    """GET `url` and decode JSON; raises `OSError` (incl. HTTP errors) or `ValueError`."""
    request = urllib.request.Request(url, headers=headers or {})
    with _NO_PROXY.open(request, timeout=timeout_s) as response:
        return json.loads(response.read())


def http_post_json(url: str, body: Any, timeout_s: float = 5.0, headers: dict[str, str] | None = None) -> Any:
    """POST JSON to `url` and decode the JSON answer."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    with _NO_PROXY.open(request, timeout=timeout_s) as response:
        return json.loads(response.read())


def http_ok(url: str, timeout_s: float = 1.0, headers: dict[str, str] | None = None) -> bool:
    """True when `url` answers with a 2xx status."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with _NO_PROXY.open(request, timeout=timeout_s) as response:
            return 200 <= int(response.status) < 300
    except urllib.error.HTTPError as error:
        error.close()  # it holds the connection until it is closed
        return False
    except (OSError, ValueError):
        return False


def child_serves(pid: int, url: str, timeout_s: float = 2.0) -> bool:
    """`url` answers with a 2xx status, from the server that process `pid` (or a child of it)
    runs: a port picked as free can be taken by another program before our child binds it, and
    that program's answer must not count as our service running (the window would show it)."""
    return listens(pid, urllib.parse.urlsplit(url).port or 80) and http_ok(url, timeout_s)


def listens(pid: int, port: int) -> bool:
    """Whether process `pid` or one of its descendants listens on TCP `port`.

    Where the system does not let us see a process's sockets (AccessDenied), it cannot be told,
    and it counts as listening: the HTTP answer alone decides then, as it did before.
    """
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
    for process in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            try:
                sockets = process.net_connections(kind="tcp")
            except psutil.AccessDenied:
                return True
            if any(s.status == psutil.CONN_LISTEN and s.laddr and s.laddr.port == port for s in sockets):
                return True
    return False


def wait_for(
    check: Callable[[], T | None],
    timeout_s: float,
    interval_s: float = 0.05,
) -> T | None:
    """Call `check` until it returns something truthy or `timeout_s` passes; returns that value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval_s)
