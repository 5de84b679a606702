"""Plugin loading: first-party plugins by import path, third-party ones by entry point.

``MONA_KIT_PLUGINS`` limits third-party loading: unset loads every plugin of the
``mona_kit`` entry-point group; ``none`` (or empty) loads none; a comma-separated
list of entry-point names loads only those; ``none`` together with names is an error.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata as md
import inspect
import os
import types
from collections.abc import Iterable

import attrs
import pluggy

from . import hookspecs
from .errors import PluginError, did_you_mean

ENTRY_POINT_GROUP = "mona_kit"
ENV_VAR = "MONA_KIT_PLUGINS"
#: The distribution recorded for a plugin given to load_kit(extra=...).
IN_PROCESS = "(in-process)"

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
        info = PluginInfo(name=path, distribution="mona-kit", version=version, builtin=True, module=path)
        _register(pm, module, info, infos)
    if entry_points:
        allowed = allowed_entry_points(os.environ.get(ENV_VAR))
        installed = list(md.entry_points(group=ENTRY_POINT_GROUP))
        check_filter(allowed, [ep.name for ep in installed])
        for ep in installed:
            dist = ep.dist.name if ep.dist is not None else "unknown"
            dist_version = ep.dist.version if ep.dist is not None else "unknown"
            info = PluginInfo(name=ep.name, distribution=dist, version=dist_version, builtin=False, module=ep.value)
            if allowed is not None and ep.name not in allowed:
                # Recorded (not loaded) so messages can say a name may come from a plugin left out.
                infos[ep.name] = attrs.evolve(info, loaded=False)
                continue
            try:
                module = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"entry point {ep.name!r} (module {ep.value}, distribution {dist} {dist_version}) failed to "
                    f"load: {type(exc).__name__}: {exc}. Fix or uninstall it ('pip uninstall {dist}'), or set "
                    f"{ENV_VAR}=none to skip third-party plugins."
                ) from exc
            _register(pm, module, info, infos)
    for i, plugin in enumerate(extra):
        name = getattr(plugin, "__name__", f"extra-{i}")
        info = PluginInfo(name=name, distribution=IN_PROCESS, version=version, builtin=False, module=name)
        _register(pm, plugin, info, infos)
    _check_hook_names(pm, infos)
    try:
        pm.check_pending()  # a pluggy check that _check_hook_names does not word
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"{exc}. Check the hook name against 'mona-kit hooks'.") from exc
    return pm, infos


def describe(info: PluginInfo) -> str:
    """Where a plugin comes from, as plugin errors name it: its entry point and distribution, or load_kit(extra=...)."""
    if info.builtin:
        return f"first-party plugin {info.name}"
    if info.distribution == IN_PROCESS:
        return "load_kit(extra=...)"
    return f"entry point {info.name!r} (distribution {info.distribution} {info.version})"


def who(info: PluginInfo) -> str:
    """A plugin as the subject of an error: its entry point, module and distribution where it has them."""
    if info.builtin:
        return f"first-party plugin {info.name}"
    if info.distribution == IN_PROCESS:
        return f"plugin {info.name!r} (given to load_kit(extra=...))"
    return f"entry point {info.name!r} (module {info.module}, distribution {info.distribution} {info.version})"


def leave_out_hint(plugins: dict[str, PluginInfo], name: str) -> str:
    """The way around a third-party plugin that breaks every command: load the others without it."""
    return f" Fix or uninstall plugin {name!r}, or leave it out: {_without(plugins, name)}."


def _check_hook_names(pm: pluggy.PluginManager, infos: dict[str, PluginInfo]) -> None:
    """A hook implementation that no spec matches (``register_dataset``) is a typo: name the plugin, where it
    comes from, the hook meant and the way around it, as every other plugin error does."""
    hooks = [n for n in vars(hookspecs) if n.startswith("register_")]
    for hook_name in sorted(n for n in vars(pm.hook) if not n.startswith("_")):
        caller = getattr(pm.hook, hook_name)
        if caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook:
                continue
            info = infos.get(impl.plugin_name)
            way_out = "" if info is None or info.builtin else leave_out_hint(infos, impl.plugin_name)
            meant = difflib.get_close_matches(hook_name, hooks, n=1)
            raise PluginError(
                f"{who(info) if info else f'plugin {impl.plugin_name!r}'} implements unknown hook {hook_name!r}."
                f"{f' Did you mean {meant[0]!r}?' if meant else ''} Rename it to one of the hooks 'mona-kit hooks' "
                f"lists.{way_out}"
            )


def _register(pm: pluggy.PluginManager, plugin: object, info: PluginInfo, infos: dict[str, PluginInfo]) -> None:
    """Register one plugin and record it in ``infos`` (which holds every plugin registered before it)."""
    name = info.name
    if pm.is_registered(plugin):  # pluggy would say "Plugin already registered under a different name" + a dict
        earlier = infos.get(str(pm.get_name(plugin)))
        what = f"plugin module {plugin.__name__!r}" if isinstance(plugin, types.ModuleType) else f"plugin {name!r}"
        both = ("is listed twice in load_kit(extra=...)" if earlier is not None and earlier.distribution == IN_PROCESS
                == info.distribution else f"is given by {_origin(earlier)} and by {describe(info)}")
        raise PluginError(f"{what} {both}; {_once(earlier, info, infos)}")
    if pm.has_plugin(name):
        earlier = infos.get(name)
        raise PluginError(f"two plugins are named {name!r}: {_origin(earlier)} and {describe(info)}; "
                          f"{_rename(earlier, info, infos)}")
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        way_out = "" if info.builtin else leave_out_hint({**infos, name: info}, name)
        raise PluginError(f"{who(info)} has an invalid hook: {_argument_problem(plugin) or exc}.{way_out}") from exc
    except ValueError as exc:  # registered twice in a way the checks above do not know
        raise PluginError(f"{who(info)} is registered twice: {exc}; load it once.") from exc
    infos[name] = info


def _argument_problem(plugin: object) -> str | None:
    """Which hook implementation of ``plugin`` takes an argument its spec does not pass (pluggy's own words
    quote a set and the impl's repr), or None."""
    for attr in dir(plugin):
        impl = getattr(plugin, attr, None)
        opts = getattr(impl, f"{hookspecs.PROJECT}_impl", None) if callable(impl) else None
        if not isinstance(opts, dict):
            continue
        hook = opts.get("specname") or attr
        spec = getattr(hookspecs, hook, None)
        if spec is None or impl is None:
            continue  # an unknown hook: _check_hook_names words it
        passed = list(inspect.signature(spec).parameters)
        try:
            params = inspect.signature(impl).parameters.values()
        except (TypeError, ValueError):
            continue
        needed = [p.name for p in params if p.default is inspect.Parameter.empty
                  and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        unknown = [a for a in needed if a not in passed]
        if unknown:
            return (f"its {hook} takes {', '.join(repr(a) for a in unknown)}, which the hook does not pass "
                    f"(it passes {', '.join(repr(a) for a in passed)}); rename the argument")
    return None


def _origin(info: PluginInfo | None) -> str:
    return describe(info) if info is not None else "another plugin"


def _once(earlier: PluginInfo | None, current: PluginInfo, infos: dict[str, PluginInfo]) -> str:
    """How to load a plugin module that two sources give only once."""
    if current.distribution == IN_PROCESS:
        if earlier is None or earlier.distribution == IN_PROCESS:
            return "list it once in extra=."
        if earlier.builtin:
            return "leave it out of extra= (the first-party plugins are loaded already)."
        return "pass entry_points=False, or leave it out of extra=."
    if current.builtin:
        return "list it once in builtins=."
    one = "it" if earlier is not None and earlier.builtin else "one"
    return f"uninstall {one} ('pip uninstall {current.distribution}'), or leave it out: {_without(infos, current.name)}."


def _rename(earlier: PluginInfo | None, current: PluginInfo, infos: dict[str, PluginInfo]) -> str:
    """How to load two different plugins that have the same name."""
    if current.distribution == IN_PROCESS:
        if earlier is not None and not earlier.builtin and earlier.distribution != IN_PROCESS:
            return "give the module in extra= another __name__, or pass entry_points=False."
        return "give the module in extra= another __name__."
    if current.builtin:
        return "list it once in builtins=."
    return f"uninstall one ('pip uninstall {current.distribution}'), or leave it out: {_without(infos, current.name)}."


def _without(plugins: dict[str, PluginInfo], name: str) -> str:
    """``MONA_KIT_PLUGINS=...`` that loads every loaded entry point but ``name``."""
    # MONA_KIT_PLUGINS selects entry points: the others that were loaded, else none at all.
    others = [n for n, i in plugins.items()
              if not i.builtin and i.loaded and i.distribution != IN_PROCESS and n != name]
    return f"{ENV_VAR}={','.join(others) if others else 'none'}"
