"""The runtime host: a child process that runs Foundry Local in-process and serves its models.

It serves the model endpoint on 127.0.0.1 on the pinned port (or a free one when that is busy; it
never touches a server it did not start): the runtime's OpenAI-compatible web service, behind a
thin front that gives a request naming no answer length one that fits the model (see `front`).
It makes a model ready (your own model folder, a registered or cached model, or a catalog
download with progress), and publishes every step to the status file and its control API. It
exits when asked (SIGTERM/SIGINT) or when the app that started it is gone.

Beside the chat model it can hold a second chat model, the companion, so that the user compares
two models' answers to one prompt: the runtime holds both and streams from both at once. When the
memory does not hold both, they take turns: one is loaded at a time (`companion_turn`). A model
is unloaded only when neither the chat model, the companion nor the embedding model is it.

With no model it stays up (NO_MODEL) and says whether the catalog answered and which model it
could download: the desktop app asks the user first (`--ask-before-download`), then a select
request downloads it; the command line downloads at once, as its user asked.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil

from desktop import APP_NAME, compat
from desktop.ports import in_use_note
from desktop.probe import http_ok
from desktop.runsecret import SECRET_ENV, RunSecret
from desktop.runtime.control import (
    OFFLINE_CATALOG,
    ModelNotFound,
    ModelUnusable,
    NotNow,
    SwitchInProgress,
    serve_control,
)
from desktop.runtime.front import Upstream, answer_room, serve_front
from desktop.runtime.status import CompanionState, RuntimeState, RuntimeStatus, read_status, write_status

log = logging.getLogger(__name__)

SDK_LOG_LEVELS = {"debug": "Debug", "info": "Information", "warning": "Warning", "error": "Error"}
"""Our log levels, as the names of the SDK's LogLevel values."""
UNLOAD_WAIT_S = 5.0
"""How long a switch waits for the runtime to let go of the previous model: it ends an answer's
session a moment after its client hangs up (Stop, then another model at once)."""
SWITCH_ENDING_S = 1.0
"""How long a request waits for a switch that is under way: one that has just published its
result is about to end, and the request should not be refused for that; a download or a load
goes on much longer, and then the request is refused (SwitchInProgress)."""
CHAT_TASK = "chat-completion"
EMBEDDINGS_TASK = "embeddings"
"""The task a model folder is registered with: the runtime serves it on /chat/completions or on
/embeddings (an embedding model needs a `hidden_states` output in its genai_config)."""
BYO_SUFFIX = "-generic-cpu:1"
"""Own model folders are registered as `<folder name><BYO_SUFFIX>`; the alias is the folder name."""
MEMORY_MARGIN = 1.2
"""A loaded model takes more memory than its files (the runtime's buffers, an answer's cache): the
companion is loaded beside the chat model only when its files times this fit in the free memory."""
MB = 1024 * 1024


@dataclass(frozen=True)
class HostOptions:
    """What the supervisor tells the host (all from the app's settings and folders)."""

    status_file: Path
    port: int
    model: str
    model_path: Path | None
    model_cache_dir: Path
    data_dir: Path
    log_dir: Path
    allow_download: bool
    log_level: str = "info"
    ask_before_download: bool = False
    """The model the host starts with is not downloaded by itself: it is offered (NO_MODEL with
    `download_alias`), and a select request (the user's choice) downloads it."""
    offline: bool = False
    """No network at all: nothing is downloaded, and the catalog is never asked (`catalog_off`)."""
    embedding_model: str | None = None
    """Loaded beside the chat model once that is served (never downloaded by the host)."""
    memory_mb: int | None = None
    """The memory (MB) models may use, instead of what is free now: what decides whether the
    companion fits beside the chat model (tests set it to provoke taking turns)."""

    @property
    def catalog_off(self) -> str | None:
        """Why the public catalog is never asked in this run, or None. It is needed only to
        download; models downloaded before are found on the disk. The runtime's catalog is then
        our control API's `OFFLINE_CATALOG`, which has no models: the runtime falls back to the
        disk at once, with no network and no retries."""
        if self.offline:
            return "offline mode is on (--offline)"
        if not self.allow_download:
            return "downloads are off (allow_download = false)"
        return None


@dataclass(frozen=True)
class Candidate:
    """A model the host found for a request, and which catalog it belongs to."""

    model: Any  # foundry_local_sdk.IModel
    local: bool
    registered: bool = False
    """A model folder registered by this request: forgotten again if it does not load."""


