"""Our servers answer only requests addressed to a loopback name; offline, only loopback is used.

A page on the internet could otherwise reach them through DNS rebinding (a name of its own that
resolves to 127.0.0.1): its requests then carry that name in the Host header.
"""

from __future__ import annotations

import ipaddress
import urllib.parse

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def addressed_to_loopback(host_header: str | None) -> bool:
    """True when an HTTP Host header (`name` or `name:port`, IPv6 in brackets) names loopback."""
    host = (host_header or "").rsplit(":", 1)[0].strip("[]")
    return host in LOOPBACK_NAMES


def on_this_computer(url: str) -> bool:
    """True when `url` names this computer (a loopback name or address): offline mode may use it."""
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
