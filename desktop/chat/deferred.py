"""Deferred imports for the chat server's start: modules Chainlit imports but the chat never uses.

Chainlit imports, at module level, clients it only uses with features this app turns off:
LiteralAI's cloud client and with it Traceloop's SDK (an OpenTelemetry tracer with
instrumentations for a dozen AI libraries; 1.4 s on a 2-core laptop), the MCP client (MCP is off
in our config), and Socket.IO's and Engine.IO's clients (Chainlit is only a server). Importing
them was over half of the chat server's start. `defer` puts a stand-in module in the place of
each; the real one is imported the first time anything in it is used, so a Chainlit that does
use one still works, only slower. Which they are, and which names Chainlit takes from them, is
`chainlit_compat.UNUSED_IMPORTS`.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Iterable, Mapping
from typing import Any


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
        if attribute.startswith("__") and attribute.endswith("__"):
            # Introspection (typing looks for __origin__ and the like in annotations) must not
            # import the module.
            raise AttributeError(attribute)
        return getattr(self.resolve(), attribute)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)


class DeferredModule(types.ModuleType):
    """A stand-in module whose names are `DeferredName`s."""


def defer(modules: Mapping[str, Iterable[str]]) -> list[str]:
    """Put stand-ins for `modules` (installed, not yet imported) in sys.modules; returns which
    were deferred. A package's stand-in keeps its path, so its submodules still import."""
    deferred = []
    for module, names in modules.items():
        spec = None if module in sys.modules else find_spec(module)
        if spec is None:
            continue
        stand_in = DeferredModule(module, f"deferred import of {module}")
        if spec.submodule_search_locations is not None:
            stand_in.__path__ = list(spec.submodule_search_locations)
        for name in names:
            setattr(stand_in, name, DeferredName(module, name))
        sys.modules[module] = stand_in
        deferred.append(module)
    return deferred


def find_spec(module: str) -> importlib.machinery.ModuleSpec | None:
    """Where `module` is, without importing its parent packages (importlib.util.find_spec
    would run them, and with them the very submodules to defer)."""
    parent, _, _ = module.rpartition(".")
    if not parent:
        return importlib.util.find_spec(module)
    loaded = sys.modules.get(parent)
    parent_spec = loaded.__spec__ if loaded is not None else find_spec(parent)
    if parent_spec is None or parent_spec.submodule_search_locations is None:
        return None
    return importlib.machinery.PathFinder.find_spec(module, list(parent_spec.submodule_search_locations))