def unload(model: Any) -> None:
    """Unload `model`, waiting up to `UNLOAD_WAIT_S` for a session of it that is ending (the
    runtime refuses while "1 session(s) still using it")."""
    deadline = time.monotonic() + UNLOAD_WAIT_S
    while True:
        try:
            model.unload()
            return
        except Exception as error:
            if "still using" not in str(error) or time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def describe_device(model: Any) -> str:
    """Which device runs `model`: as the catalog states it, else as its genai_config asks.

    ONNX Runtime GenAI runs on the CPU unless the config names another execution provider.
    """
    runtime = model.info.runtime
    if runtime is not None and runtime.execution_provider:
        device = runtime.device_type.value if runtime.device_type else "unknown device"
        return f"{device} via {runtime.execution_provider}"
    try:
        config = json.loads((Path(model.get_path()) / "genai_config.json").read_text(encoding="utf-8"))
        options = config["model"]["decoder"]["session_options"].get("provider_options", [])
        providers = [name for option in options for name in option]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return "unknown device"
    return ", ".join(providers) if providers else "CPU"


def model_bytes(model: Any) -> int | None:
    """The memory `model` needs, estimated as the size of its files (the weights are most of
    it): those of its folder, else the catalog's download size; None when neither is known."""
    try:
        sizes = [path.stat().st_size for path in Path(model.get_path()).rglob("*") if path.is_file()]
    except Exception:  # not downloaded, or the folder went away
        sizes = []
    if sizes:
        return sum(sizes)
    size_mb = model.info.file_size_mb
    return size_mb * MB if size_mb else None


def no_companion(message: str = "") -> dict[str, Any]:
    """The status changes that say there is no companion."""
    return {
        "companion_state": CompanionState.NONE,
        "companion_message": message,
        "companion_model_id": None,
        "companion_alias": None,
        "companion_base_url": None,
        "companion_context_length": None,
        "companion_device": None,
    }


def byo_model_id(folder: Path) -> str:
    """The id under which a model folder of the user's own is registered."""
    name = re.sub(r"[^a-z0-9.-]+", "-", folder.resolve().name.lower()).strip("-.") or "model"
    return name + BYO_SUFFIX


