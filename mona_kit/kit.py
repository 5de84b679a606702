"""The kit: every registry, filled by calling each plugin's registration hooks.

A kit is a value. Build as many as you like (tests build a fresh one each):
nothing here is a module-global registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pluggy

from .errors import ConfigError, MonaError, PluginError, UnknownNameError, did_you_mean
from .plugins import BUILTIN_PLUGINS, PluginInfo, make_plugin_manager
from .registry import KINDS, Entry, Provider, Registry

OBJECTIVE_ROLES = ("distance", "representation", "task-loss")
EMBEDDER_ROLES = ("embedder", "head")

#: hook name -> the registry kind it fills (embedders fill two, by role).
HOOKS = {
    "register_backbones": "backbones",
    "register_embedders": "embedders",
    "register_objectives": "objectives",
    "register_datasets": "datasets",
    "register_methods": "methods",
    "register_metrics": "metrics",
    "register_commands": "commands",
    "register_loggers": "loggers",
}


class Registrar:
    """The ``register`` callback handed to one plugin's hook: validates and records provenance."""

    def __init__(self, kit: "Kit", hook: str, provider: Provider):
        self._kit = kit
        self._hook = hook
        self._provider = provider

    def _target(self, role: str | None) -> str:
        kind = HOOKS[self._hook]
        if kind == "embedders":
            role = role or "embedder"
            if role not in EMBEDDER_ROLES:
                raise PluginError(
                    f"{self._provider.plugin}: register_embedders role must be 'embedder' or 'head', got {role!r}."
                )
            return "heads" if role == "head" else "embedders"
        if kind == "objectives" and role not in OBJECTIVE_ROLES:
            raise PluginError(
                f"{self._provider.plugin}: an objective needs role= one of {', '.join(OBJECTIVE_ROLES)}, got {role!r}."
            )
        return kind

    def __call__(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        config: type | None = None,
        summary: str = "",
        replace: bool = False,
        role: str | None = None,
        **meta: Any,
    ) -> None:
        if not callable(factory):
            raise PluginError(
                f"{self._provider.plugin} registers {name!r} with a factory that is not callable "
                f"({type(factory).__name__}); pass a function or class."
            )
        kind = self._target(role)
        if role is not None:
            meta["role"] = role
        entry = Entry(
            name=name, kind=kind, factory=factory, provider=self._provider, config=config, summary=summary, meta=meta
        )
        self._kit.registries[kind].add(entry, replace=replace)

    def prefix(self, prefix: str, resolve: Callable[[str], dict], *, summary: str = "", role: str | None = None):
        """Resolve names ``prefix:rest`` on demand; ``resolve(rest)`` returns the keyword arguments
        of a registration (``factory``, ``config``, ``summary``, meta)."""
        kind = self._target(role)
        provider = self._provider

        def resolver(rest: str) -> Entry:
            spec = dict(resolve(rest))
            factory = spec.pop("factory")
            return Entry(
                name=f"{prefix}:{rest}",
                kind=kind,
                factory=factory,
                provider=provider,
                config=spec.pop("config", None),
                summary=spec.pop("summary", summary),
                meta=spec,
            )

        self._kit.registries[kind].add_resolver(prefix, resolver, provider, summary)


class CommandRegistrar(Registrar):
    """``register(name, configure, handler, *, summary="")`` for ``register_commands``."""

    def __call__(self, name: str, configure: Callable, handler: Callable, *, summary: str = "", replace: bool = False) -> None:
        if not callable(configure) or not callable(handler):
            raise PluginError(
                f"{self._provider.plugin} registers command {name!r}: configure(parser) and handler(args, kit) "
                f"must both be callable."
            )
        entry = Entry(
            name=name, kind="commands", factory=handler, provider=self._provider, summary=summary,
            meta={"configure": configure},
        )
        self._kit.registries["commands"].add(entry, replace=replace)


class Kit:
    """All registries, built from a plugin manager."""

    def __init__(self, pm: pluggy.PluginManager, plugins: dict[str, PluginInfo]):
        self.pm = pm
        self.plugins = plugins
        self.registries: dict[str, Registry] = {kind: Registry(kind) for kind in KINDS}
        for hook_name in HOOKS:
            hook = getattr(pm.hook, hook_name)
            # Call each plugin's impl with its own Registrar, so every entry knows its provider.
            for impl in hook.get_hookimpls():  # plugin registration order: built-ins first
                info = plugins.get(impl.plugin_name)
                provider = Provider(
                    plugin=impl.plugin_name,
                    distribution=info.distribution if info else "unknown",
                    version=info.version if info else "unknown",
                )
                registrar = (CommandRegistrar if hook_name == "register_commands" else Registrar)(self, hook_name, provider)
                kwargs = {arg: registrar for arg in impl.argnames}
                try:
                    impl.function(**kwargs)
                except MonaError:
                    raise
                except Exception as exc:
                    raise PluginError(
                        f"plugin {provider} raised in {hook_name}: {type(exc).__name__}: {exc}"
                    ) from exc

    # Shorthands -------------------------------------------------------------------------------
    def __getattr__(self, kind: str) -> Registry:
        registries = self.__dict__.get("registries", {})
        if kind in registries:
            return registries[kind]
        raise AttributeError(kind)

    def registry(self, kind: str) -> Registry:
        if kind not in self.registries:
            raise UnknownNameError(
                f"unknown component kind {kind!r}.{did_you_mean(kind, KINDS)} Kinds: {', '.join(KINDS)}."
            )
        return self.registries[kind]

    def build_objective(self, name: str, role: str, options: dict | None = None, *, purpose: str):
        """Build a registered objective, refusing one of another role (``purpose`` names the user)."""
        entry = self.objectives.get(name)
        if entry.meta.get("role") != role:
            raise ConfigError(
                f"objective {name!r} has role {entry.meta.get('role')!r}; {purpose} needs a {role} objective; "
                f"see 'mona-kit list objectives'."
            )
        return entry.build(dict(options or {}))

    def find(self, name: str) -> list[Entry]:
        """Every entry of any kind with this name (``describe`` uses it)."""
        found = []
        for reg in self.registries.values():
            try:
                found.append(reg.get(name))
            except UnknownNameError:
                pass
        if not found:
            everything = [n for reg in self.registries.values() for n in reg.names()]
            raise UnknownNameError(
                f"no component is named {name!r}.{did_you_mean(name, everything)} "
                f"Run 'mona-kit list KIND' (KIND: {', '.join(KINDS)}) to see them."
            )
        return found

    def contributions(self, plugin: str) -> dict[str, list[str]]:
        """kind -> names (and ``prefix:...`` forms) that one plugin registered."""
        out: dict[str, list[str]] = {}
        for kind, reg in self.registries.items():
            names = [e.name for e in reg if e.provider.plugin == plugin]
            names += [f"{p}:..." for p, (prov, _) in reg.prefixes().items() if prov.plugin == plugin]
            if names:
                out[kind] = names
        return out


def load_kit(
    builtins: Iterable[str] = BUILTIN_PLUGINS,
    *,
    entry_points: bool = True,
    extra: Iterable[object] = (),
) -> Kit:
    """Build a fresh kit: first-party plugins, then installed third-party ones, then ``extra``."""
    pm, infos = make_plugin_manager(builtins, entry_points=entry_points, extra=extra)
    return Kit(pm, infos)
