"""Deferred imports for the chat server's start: modules Chainlit imports but the chat never uses.

Chainlit imports LiteralAI's client for its types, and that client imports Traceloop's SDK (an
OpenTelemetry tracer with instrumentations for a dozen AI libraries) at module level. It is only
called to send traces to LiteralAI's cloud, which this app never does, yet importing it is about
a third of the chat server's start (1.4 s of 4 s on a 2-core laptop). `defer` puts a stand-in
module in its place; the real module is imported the first time anything in it is used, so a
future Chainlit that does use it still works, only slower.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Iterable, Mapping
from typing import Any

CHAINLIT_UNUSED: dict[str, tuple[str, ...]] = {"traceloop.sdk": ("Traceloop",)}
"""Module → the names Chainlit's imports take from it."""


class DeferredName:
    """Stands for `module.name` until first touched, then imports `module` for real."""

    def __init__(self, module: str, name: str) -> None:
        self._module = module
        self._name = name

    def resolve(self) -> Any:
        stand_in = sys.modules.get(self._module)
        if isinstance(stand_in, DeferredModule):
            del sys.modules[self._module]
        try:
            return getattr(importlib.import_module(self._module), self._name)
        except BaseException:
            if stand_in is not None:
                sys.modules.setdefault(self._module, stand_in)
            raise

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.resolve(), attribute)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)


class DeferredModule(types.ModuleType):
    """A stand-in module whose names are `DeferredName`s."""


def defer(modules: Mapping[str, Iterable[str]]) -> list[str]:
    """Put stand-ins for `modules` (not yet imported, and installed) in sys.modules; returns
    which were deferred."""
    deferred = []
    for module, names in modules.items():
        if module in sys.modules or importlib.util.find_spec(module) is None:
            continue
        stand_in = DeferredModule(module, f"deferred import of {module}")
        for name in names:
            setattr(stand_in, name, DeferredName(module, name))
        sys.modules[module] = stand_in
        deferred.append(module)
    return deferred
