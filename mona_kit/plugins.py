"""Plugin loading: first-party plugins by import path, third-party ones by entry point.

``MONA_KIT_PLUGINS`` limits third-party loading: unset loads every plugin of the
``mona_kit`` entry-point group; ``none`` (or empty) loads none; a comma-separated
list of entry-point names loads only those; ``none`` together with names is an error.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
from collections.abc import Iterable

import attrs
import pluggy

from . import hookspecs
from .errors import PluginError

ENTRY_POINT_GROUP = "mona_kit"
ENV_VAR = "MONA_KIT_PLUGINS"

#: First-party plugins, each a module a third party could have written.
BUILTIN_PLUGINS = (
    "mona_plugins.backbones",
    "mona_plugins.embedders",
    "mona_plugins.objectives",
    "mona_plugins.datasets",
    "mona_plugins.metrics",
    "mona_plugins.methods",
    "mona_plugins.loggers",
)


@attrs.frozen(kw_only=True)
class PluginInfo:
    name: str
    distribution: str
    version: str
    builtin: bool
    module: str
    loaded: bool = True  #: False: installed, but left out by MONA_KIT_PLUGINS


def _core_version() -> str:
    try:
        return md.version("mona-kit")
    except md.PackageNotFoundError:
        return "0+unknown"


def allowed_entry_points(env: str | None) -> set[str] | None:
    """None means every entry point; a set limits loading to those names."""
    if env is None:
        return None
    names = {n.strip() for n in env.split(",") if n.strip()}
    if "none" in names and len(names) > 1:  # 'none' means no plugin: with names too, one of the two is a mistake
        others = ",".join(sorted(names - {"none"}))
        raise PluginError(
            f"{ENV_VAR}={env!r} mixes 'none' (no third-party plugin) with plugin names; set {ENV_VAR}=none to load "
            f"none, or {ENV_VAR}={others} to load only those."
        )
    return set() if names <= {"none"} else names


def check_filter(allowed: set[str] | None, installed: list[str]) -> None:
    """A name in ``MONA_KIT_PLUGINS`` that no installed entry point has is a typo, not a silent no-op."""
    if not allowed:
        return
    unknown = sorted(allowed - set(installed) - {"none"})
    if unknown:
        from .errors import did_you_mean

        raise PluginError(
            f"{ENV_VAR} names {', '.join(repr(u) for u in unknown)}, which no installed plugin provides."
            f"{did_you_mean(unknown[0], installed)} Installed entry points: {', '.join(sorted(installed)) or 'none'}; "
            f"{ENV_VAR}=none loads no third-party plugin."
        )


def make_plugin_manager(
    builtins: Iterable[str] = BUILTIN_PLUGINS,
    *,
    entry_points: bool = True,
    extra: Iterable[object] = (),
) -> tuple[pluggy.PluginManager, dict[str, PluginInfo]]:
    """A fresh plugin manager with the given plugins registered, and who they are."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    version = _core_version()
    for path in builtins:
        try:
            module = importlib.import_module(path)
        except Exception as exc:  # a broken first-party plugin is our bug, but say which
            raise PluginError(f"built-in plugin {path} failed to import: {type(exc).__name__}: {exc}") from exc
        _register(pm, module, path)
        infos[path] = PluginInfo(name=path, distribution="mona-kit", version=version, builtin=True, module=path)
    if entry_points:
        allowed = allowed_entry_points(os.environ.get(ENV_VAR))
        installed = list(md.entry_points(group=ENTRY_POINT_GROUP))
        check_filter(allowed, [ep.name for ep in installed])
        for ep in installed:
            dist = ep.dist.name if ep.dist is not None else "unknown"
            dist_version = ep.dist.version if ep.dist is not None else "unknown"
            if allowed is not None and ep.name not in allowed:
                # Recorded (not loaded) so messages can say a name may come from a plugin left out.
                infos[ep.name] = PluginInfo(name=ep.name, distribution=dist, version=dist_version, builtin=False,
                                            module=ep.value, loaded=False)
                continue
            try:
                module = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"entry point {ep.name!r} (module {ep.value}, distribution {dist} {dist_version}) failed to "
                    f"load: {type(exc).__name__}: {exc}. Fix or uninstall it ('pip uninstall {dist}'), or set "
                    f"{ENV_VAR}=none to skip third-party plugins."
                ) from exc
            _register(pm, module, ep.name)
            infos[ep.name] = PluginInfo(
                name=ep.name, distribution=dist, version=dist_version, builtin=False, module=ep.value
            )
    for i, plugin in enumerate(extra):
        name = getattr(plugin, "__name__", f"extra-{i}")
        _register(pm, plugin, name)
        infos[name] = PluginInfo(name=name, distribution="(in-process)", version=version, builtin=False, module=name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"{exc} Check the hook name against 'mona-kit hooks'.") from exc
    return pm, infos


def _register(pm: pluggy.PluginManager, module: object, name: str) -> None:
    try:
        pm.register(module, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {name!r} has an invalid hook: {exc}") from exc
    except ValueError as exc:  # registered twice
        raise PluginError(f"plugin {name!r} is installed twice: {exc}") from exc
