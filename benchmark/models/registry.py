"""Name -> factory registries for the pluggable model parts: backbones and classification heads.

One registry per kind (DESIGN.md, convention 3; the pattern of timm ``_registry.py``): a decorator
registers a factory under a name, registering a name twice is an error, and ``create_<kind>(name, **kw)``
builds one. Tests are parametrized over :meth:`Registry.names`, so every entry gets forward, backward
and shape checks.

The modules that hold the entries are imported on first use (``modules``), so importing this file
(or ``benchmark.models``) does not import torch or timm.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class Registry:
    """Factories of one kind, by name.

    kind:    what the entries are, used in error messages ("backbone", "head").
    modules: dotted module names whose import registers the entries; imported on first lookup.
    """

    def __init__(self, kind: str, modules: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._modules = modules
        self._loaded = not modules
        self._factories: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator: register ``factory`` under ``name``; a name already taken raises ValueError."""

        def decorate(factory: F) -> F:
            if name in self._factories:
                raise ValueError(
                    f"{self.kind} '{name}' is already registered (by {self._factories[name].__qualname__})"
                )
            self._factories[name] = factory
            return factory

        return decorate

    def names(self) -> list[str]:
        """Registered names, sorted."""
        self._load()
        return sorted(self._factories)

    def get(self, name: str) -> Callable[..., Any]:
        """The factory registered as ``name``; an unknown name raises KeyError listing the known ones."""
        self._load()
        if name not in self._factories:
            raise KeyError(f"unknown {self.kind} '{name}'; known {self.kind}s: {', '.join(sorted(self._factories))}")
        return self._factories[name]

    def create(self, name: str, **kwargs: Any) -> Any:
        """Build the entry ``name`` with keyword arguments ``kwargs``."""
        return self.get(name)(**kwargs)

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._modules:
                importlib.import_module(module)


BACKBONES = Registry("backbone", modules=("benchmark.models.backbones", "benchmark.models.autoencoder",
                                          "benchmark.models.facenet"))
HEADS = Registry("head", modules=("benchmark.models.heads",))


def create_backbone(name: str, **kwargs: Any) -> Any:
    """Build backbone ``name`` (see :data:`BACKBONES`): a module mapping float32 NCHW to (N, num_features)."""
    return BACKBONES.create(name, **kwargs)


def create_head(name: str, **kwargs: Any) -> Any:
    """Build head ``name`` (see :data:`HEADS`) with ``embedding_dim`` and ``num_classes``."""
    return HEADS.create(name, **kwargs)
