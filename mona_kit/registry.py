"""Registries: named component factories, each entry knowing who provided it."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from .errors import ConfigError, MonaError, PluginError, UnknownNameError, did_you_mean

NAME_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")

#: Registry kinds, in the order the CLI lists them. ``heads`` are registered
#: through ``register_embedders`` (role="head") but live in their own registry.
KINDS = ("backbones", "embedders", "heads", "objectives", "datasets", "methods", "metrics", "commands", "loggers")


@attrs.frozen(kw_only=True)
class Provider:
    """The plugin that registered an entry."""

    plugin: str
    distribution: str
    version: str

    def __str__(self) -> str:
        return f"{self.plugin} ({self.distribution} {self.version})"


@attrs.frozen(kw_only=True)
class Entry:
    """One registered component: a factory plus what a user needs to know about it."""

    name: str
    kind: str
    factory: Callable[..., Any]
    provider: Provider
    config: type | None = None
    summary: str = ""
    meta: dict[str, Any] = attrs.field(factory=dict)

    def make_config(self, options: dict[str, Any] | None = None):
        """Validate ``options`` against this entry's config class."""
        from .config import build_config

        return build_config(self.config, options or {}, where=f"{self.kind[:-1]} {self.name!r}")

    def build(self, options: dict[str, Any] | None = None, **context):
        """Build the component from plain options (validated) and build-time context; a factory that
        returns the wrong type is a one-line error naming the plugin, from every verb that builds."""
        config = self.make_config(options)
        built = self.factory(config, **context) if config is not None else self.factory(**context)
        check_built(self, built)
        return built


#: What a factory must return: kind (objectives: role) -> (module, class name).
RESULT_TYPES = {
    "backbones": ("mona_kit.components", "Backbone"),
    "embedders": ("mona_kit.components", "Embedder"),
    "heads": ("mona_kit.components", "Head"),
    "datasets": ("mona_kit.components", "TaskData"),
    "methods": ("mona_kit.stages", "Method"),
    "distance": ("mona_kit.components", "DistanceObjective"),
    "representation": ("mona_kit.components", "RepresentationObjective"),
    "task-loss": ("torch.nn", "Module"),
}


def check_built(entry: Entry, built: Any) -> None:
    """Refuse a factory result of the wrong type (``'dict' object has no attribute 'spec'`` later on)."""
    import importlib

    key = str(entry.meta.get("role")) if entry.kind == "objectives" else entry.kind
    where = RESULT_TYPES.get(key)
    if where is None:
        return
    expected = getattr(importlib.import_module(where[0]), where[1])
    if not isinstance(built, expected):
        raise PluginError(
            f"{entry.kind[:-1]} {entry.name!r} ({entry.provider}) returned {type(built).__name__}, not "
            f"{'an' if where[1][0] in 'AEIOU' else 'a'} {where[1]}; fix the plugin."
        )


class Registry:
    """Named entries of one kind. A value owned by a :class:`~mona_kit.kit.Kit`."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        self._resolvers: dict[str, tuple[Callable[[str], Entry], Provider, str]] = {}

    def add(self, entry: Entry, *, replace: bool = False) -> None:
        if not NAME_PATTERN.match(entry.name):
            raise MonaError(
                f"{entry.provider.plugin} registers {self.kind[:-1]} {entry.name!r}: names are lower-kebab-case "
                f"(like 'my-model-2'); rename it in the plugin."
            )
        old = self._entries.get(entry.name)
        if old is not None and not replace:
            raise MonaError(
                f"{self.kind[:-1]} {entry.name!r} is registered twice: by {old.provider} and by {entry.provider}; "
                f"rename one, or pass replace=True in the plugin that should win."
            )
        self._entries[entry.name] = entry

    def add_resolver(self, prefix: str, resolve: Callable[[str], Entry], provider: Provider, summary: str) -> None:
        """Names of the form ``prefix:rest`` (a path, a timm architecture) are built on demand."""
        if prefix in self._resolvers:
            raise MonaError(
                f"{self.kind[:-1]} prefix '{prefix}:' is registered twice: by {self._resolvers[prefix][1]} "
                f"and by {provider}; rename one."
            )
        self._resolvers[prefix] = (resolve, provider, summary)

    def prefixes(self) -> dict[str, tuple[Provider, str]]:
        """prefix -> (provider, summary), for listings."""
        return {p: (prov, summary) for p, (_, prov, summary) in self._resolvers.items()}

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def list(self, pattern: str = "*") -> list[Entry]:
        return [e for e in self if fnmatch.fnmatchcase(e.name, pattern)]

    def get(self, name: str) -> Entry:
        if name in self._entries:
            return self._entries[name]
        prefix, sep, rest = name.partition(":")
        if sep:
            if prefix in self._resolvers:
                if not rest.strip():  # 'hf:' alone would resolve to an entry for the path ''
                    raise ConfigError(
                        f"{self.kind[:-1]} {name!r} lacks the id after the colon; write {prefix}:ID "
                        f"('mona-kit list {self.kind}' shows what {prefix}: takes)."
                    )
                return self._resolvers[prefix][0](rest)
        raise UnknownNameError(
            f"unknown {self.kind[:-1]} {name!r}.{did_you_mean(name, self.names() + [p + ':' for p in self._resolvers])} "
            f"Run 'mona-kit list {self.kind}' to see them all."
        )
