"""A stand-in for the runtime host that has no model but a download on offer, as the real host has
when the catalog answers (which it cannot here, offline).

It serves the host's own control API (`desktop.runtime.control.serve_control`, the real code) and
publishes its status file as the host does. A select request for the offered model starts a
"download" that stops at `PROGRESS` percent until the test lets it finish (`finish()`), then the
model is ready: the test sees each step without waiting on the clock.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from desktop.runsecret import RunSecret
from desktop.runtime.control import ModelNotFound, NotNow, serve_control
from desktop.runtime.status import RuntimeState, RuntimeStatus, write_status

PROGRESS = 42.0


class OfferingRuntime:
    """The host's side of the control API (`Controllable`), with a download on offer."""

    def __init__(
        self,
        status_file: Path,
        secret: RunSecret,
        alias: str = "phi-4-mini",
        size_mb: int | None = 2458,
        offer: bool = True,
    ) -> None:
        """`offer` False: the catalog answers, but there is nothing to download (downloads off)."""
        self.status_file = status_file
        self.alias = alias
        self.selected: list[str] = []
        self.retries = 0
        self._finish = threading.Event()
        self._lock = threading.Lock()
        self._server = serve_control(self, secret)
        self._status = RuntimeStatus(
            RuntimeState.NO_MODEL,
            message=f"No model available: {alias} is not downloaded yet.",
            catalog_reachable=True,
            download_alias=alias if offer else None,
            download_size_mb=size_mb if offer else None,
            control_url=f"http://127.0.0.1:{self._server.server_address[1]}",
            pid=os.getpid(),
        )
        self._publish()

    def _publish(self, **changes: Any) -> None:
        with self._lock:
            self._status = self._status.but(**changes)
            write_status(self.status_file, self._status)

    def healthy(self) -> bool:
        return True

    def status_json(self) -> dict[str, Any]:
        with self._lock:
            return self._status.to_json()

    def list_models(self) -> list[dict[str, Any]]:
        return []

    def select_model(self, model: str) -> None:
        if model != self.alias:
            raise ModelNotFound(f"No model available: {model!r}")
        self.selected.append(model)
        self._publish(state=RuntimeState.DOWNLOADING, progress=PROGRESS, message=f"Downloading {model}")
        threading.Thread(target=self._download, daemon=True).start()

    def retry_catalog(self) -> None:
        self.retries += 1

    def load_companion(self, model: str) -> None:
        raise NotNow("No chat model is served yet: choose one first.")

    def release_companion(self) -> None:
        pass

    def companion_turn(self, which: str) -> None:
        raise NotNow("There is no companion.")

    def finish(self) -> None:
        """Let the download end: the model is then ready."""
        self._finish.set()

    def _download(self) -> None:
        self._finish.wait(60)
        self._publish(
            state=RuntimeState.READY,
            progress=None,
            message=f"{self.alias} is ready",
            download_alias=None,
            download_size_mb=None,
            model_id=f"{self.alias}-generic-cpu:1",
            model_alias=self.alias,
        )

    def close(self) -> None:
        self._finish.set()
        self._server.shutdown()
        self._server.server_close()