class RuntimeHost:
    """Owns the Foundry Local manager of this process and the models it serves: the chat model,
    a companion beside it, and an embedding model."""

    def __init__(self, options: HostOptions, stop: threading.Event, secret: RunSecret) -> None:
        self.options = options
        self.secret = secret
        self._stop = stop
        """Set when the host must exit; also cancels a download in progress."""
        self._status = RuntimeStatus(RuntimeState.STARTING, message="Starting the model runtime")
        self._status_lock = threading.Lock()
        self._switch_lock = threading.Lock()
        self._manager: Any = None
        self._upstream = Upstream()
        """Where the runtime's web service listens (a free port; the front is the endpoint)."""
        self._current: Candidate | None = None
        self._embedder: Candidate | None = None
        """The embedding model loaded beside the chat model; never unloaded by a switch."""
        self._companion: Candidate | None = None
        """A second chat model, to compare answers; it may be the chat model itself."""
        self._apart = ""
        """Why the companion and the chat model are not loaded together (memory): one is loaded at a
        time, and they take turns; "" when both are loaded."""
        self._companion_turn = False
        """Apart, the companion is loaded now and the chat model is not."""
        self._initial = ""
        """The model the host started with; what a catalog retry looks for again."""
        self._catalog_known = threading.Event()
        """Set once the public catalog was asked in this start (for a model the user wants): then
        the model list shows the catalog's downloaded models too, at no cost."""

    # -- publishing -----------------------------------------------------------------------------

    def publish(self, **changes: Any) -> RuntimeStatus:
        """Publish a new status. Progress is only shown while DOWNLOADING; a download offer lives
        as long as there is no model to serve (NO_MODEL) or while it is being downloaded."""
        state = changes.get("state")
        if state is not None and state is not RuntimeState.DOWNLOADING:
            changes.setdefault("progress", None)
        if state not in (None, RuntimeState.NO_MODEL, RuntimeState.DOWNLOADING):
            changes.setdefault("download_alias", None)
            changes.setdefault("download_size_mb", None)
        with self._status_lock:
            self._status = self._status.but(**changes)
            write_status(self.options.status_file, self._status)
            status = self._status
        if any(not name.startswith("companion_") for name in changes):
            log.info("runtime %s %s", status.state.value, status.message)
        if "companion_state" in changes or "companion_message" in changes:
            log.info("companion %s %s", status.companion_state or "none", status.companion_message)
        return status

    def status_json(self) -> dict[str, Any]:
        with self._status_lock:
            return self._status.to_json()

    # -- lifecycle ------------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until the stop event is set. Returns the process exit code."""
        self._initial = self._model_to_resume() or str(self.options.model_path or self.options.model)
        # Starting is the first switch: a model chosen meanwhile (the tray, a chat's pending
        # choice) waits for it, instead of being served first and then replaced by this one.
        self._switch_lock.acquire()
        servers = [serve_control(self, self.secret)]
        self.publish(control_url=f"http://127.0.0.1:{servers[0].server_address[1]}")
        try:
            # On the pinned port, else a free one (`desktop.ports`).
            servers.append(serve_front(self.options.port, self._upstream, self._answer_room))
            self._start_runtime()
            self._publish_endpoint(servers[-1])
        except Exception as error:
            self._switch_lock.release()
            self.publish(state=RuntimeState.FAILED, message=f"The model runtime could not start: {error}")
            return 1
        else:
            # Off the main thread, so a stop request is seen at once even during a long download.
            self._in_background(self._look_for, self._initial)
            if self.options.embedding_model:  # once the start's model is served (the switch lock)
                threading.Thread(target=self._load_embedder, name="load-embedder", daemon=True).start()
            self._stop.wait()
            return 0
        finally:
            for server in servers:
                server.shutdown()

    def _model_to_resume(self) -> str | None:
        """The model a crashed predecessor was serving: after a crash the user gets it back.

        A clean stop publishes STOPPED; a host that was killed leaves READY behind.
        """
        previous = read_status(self.options.status_file)
        if previous is None or previous.state is not RuntimeState.READY or previous.pid == os.getpid():
            return None
        return None if psutil.pid_exists(previous.pid) else previous.model_id

    def close(self, timeout_s: float = 2.0) -> None:
        """Release the runtime (unloads the model); the status file says STOPPED.

        Closing waits for native calls in flight; an offline catalog fetch can take seconds, and
        quitting must not, so past `timeout_s` the process exits without waiting.
        """
        manager, self._manager = self._manager, None
        self._upstream.set(None)
        closer = threading.Thread(target=manager.close if manager else lambda: None, daemon=True)
        closer.start()
        closer.join(timeout_s)
        self.publish(
            state=RuntimeState.STOPPED,
            message="The model runtime stopped",
            base_url=None,
            embeddings_url=None,
            embedding_model_id=None,
            **no_companion(),
        )
        if closer.is_alive():
            log.warning("the runtime did not close within %.1f s; exiting anyway", timeout_s)
            os._exit(0)

    def _close_manager(self) -> None:
        """Close the runtime to start it afresh: what it learnt of the catalog goes with it."""
        manager, self._manager = self._manager, None
        self._upstream.set(None)
        if manager is not None:
            manager.close()
        self._catalog_known = threading.Event()
        self._embedder = None
        self._companion, self._apart, self._companion_turn = None, "", False
        self.publish(embedding_model_id=None, embeddings_url=None, **no_companion())

    def _publish_endpoint(self, front: ThreadingHTTPServer) -> None:
        """Publish the endpoint once the runtime behind the front runs: health checks it from then on."""
        port = int(front.server_address[1])
        service_url = f"http://127.0.0.1:{port}"
        note = in_use_note(self.options.port, port)
        self.publish(service_url=service_url, message=f"Model runtime listening on {service_url}{note}")

    def _answer_room(self, model_id: str) -> int | None:
        """The answer length the front fills in for `model_id`: known for the chat model and the
        companion."""
        for served in (self._current, self._companion):
            if served is not None and served.model.id == model_id:
                return answer_room(served.model.context_length)
        return None

    def _start_runtime(self) -> None:
        """Start the runtime and its web service, on a free port behind the front."""
        for folder in (self.options.model_cache_dir, self.options.data_dir, self.options.log_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._start_manager()
        url = urlsplit(self._manager.urls[0])
        self._upstream.set((url.hostname or "127.0.0.1", url.port or 80))

    def _start_manager(self) -> None:
        from foundry_local_sdk import Configuration, FoundryLocalManager, LogLevel

        catalogs: list[tuple[str, str | None]] | None = None
        if self.options.catalog_off:  # the runtime's only catalog: ours, on loopback, with no models
            with self._status_lock:
                catalogs = [(f"{self._status.control_url}{OFFLINE_CATALOG}", None)]
        FoundryLocalManager.initialize(
            Configuration(
                app_name=APP_NAME,
                log_level=LogLevel(SDK_LOG_LEVELS[self.options.log_level]),
                app_data_dir=str(self.options.data_dir),
                model_cache_dir=str(self.options.model_cache_dir),
                logs_dir=str(self.options.log_dir),
                disable_nonessential_telemetry=True,
                web=Configuration.WebService(urls="http://127.0.0.1:0"),
                catalog_urls=catalogs,
            )
        )
        self._manager = FoundryLocalManager.instance
        self._manager.start_web_service()

    # -- health and models ----------------------------------------------------------------------

    def healthy(self) -> bool:
        """The control API answers (we are here) and so does the model endpoint: the front and the
        runtime's web service behind it (a restart on purpose is waited for, see `front.Upstream`)."""
        with self._status_lock:
            service_url = self._status.service_url
        return service_url is None or http_ok(f"{service_url}/status", timeout_s=2.0)

    def list_models(self) -> list[dict[str, Any]]:
        """Registered models of your own, and catalog models already downloaded.

        Never asks the network: a list is not a reason to tell the outside what the user runs,
        nor to wait seconds for a catalog offline. The downloaded catalog models are listed once
        the catalog was asked for a model the user wanted, and in offline mode (from the disk).
        """
        if self._manager is None:
            return []
        from foundry_local_sdk import CatalogType

        current = self._current.model.id if self._current else None
        companion = self._companion.model.id if self._companion else None
        found: list[dict[str, Any]] = []
        listed = self.options.catalog_off is not None or self._catalog_known.is_set()
        catalog = self._manager.catalog.get_cached_models() if listed else []
        for local, models in (
            (True, self._manager.get_catalog(CatalogType.LOCAL).list_models()),
            (False, catalog),
        ):
            for model in models:
                if getattr(model.info, "task", None) == EMBEDDINGS_TASK:
                    continue  # not a chat model (`embedding_model`)
                found.append(
                    {
                        "id": model.id,
                        "alias": model.alias,
                        "source": "local" if local else "catalog",
                        "cached": True,
                        "loaded": model.id == current,
                        "companion": model.id == companion,
                    }
                )
        return found

    def select_model(self, name: str) -> None:
        """Switch to `name` (alias, id or folder). Raises at once if unknown; loads in the background.

        This is the user's choice: a catalog model that is not downloaded is downloaded now.
        """
        candidate = self._claim_model(name)
        served = self._current is not None and candidate.model.id == self._current.model.id
        if served and not self._companion_turn:  # (the companion's turn ends with a switch)
            self.publish(state=RuntimeState.READY, message=f"{candidate.model.alias} is ready")
            self._switch_lock.release()
            return
        # Published before the answer: the caller waits for a settled state newer than this one.
        self.publish(state=RuntimeState.LOADING, message=f"Preparing {candidate.model.alias}")
        self._in_background(self._make_ready, candidate, True)

    def _claim(self) -> None:
        """Take the switch lock: one switch, load or unload at a time. The caller releases it,
        or hands it to `_in_background`."""
        if not self._switch_lock.acquire(timeout=SWITCH_ENDING_S):
            raise SwitchInProgress("A model is being prepared; try again when it is ready.")

    def _claim_model(self, name: str) -> Candidate:
        """Take the switch lock and find `name` (alias, id or folder); refused at once, with the
        lock released, when it is unknown or unusable."""
        self._claim()
        try:
            candidate = self._find(name)
        except Exception as error:  # e.g. a folder the runtime cannot register
            self._switch_lock.release()
            raise ModelUnusable(f"Cannot use model {name}: {error}") from None
        except BaseException:
            self._switch_lock.release()
            raise
        if candidate is None:
            self._switch_lock.release()
            raise ModelNotFound(self._not_found_message(name))
        return candidate

    def retry_catalog(self) -> None:
        """Ask the model catalog again, e.g. once the user is back online, and look for the model
        the host started with again. The runtime asks the catalog once per start, so it is
        started afresh (on the same port). Only while no model is served: nothing is interrupted.
        """
        self._claim()
        if self._current is not None:
            self._switch_lock.release()
            return
        self.publish(
            state=RuntimeState.STARTING, message="Asking the model catalog again", catalog_reachable=None
        )
        self._in_background(self._restart_and_look)

    def _restart_and_look(self) -> None:
        try:
            self._close_manager()
            self._start_runtime()
        except Exception as error:
            self.publish(state=RuntimeState.FAILED, message=f"The model runtime could not start: {error}")
            return
        self._look_for(self._initial)
        if self.options.embedding_model:
            self._load_embedder_now()

    def _in_background(self, work: Callable[..., None], *args: Any) -> None:
        """Run `work` (a switch) in a thread of its own, releasing the switch lock (which the
        caller holds) when it ends."""

        def run() -> None:
            try:
                work(*args)
            finally:
                self._switch_lock.release()

        threading.Thread(target=run, name=work.__name__.strip("_"), daemon=True).start()

    def _look_for(self, name: str) -> None:
        """Serve `name`, the model the host starts with: downloaded first unless the user is to be
        asked (`ask_before_download`)."""
        self.publish(state=RuntimeState.STARTING, message=f"Looking for model {name}")
        try:
            candidate = self._find(name)
        except Exception as error:  # e.g. a model folder the runtime cannot register
            self._no_model(f"Cannot use model {name}: {error}")
            return
        if candidate is None:
            self._no_model(self._not_found_message(name))
            return
        self._make_ready(candidate, not self.options.ask_before_download)

    def _no_model(self, message: str) -> None:
        """Publish NO_MODEL with what the catalog offers instead (see `_catalog_offer`)."""
        self.publish(
            state=RuntimeState.NO_MODEL,
            message=message,
            base_url=None,
            model_id=None,
            **self._catalog_offer(),
        )

    def _catalog_offer(self) -> dict[str, Any]:
        """Whether the catalog answered, and the configured model when it can be downloaded.

        The catalog is asked once per start: after a lookup of a catalog model this is instant;
        after one of a folder it asks now (offline: seconds). With `catalog_off` it is not asked.
        """
        if self.options.catalog_off:
            return {"catalog_reachable": False, "download_alias": None, "download_size_mb": None}
        catalog = self._manager.catalog
        wanted = self.options.model
        model = catalog.get_model_variant(wanted) if ":" in wanted else catalog.get_model(wanted)
        offered = model is not None and self.options.allow_download and not model.is_cached
        self._catalog_known.set()
        return {
            "catalog_reachable": model is not None or self._catalog_answered(),
            "download_alias": model.alias if offered else None,
            "download_size_mb": model.info.file_size_mb if offered else None,
        }

    def _catalog_answered(self) -> bool:
        """The public catalog lists models (offline it lists none, the second time at once)."""
        if self.options.catalog_off:
            return False
        answered = bool(self._manager.catalog.list_models())
        self._catalog_known.set()
        return answered

    def _load_embedder(self) -> None:
        """Load the configured embedding model beside the chat model, if it is there: a folder, or
        a catalog model downloaded before (never downloaded here: it is not what the user asked
        the app to serve). Without it the index of the user's files is searched by words only."""
        with self._switch_lock:
            self._load_embedder_now()

    def _load_embedder_now(self) -> None:
        """`_load_embedder`, with the switch lock held."""
        name = str(self.options.embedding_model)
        if self._manager is None or self._stop.is_set():
            return
        try:
            candidate = self._find(name, task=EMBEDDINGS_TASK)
            if candidate is None:
                raise ModelNotFound(f"{name} is not a model folder, nor a model downloaded before")
            if not candidate.model.is_cached:
                raise ModelNotFound(f"{candidate.model.alias} is not downloaded")
            candidate.model.load()
        except Exception as error:
            self.publish(embeddings_problem=f"The embedding model is not used: {error}")
            return
        self._embedder = candidate
        self.publish(
            embedding_model_id=candidate.model.id,
            embeddings_url=self._base_url(candidate),
            embeddings_problem="",
        )

    def _find(self, name: str, task: str = CHAT_TASK) -> Candidate | None:
        from foundry_local_sdk import CatalogType, ModelInfoBuilder

        local = self._manager.get_catalog(CatalogType.LOCAL)
        folder = Path(name).expanduser()
        if folder.is_dir():
            model_id = byo_model_id(folder)
            model = local.get_model_variant(model_id)
            if model is not None and Path(model.get_path()).resolve() != folder.resolve():
                local.unregister_model(model_id)  # the same name now points elsewhere
                model = None
            if model is None:
                with ModelInfoBuilder() as info:
                    info.set_string_property("task", task)
                    model = local.register_model(model_path=folder, model_id=model_id, metadata=info)
                return Candidate(model, local=True, registered=True)
            return Candidate(model, local=True)
        model = local.get_model_variant(name) if ":" in name else local.get_model(name)
        if model is not None:
            return Candidate(model, local=True)
        public = self._manager.catalog
        model = public.get_model_variant(name) if ":" in name else public.get_model(name)
        self._catalog_known.set()
        if model is not None:
            return Candidate(model, local=False)
        # Offline the catalog cannot answer; a model downloaded earlier must still be found.
        for model in public.get_cached_models():
            if name in (model.alias, model.id):
                return Candidate(model, local=False)
        return None

    def _not_found_message(self, name: str) -> str:
        """Why `name` cannot be served; front-end neutral (each front end says how to act)."""
        off = self.options.catalog_off
        if off:
            then = " Or turn offline mode off to download it." if self.options.offline else ""
            return (
                f"No model available: {name!r} is not downloaded and not a model folder, and {off}, "
                f"so the model catalog is not asked. Choose a model folder of your own.{then}"
            )
        catalog = (
            "the model catalog has no model of that name"
            if self._catalog_answered()
            else "the model catalog could not be reached (offline?)"
        )
        return f"No model available: {name!r} is not downloaded, not a model folder, and {catalog}."

    def _make_ready(self, candidate: Candidate, may_download: bool) -> None:
        model = candidate.model
        if not model.is_cached:
            if self.options.catalog_off:
                self._refuse(f"{model.alias} is not downloaded, and {self.options.catalog_off}.")
                return
            if not may_download:
                self._no_model(f"No model available: {model.alias} is not downloaded yet.")
                return
            if not self._download(model):
                return
        self.publish(state=RuntimeState.LOADING, message=f"Loading {model.alias}")
        previous, self._current = self._current, None
        self._companion_turn = False  # a switch ends the companion's turn (one at a time)
        try:
            # First, so two big models never share the memory; the companion stays, unless it
            # only had its turn.
            for old in (previous, self._companion):
                if old is not None:
                    self._unload_unused(old)
            model.load()
        except Exception as error:
            if candidate.registered:  # a folder that does not load is not offered again
                self._forget(candidate)
            self._restore(previous, f"Could not load {model.alias}: {error}")
            return
        self._current = candidate
        self._settle_companion()  # before READY: a switch has ended when both models are placed
        self.publish(
            state=RuntimeState.READY,
            message=f"{model.alias} is ready",
            base_url=self._base_url(candidate),
            model_id=model.id,
            model_alias=model.alias,
            context_length=model.context_length,
            device=describe_device(model),
        )

    def _restore(self, previous: Candidate | None, problem: str) -> None:
        """After a failed load: serve the previous model again, if there was one and it loads."""
        if previous is not None:
            try:
                previous.model.load()
                self._current = previous
            except Exception as error:
                problem += f"; reloading {previous.model.alias} failed too: {error}"
        self._settle_companion()
        self._refuse(problem)

    def _refuse(self, problem: str) -> None:
        """A switch that failed: the current model goes on being served, if there is one."""
        if self._current is None:
            self._no_model(problem)
        else:
            self.publish(state=RuntimeState.READY, message=problem)

    def _forget(self, candidate: Candidate) -> None:
        from foundry_local_sdk import CatalogType

        try:
            self._manager.get_catalog(CatalogType.LOCAL).unregister_model(candidate.model.id)
        except Exception:
            log.warning("could not unregister %s", candidate.model.id, exc_info=True)

    def _download(self, model: Any) -> bool:
        self.publish(
            state=RuntimeState.DOWNLOADING,
            progress=0.0,
            message=f"Downloading {model.alias}",
            download_alias=model.alias,
            download_size_mb=model.info.file_size_mb,
        )
        shown = [0.0]

        def progress(percent: float) -> None:
            percent = round(max(0.0, min(100.0, percent)), 1)
            if percent - shown[0] >= 0.5 or percent == 100.0:  # a file write per half percent at most
                shown[0] = percent
                self.publish(progress=percent)

        try:
            model.download(progress_callback=progress, cancel_event=self._stop)
        except Exception as error:
            if self._stop.is_set():
                return False
            self._refuse(
                f"Download of {model.alias} failed: {error}. Check the connection and try again; "
                "what was downloaded is kept."
            )
            return False
        return True

    def _base_url(self, candidate: Candidate) -> str:
        with self._status_lock:
            service_url = self._status.service_url
        return f"{service_url}/catalogs/local/v1" if candidate.local else f"{service_url}/v1"

    # -- the companion --------------------------------------------------------------------------

    def load_companion(self, name: str) -> None:
        """Hold `name` (alias, id or folder) beside the chat model, in place of the previous
        companion. Raises at once if it is unknown, not downloaded, or there is no chat model;
        loads in the background. Never downloads: choosing a model as the chat model does."""
        candidate = self._claim_model(name)
        current = self._current
        if current is None:
            self._switch_lock.release()
            raise NotNow("No chat model is served yet: choose one first; the companion answers beside it.")
        if not candidate.model.is_cached:
            self._switch_lock.release()
            alias = candidate.model.alias
            raise ModelUnusable(
                f"{alias} is not downloaded: download it first by choosing it as the chat model."
            )
        # Published before the answer: the caller waits for a settled state newer than this one.
        self.publish(
            companion_state=CompanionState.LOADING,
            companion_message=f"Loading {candidate.model.alias} beside {current.model.alias}",
        )
        self._in_background(self._replace_companion, candidate)

    def release_companion(self) -> None:
        """Let the companion go: unloaded, unless the chat model or the embedding model is it."""
        self._claim()
        if self._companion is None:
            self.publish(**no_companion())
            self._switch_lock.release()
            return
        self.publish(companion_message=f"Releasing {self._companion.model.alias}")
        self._in_background(self._release_companion)

    def companion_turn(self, which: str) -> None:
        """One at a time (`_apart`): load the chat model ("chat") or the companion ("companion")
        and unload the other, in the background.

        While the companion has its turn the chat model stays READY (it is the user's choice, and
        its turn comes back at once when asked), but a request to it fails ("Model not loaded");
        the status message says so."""
        self._claim()
        companion, current = self._companion, self._current
        if companion is None or current is None or not self._apart:
            self._switch_lock.release()
            raise NotNow(self._no_turns())
        to_companion = which == "companion"
        if to_companion == self._companion_turn:
            self.publish(companion_state=CompanionState.ONE_AT_A_TIME)
            self._switch_lock.release()
            return
        incoming, outgoing = (companion, current) if to_companion else (current, companion)
        self.publish(
            companion_state=CompanionState.LOADING,
            companion_message=f"Loading {incoming.model.alias} in place of {outgoing.model.alias}",
        )
        self._in_background(self._take_turn, to_companion)

    def _no_turns(self) -> str:
        """Why there are no turns to take."""
        if self._companion is None or self._current is None:
            return "There is no companion model: choose one first."
        return (
            f"{self._companion.model.alias} and {self._current.model.alias} are loaded together: "
            "both answer at once, there are no turns to take."
        )

    def _replace_companion(self, candidate: Candidate) -> None:
        self._drop_companion()
        self._place_companion(candidate)

    def _release_companion(self) -> None:
        self._drop_companion()
        self.publish(**no_companion())

    def _drop_companion(self) -> None:
        """Forget the companion: unloaded unless another role has it; if it had its turn, the chat
        model is loaded again."""
        previous, had_turn = self._companion, self._companion_turn
        self._companion, self._apart, self._companion_turn = None, "", False
        if previous is not None:
            self._unload_unused(previous)
        current = self._current
        if not had_turn or current is None:
            return
        try:
            current.model.load()
        except Exception as error:
            self._current = None
            self._no_model(f"Could not load {current.model.alias} again: {error}")
            return
        self.publish(message=f"{current.model.alias} is ready")

    def _place_companion(self, candidate: Candidate) -> None:
        """Load `candidate` beside the chat model when the memory holds both, else take turns;
        nothing to load when it is the chat model."""
        current = self._current
        if current is not None and candidate.model.id == current.model.id:
            self._companion = candidate
            self._publish_companion(candidate)
            return
        too_big = self._too_big_beside(candidate)
        if too_big:
            self._companion, self._apart = candidate, too_big
            self._publish_turn()
            return
        try:
            candidate.model.load()
        except Exception as error:
            if candidate.registered:  # a folder that does not load is not offered again
                self._forget(candidate)
            problem = f"Could not load {candidate.model.alias}: {error}"
            self.publish(**{**no_companion(problem), "companion_state": CompanionState.FAILED})
            return
        self._companion = candidate
        self._publish_companion(candidate)

    def _settle_companion(self) -> None:
        """After a switch of the chat model: the companion stays. Loaded, it goes on answering
        beside the new chat model; one at a time, it was unloaded, and may fit beside this one."""
        companion = self._companion
        if companion is None:
            return
        if self._apart:
            self._companion, self._apart = None, ""
            self._place_companion(companion)
        else:
            self._publish_companion(companion)

    def _take_turn(self, to_companion: bool) -> None:
        companion, current = self._companion, self._current
        if companion is None or current is None:
            return
        incoming, outgoing = (companion, current) if to_companion else (current, companion)
        self._companion_turn = to_companion
        try:
            self._unload_unused(outgoing)  # first: both do not fit
            incoming.model.load()
        except Exception as error:
            self._companion_turn = not to_companion
            problem = f"Could not load {incoming.model.alias}: {error}"
            try:
                outgoing.model.load()
            except Exception as again:
                problem += f"; reloading {outgoing.model.alias} failed too: {again}"
            self.publish(companion_state=CompanionState.ONE_AT_A_TIME, companion_message=problem)
            return
        chat = current.model.alias
        # The chat model stays READY (see `companion_turn`); its message says whether it waits.
        waits = f"{chat} waits while {companion.model.alias} has its turn"
        self._publish_turn(message=waits if to_companion else f"{chat} is ready")

    def _publish_turn(self, **changes: Any) -> None:
        """One at a time: why, and whose turn it is (with `changes` to the chat model's status)."""
        companion, current = self._companion, self._current
        if companion is None or current is None:
            return
        chat, other = current.model.alias, companion.model.alias
        waiting, answering = (chat, other) if self._companion_turn else (other, chat)
        self.publish(
            companion_state=CompanionState.ONE_AT_A_TIME,
            companion_message=f"{self._apart} Now {answering} answers; {waiting} waits its turn.",
            **self._companion_fields(companion),
            **changes,
        )

    def _publish_companion(self, companion: Candidate) -> None:
        """The companion answers at once: beside the chat model, or as the chat model itself."""
        alias = companion.model.alias
        if self._current is not None and self._current.model.id == companion.model.id:
            message = f"{alias} is the chat model too: it answers as both."
        else:
            chat = self._current.model.alias if self._current else "the chat model"
            message = f"{alias} is loaded beside {chat}: both answer at once."
        self.publish(
            companion_state=CompanionState.READY,
            companion_message=message,
            **self._companion_fields(companion),
        )

    def _companion_fields(self, companion: Candidate) -> dict[str, Any]:
        model = companion.model
        return {
            "companion_model_id": model.id,
            "companion_alias": model.alias,
            "companion_base_url": self._base_url(companion),
            "companion_context_length": model.context_length,
            "companion_device": describe_device(model),
        }

    def _too_big_beside(self, candidate: Candidate) -> str:
        """Why `candidate` cannot be loaded beside the chat model (its files, with a margin, do
        not fit in the free memory), or "" when it can or its size is not known."""
        files = model_bytes(candidate.model)
        if files is None:
            return ""
        need, free = int(files * MEMORY_MARGIN), self._free_bytes()
        if need <= free:
            return ""
        alias = candidate.model.alias
        chat = self._current.model.alias if self._current else "the chat model"
        return (
            f"{alias} and {chat} do not fit in memory together ({alias} needs about "
            f"{-(-need // MB)} MB, {free // MB} MB are free): they answer one after the other."
        )

    def _free_bytes(self) -> int:
        """The memory free for another model: what the system has available now, or, with
        `memory_mb`, that budget less what the loaded models take."""
        if self.options.memory_mb is None:
            return int(psutil.virtual_memory().available)
        loaded = {c.model.id: c.model for c in (self._current, self._embedder) if c is not None}
        used = sum(model_bytes(model) or 0 for model in loaded.values())
        return max(0, self.options.memory_mb * MB - used)

    def _in_use(self) -> set[str]:
        """The ids of the models that must stay loaded: the chat model (unless the companion has
        its turn), the companion (unless it waits for its turn) and the embedding model."""
        kept = [self._embedder]
        if not self._companion_turn:
            kept.append(self._current)
        if not self._apart or self._companion_turn:
            kept.append(self._companion)
        return {candidate.model.id for candidate in kept if candidate is not None}

    def _unload_unused(self, candidate: Candidate) -> None:
        """Unload `candidate` unless a role still has it (`_in_use`); one model object may be the
        chat model, the companion and the embedding model at once."""
        if candidate.model.id not in self._in_use():
            unload(candidate.model)


def parse_args(argv: Sequence[str]) -> HostOptions:
    parser = argparse.ArgumentParser(prog=f"{APP_NAME} runtime-host")
    parser.add_argument("--status-file", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--model-path", type=Path)
    parser.add_argument("--model-cache-dir", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--log-dir", type=Path, required=True)
    parser.add_argument("--no-download", dest="allow_download", action="store_false")
    parser.add_argument("--ask-before-download", action="store_true")
    parser.add_argument("--offline", action="store_true")
    parser.add_argument("--embedding-model")
    parser.add_argument("--memory-mb", type=int)
    parser.add_argument("--log-level", choices=sorted(SDK_LOG_LEVELS), default="info")
    args = parser.parse_args(argv)
    return HostOptions(**vars(args))


def main(argv: Sequence[str]) -> int:
    """Entry point of the `runtime-host` mode."""
    options = parse_args(argv)
    logging.basicConfig(
        level=options.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    secret = RunSecret.from_env(os.environ)
    if secret is None:
        print(f"{APP_NAME} runtime-host: no {SECRET_ENV}; start the app instead.", file=sys.stderr)
        return 2
    compat.exit_with_parent(os.getppid(), stop.set)
    host = RuntimeHost(options, stop, secret)
    try:
        return host.run()
    finally:
        host.close()
