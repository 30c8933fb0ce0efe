"""The runtime host's own small HTTP API on 127.0.0.1, beside the runtime's OpenAI endpoint.

GET  /health          200 while the host and its web service answer, else 503
GET  /status          the published RuntimeStatus
GET  /models          models that can be served now: [{id, alias, source, cached, loaded,
                      companion}] (`loaded`: the chat model)
POST /models/select   {"model": alias-id-or-folder} -> 202 and the switch runs (a catalog model
                      that is not downloaded is downloaded); 404 if unknown, 422 if unusable
POST /models/companion
                      {"model": alias-id-or-folder} -> 202 and a second chat model, the
                      companion, is loaded beside the chat model (to compare answers), or, when
                      memory does not hold both, they take turns (`companion_state`); it
                      replaces the previous companion. Never downloaded: 422 for a catalog model
                      that is not downloaded, 404 if unknown, 409 without a chat model
POST /models/companion/release
                      {} -> 202: the companion is unloaded (unless the chat model or the
                      embedding model is the same), and the chat model is loaded again if the
                      companion had its turn
POST /models/companion/turn
                      {"model": "chat" or "companion"} -> 202: with one at a time, that one is
                      loaded and the other unloaded (at the companion's turn the chat model
                      stays READY, but a request to it gets 400 "Model not loaded"); 409 when
                      both are loaded together. A switch of the chat model ends a turn too
POST /catalog/retry   {} -> 202: with no model served, the catalog is asked again (back online?)
                      and the host's model looked for again
POST /offline-catalog/asset-gallery/v1.0/models
                      404: the runtime's catalog when it must not ask the public one (offline
                      mode, downloads off): no models, so the runtime reads what is on its disk
                      at once, with no network and no retries

A request that needs the switch lock while a model is being prepared gets 409 (SwitchInProgress).

Only requests addressed to a loopback host name are served (no DNS rebinding); every route but
/health needs the run's secret (`Authorization: Bearer`, see `runsecret`): another program or
account on the machine gets 401. A POST must be JSON (a web page cannot send that cross-origin
without a CORS preflight, which is never granted).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol

from desktop.errors import FoundryDeskError
from desktop.loopback import addressed_to_loopback
from desktop.ports import LoopbackHTTPServer, serve_http
from desktop.runsecret import RunSecret

OFFLINE_CATALOG = "/offline-catalog/asset-gallery/v1.0/models"
"""The catalog the runtime asks when the public one is off (the path must end as a catalog's does)."""


class ModelNotFound(FoundryDeskError, LookupError):
    """The requested model is neither registered, cached, nor in the (reachable) catalog."""


class ModelUnusable(FoundryDeskError, ValueError):
    """The request names a model the runtime cannot use (e.g. a folder it cannot register)."""


class SwitchInProgress(FoundryDeskError, RuntimeError):
    """A model is being downloaded or loaded; one switch at a time."""


class NotNow(FoundryDeskError, RuntimeError):
    """The request does not apply to what the runtime holds now (e.g. a turn while both models
    are loaded together, a companion with no chat model)."""


class Controllable(Protocol):
    """What the control API needs from the runtime host."""

    def healthy(self) -> bool: ...

    def status_json(self) -> dict[str, Any]: ...

    def list_models(self) -> list[dict[str, Any]]: ...

    def select_model(self, model: str) -> None: ...

    def retry_catalog(self) -> None: ...

    def load_companion(self, model: str) -> None: ...

    def release_companion(self) -> None: ...

    def companion_turn(self, which: str) -> None: ...


def send_json(handler: BaseHTTPRequestHandler, status: HTTPStatus, body: Any) -> None:
    """Answer a request of `handler`'s with `body` as JSON (the host's servers all answer so)."""
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def serve_control(host: Controllable, secret: RunSecret) -> LoopbackHTTPServer:
    """Start the control API on a free port of 127.0.0.1 in a daemon thread; returns the server."""
    return serve_http(0, _handler_for(host, secret), "control-api")


def _handler_for(host: Controllable, secret: RunSecret) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if not self._from_loopback_name():
                return
            if self.path == "/health":
                ok = host.healthy()
                self._reply(HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE, {"ok": ok})
            elif not self._from_the_user():
                return
            elif self.path == "/status":
                self._reply(HTTPStatus.OK, host.status_json())
            elif self.path == "/models":
                self._reply(HTTPStatus.OK, {"data": host.list_models()})
            else:
                self._reply(HTTPStatus.NOT_FOUND, {"error": f"no route {self.path}"})

        def do_POST(self) -> None:
            if self.path == OFFLINE_CATALOG:  # asked by the runtime itself, which has no secret
                self._reply(HTTPStatus.NOT_FOUND, {"error": "offline mode: no catalog"})
                return
            if not (self._from_loopback_name() and self._from_the_user()):
                return
            action = self._actions().get(self.path)
            if action is None:
                self._reply(HTTPStatus.NOT_FOUND, {"error": f"no route {self.path}"})
                return
            if self.headers.get_content_type() != "application/json":
                self._reply(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "send application/json"})
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                body = None
            if not isinstance(body, dict):
                self._reply(HTTPStatus.BAD_REQUEST, {"error": "send a JSON object"})
            else:
                action(body.get("model"))

        def _actions(self) -> dict[str, Callable[[object], None]]:
            """The POST routes, each given the request's "model"."""
            return {
                "/models/select": lambda model: self._named(model, host.select_model),
                "/catalog/retry": lambda _: self._act(host.retry_catalog),
                "/models/companion": lambda model: self._named(model, host.load_companion),
                "/models/companion/release": lambda _: self._act(host.release_companion),
                "/models/companion/turn": self._turn,
            }

        def _named(self, model: object, action: Callable[[str], None]) -> None:
            if not isinstance(model, str) or not model.strip():
                self._reply(HTTPStatus.BAD_REQUEST, {"error": 'send {"model": "<alias or id>"}'})
                return
            self._act(lambda: action(model.strip()))

        def _turn(self, which: object) -> None:
            if which not in ("chat", "companion"):
                self._reply(
                    HTTPStatus.BAD_REQUEST, {"error": 'send {"model": "chat"} or {"model": "companion"}'}
                )
                return
            self._act(lambda: host.companion_turn(str(which)))

        def _act(self, action: Callable[[], None]) -> None:
            """Start `action`; 202 and the status, or the refusal's status and message."""
            try:
                action()
            except ModelNotFound as error:
                self._reply(HTTPStatus.NOT_FOUND, {"error": str(error)})
            except ModelUnusable as error:
                self._reply(HTTPStatus.UNPROCESSABLE_ENTITY, {"error": str(error)})
            except (SwitchInProgress, NotNow) as error:
                self._reply(HTTPStatus.CONFLICT, {"error": str(error)})
            else:
                self._reply(HTTPStatus.ACCEPTED, host.status_json())

        def _from_loopback_name(self) -> bool:
            if addressed_to_loopback(self.headers.get("Host")):
                return True
            self._reply(HTTPStatus.FORBIDDEN, {"error": "only 127.0.0.1 / localhost is served"})
            return False

        def _from_the_user(self) -> bool:
            if secret.accepts_authorization(self.headers.get("Authorization")):
                return True
            self._reply(HTTPStatus.UNAUTHORIZED, {"error": "send the run's secret (Authorization: Bearer)"})
            return False

        def _reply(self, status: HTTPStatus, body: Any) -> None:
            send_json(self, status, body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
