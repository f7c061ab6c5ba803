"""One small registry class that serves every kind of component (DESIGN.md: "a registry per kind").

A technique registers itself in its own file with a decorator that carries its metadata::

    OPTIMIZERS = Registry("optimizer")

    @OPTIMIZERS.register("adabound", catalog_id="1902.09843", needs_closure=False)
    class AdaBound(torch.optim.Optimizer): ...

    OPTIMIZERS.create("adabound", params, lr=1e-3)

Names are case-insensitive and ``-``/``_`` are interchangeable. Unknown names fail with a
ValueError that lists close matches. The metadata drives CLI listings and shared tests.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_")


@dataclass(frozen=True)
class Entry:
    """A registered component: its canonical name, the object, and its metadata."""

    name: str
    obj: Any
    catalog_id: str | None = None
    aliases: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def dotted_path(self) -> str:
        return f"{self.obj.__module__}.{self.obj.__qualname__}"


class Registry:
    """Name -> component mapping with metadata, used for optimizers, layers, models, data, ..."""

    def __init__(self, kind: str, discover: str | None = None) -> None:
        """``discover``: a package whose public modules are imported on the first lookup, so
        techniques register themselves by existing in their own file (no central list to edit)."""
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        self._lookup: dict[str, str] = {}
        self._discover_package = discover

    def _discover(self) -> None:
        package_name, self._discover_package = self._discover_package, None
        if package_name is None:
            return
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            if not any(part.startswith("_") for part in info.name.split(".")):
                importlib.import_module(info.name)

    def register(
        self,
        name: str,
        *,
        catalog_id: str | None = None,
        aliases: tuple[str, ...] | list[str] = (),
        **meta: Any,
    ) -> Callable[[Any], Any]:
        """Decorator registering a class or factory under ``name`` (and ``aliases``)."""

        def decorator(obj: Any) -> Any:
            self.add(name, obj, catalog_id=catalog_id, aliases=aliases, **meta)
            return obj

        return decorator

    def add(
        self,
        name: str,
        obj: Any,
        *,
        catalog_id: str | None = None,
        aliases: tuple[str, ...] | list[str] = (),
        **meta: Any,
    ) -> Entry:
        """Register ``obj`` directly (for objects defined elsewhere, e.g. torch.optim classes)."""
        entry = Entry(name=name, obj=obj, catalog_id=catalog_id, aliases=tuple(aliases), meta=meta)
        for key in (name, *entry.aliases):
            norm = _normalise(key)
            owner = self._lookup.get(norm)
            if owner is not None and self._entries[owner].obj is not obj:
                raise ValueError(f"{self.kind} name {key!r} is already registered to {owner!r}")
            self._lookup[norm] = name
        self._entries[name] = entry
        return entry

    def entry(self, name: str) -> Entry:
        self._discover()
        if not isinstance(name, str):
            raise TypeError(f"{self.kind} name must be a string, got {type(name).__name__}")
        key = self._lookup.get(_normalise(name))
        if key is None:
            close = difflib.get_close_matches(_normalise(name), list(self._lookup), n=3)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(
                f"unknown {self.kind} {name!r}{hint} (known: {', '.join(sorted(self._entries))})"
            )
        return self._entries[key]

    def get(self, name: str) -> Any:
        return self.entry(name).obj

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.get(name)(*args, **kwargs)

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]

    def find_object(self, attribute: str) -> Any:
        """The registered object named ``attribute`` (for lazy package re-exports)."""
        for entry in self.entries():
            if getattr(entry.obj, "__name__", None) == attribute:
                return entry.obj
        raise AttributeError(attribute)

    def by_catalog_id(self, catalog_id: str) -> list[Entry]:
        return [e for e in self.entries() if e.catalog_id == catalog_id]

    def __contains__(self, name: object) -> bool:
        self._discover()
        return isinstance(name, str) and _normalise(name) in self._lookup

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._discover()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"
