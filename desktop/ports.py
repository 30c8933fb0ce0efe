"""Ports on 127.0.0.1, one strategy for the app's own servers: bind, then fall back.

Binding is the only reliable test of a port: a check beforehand races (another program can take
the port between the check and the bind), and what a "busy" port is differs by platform
(`compat.claim_port`). So each of our servers binds its pinned port itself and, when that fails,
listens on a port the system picks and says so (`in_use_note`); whatever holds the pinned port is
left alone. Only for a server we cannot bind for (Open WebUI: `open-webui serve --port`, `docker
run -p`) is a free port picked beforehand (`pick_port`), and that race accepted.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from desktop import compat

log = logging.getLogger(__name__)

BACKLOG = 128


def listen_loopback(preferred: int) -> socket.socket:
    """A listening socket on 127.0.0.1:`preferred`, or on a port the system picks when that one
    is taken (0: always one the system picks). Raises OSError only when no port can be had."""
    try:
        return _listen(preferred)
    except OSError as error:
        if not preferred:
            raise
        log.warning("cannot listen on port %d (%s); using a free port", preferred, error)
        return _listen(0)


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        compat.claim_port(sock)
        sock.bind(("127.0.0.1", port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


class LoopbackHTTPServer(ThreadingHTTPServer):
    """An HTTP server on a socket from `listen_loopback`; each request on a thread of its own."""

    daemon_threads = True

    def __init__(self, sock: socket.socket, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(sock.getsockname(), handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.server_address = sock.getsockname()
        self.server_name, self.server_port = "127.0.0.1", int(self.server_address[1])

    @property
    def port(self) -> int:
        return self.server_port


def serve_http(preferred: int, handler: type[BaseHTTPRequestHandler], name: str) -> LoopbackHTTPServer:
    """Serve `handler` on 127.0.0.1 (`preferred`, else a free port) from a daemon thread `name`."""
    server = LoopbackHTTPServer(listen_loopback(preferred), handler)
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    return server


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, picked by the system (for a server we do not bind for)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def pick_port(preferred: int) -> int:
    """For a server we do not bind for: `preferred` when a server could listen on it now, else a
    port the system picks."""
    if preferred and compat.can_listen(preferred):
        return preferred
    return free_port()


def in_use_note(preferred: int, port: int) -> str:
    """What to tell the user when a server could not have its pinned port."""
    return f" (port {preferred} is in use)" if preferred and port != preferred else ""
