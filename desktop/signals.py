"""The app's own signal handling: SIGINT and SIGTERM (and SIGHUP, where there is one) become calls
into the running mode, for the time of a run, and the previous handlers come back afterwards."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def capture_signals(
    on_stop: Callable[[], None], on_hangup: Callable[[], None] | None = None
) -> Iterator[None]:
    """SIGINT/SIGTERM call `on_stop`, SIGHUP `on_hangup`. Both must return at once (they run in
    the middle of whatever the main thread does). Only the main thread can set handlers:
    elsewhere (a test driving the app) nothing is captured."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    calls = {signal.SIGINT: on_stop, signal.SIGTERM: on_stop}
    if on_hangup is not None and hasattr(signal, "SIGHUP"):
        calls[signal.SIGHUP] = on_hangup
    previous = {signum: signal.signal(signum, _handler(call)) for signum, call in calls.items()}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _handler(call: Callable[[], None]) -> Callable[..., None]:
    return lambda *_: call()
