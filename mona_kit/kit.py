"""The kit: every registry, filled by calling each plugin's registration hooks.

A kit is a value. Build as many as you like (tests build a fresh one each):
nothing here is a module-global registry.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable
from typing import Any

import pluggy

from .errors import ConfigError, MonaError, PluginError, UnknownNameError, did_you_mean
from .plugins import BUILTIN_PLUGINS, ENV_VAR, PluginInfo, leave_out_hint, make_plugin_manager
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


#: Keyword arguments the core passes to a factory of each kind, beside the config (docs/hooks.md).
BUILD_CONTEXT = {"embedders": ("task", "body"), "heads": ("task", "body", "embedder"), "loggers": ("run_dir",)}


def factory_problem(factory: Callable[..., Any], config: type | None, context: tuple[str, ...]) -> str | None:
    """Why ``factory`` cannot be called the way the core will call it (``factory(config, **context)`` with a
    config class, ``factory(**context)`` without), or None. Checked at registration, not at first use."""
    import inspect

    try:
        params = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: nothing to check
        return None
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    positional = [p for p in params if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    takes_args = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    if config is not None:
        if not positional and not takes_args:
            return (f"it has config={getattr(config, '__name__', config)} but its factory takes no argument for it "
                    f"(called as factory(config{''.join(', ' + c + '=...' for c in context)})); add one, or drop config=.")
        rest = params[1:] if positional and params[0] is positional[0] else params
    else:
        rest = params
    for p in rest:
        if p.kind in variadic or p.default is not inspect.Parameter.empty:
            continue
        if p.kind is inspect.Parameter.POSITIONAL_ONLY or p.name not in context:
            if config is None and p is (positional[0] if positional else None):
                return (f"its factory needs argument {p.name!r} but no config class is registered, so it would be "
                        f"called with no config; pass config=YourConfigClass to register (or give {p.name!r} a default).")
            return (f"its factory needs argument {p.name!r}, which the core never passes (it passes "
                    f"{', '.join(context) or 'nothing'} beside the config); give it a default or remove it.")
    return None


def config_problem(config: Any) -> str | None:
    """Why ``config=`` is not a usable config class (an attrs class, as ``@config`` makes; its defaults
    passing their own checks), or None. Checked at registration: ``describe`` and every build would crash on it."""
    import attrs

    from .config import default_problem

    if config is None:
        return None
    if not isinstance(config, type):
        if attrs.has(type(config)):
            return f"config= is an instance of {type(config).__name__}, not the class; pass config={type(config).__name__}."
        return f"config= must be a class decorated with @config (mona_kit.api), got {type(config).__name__} {config!r}."
    if not attrs.has(config):
        return (f"config={config.__name__} is a plain class; decorate it with @config (from mona_kit.api) and "
                f"declare its fields with option(...).")
    problem = default_problem(config)
    return f"config class {config.__name__}: {problem}." if problem else None



def provenance_problem(provenance: Any) -> str | None:
    """What is wrong with a ``provenance=`` declaration (printed under every table of the method's
    rows), or None: it must be one line of text."""
    if provenance is None:
        return None
    if not isinstance(provenance, str) or not provenance.strip() or "\n" in provenance:
        return (f"provenance= must be one non-empty line of text (where the implementation comes from), "
                f"got {type(provenance).__name__} {str(provenance)[:40]!r}")
    return None

class _PluginCallback:
    """A callback bound to one plugin's hook call: the kit it fills and the provider it records."""

    def __init__(self, kit: "Kit", hook: str, provider: Provider):
        self._kit = kit
        self._hook = hook
        self._provider = provider


class PluginRegistrar(_PluginCallback):
    """The ``register`` callback handed to one plugin's hook: validates and records provenance."""

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
        problem = (config_problem(config) or factory_problem(factory, config, BUILD_CONTEXT.get(kind, ()))
                   or provenance_problem(meta.get("provenance")))
        if problem:
            raise PluginError(f"{self._provider.plugin} registers {kind[:-1]} {name!r}: {problem}")
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
            config = spec.pop("config", None)
            problem = config_problem(config)
            if problem:
                raise PluginError(f"{provider} resolves {kind[:-1]} '{prefix}:{rest}': {problem}")
            return Entry(
                name=f"{prefix}:{rest}",
                kind=kind,
                factory=factory,
                provider=provider,
                config=config,
                summary=spec.pop("summary", summary),
                meta=spec,
            )

        self._kit.registries[kind].add_resolver(prefix, resolver, provider, summary)


class PluginCommandRegistrar(_PluginCallback):
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


class _KitRegistry(Registry):
    """A kit's registry: an unknown name also says which installed plugins MONA_KIT_PLUGINS left out."""

    def __init__(self, kind: str, left_out: dict[str, PluginInfo]):
        super().__init__(kind)
        self.left_out = left_out

    def get(self, name: str) -> Entry:
        if self.left_out and isinstance(name, str) and name not in self and name.partition(":")[0] not in (
                self.prefixes() if ":" in name else ()):
            raise UnknownNameError(
                f"unknown {self.kind[:-1]} {name!r}.{_near(name, self.names())}{_left_out_hint(self.left_out)} "
                f"Run 'mona-kit list {self.kind}' to see them all."
            )
        return super().get(name)


def _near(name: str, names: list[str]) -> str:
    """Did-you-mean for when a left-out plugin may well provide the name: only near-identical loaded names."""
    near = difflib.get_close_matches(name, names, n=3, cutoff=0.8)
    return f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""


def _left_out_hint(left_out: dict[str, PluginInfo]) -> str:
    named = [f"{n} ({i.distribution} {i.version})" for n, i in left_out.items()]
    return f" {ENV_VAR} leaves out installed plugin(s) {', '.join(named)}, which may provide it." if named else ""


class Kit:
    """All registries, built from a plugin manager."""

    def __init__(self, pm: pluggy.PluginManager, plugins: dict[str, PluginInfo],
                 left_out: dict[str, PluginInfo] | None = None):
        self.pm = pm
        self.plugins = plugins
        #: Installed plugins that MONA_KIT_PLUGINS left out (named by "no component is named ..." errors).
        self.left_out = dict(left_out or {})
        self.registries: dict[str, Registry] = {kind: _KitRegistry(kind, self.left_out) for kind in KINDS}
        for hook_name in HOOKS:
            hook = getattr(pm.hook, hook_name)
            # Call each plugin's impl with its own PluginRegistrar (a hookspecs.Registrar), so every entry knows its provider.
            for impl in hook.get_hookimpls():  # plugin registration order: built-ins first
                info = plugins.get(impl.plugin_name)
                provider = Provider(
                    plugin=impl.plugin_name,
                    distribution=info.distribution if info else "unknown",
                    version=info.version if info else "unknown",
                )
                registrar = (PluginCommandRegistrar if hook_name == "register_commands" else PluginRegistrar)(self, hook_name, provider)
                kwargs = {arg: registrar for arg in impl.argnames}
                way_out = "" if info is None or info.builtin else leave_out_hint(plugins, impl.plugin_name)
                try:
                    impl.function(**kwargs)
                except MonaError as exc:
                    if not way_out:
                        raise
                    raise type(exc)(f"{exc}{way_out}") from exc
                except Exception as exc:
                    raise PluginError(
                        f"plugin {provider} raised in {hook_name}: {type(exc).__name__}: {exc}"
                        + (f".{way_out}" if way_out else "")
                    ) from exc

    # Registries as typed attributes (one per kind in registry.KINDS) ---------------------------
    @property
    def backbones(self) -> Registry:
        """Pretrained bodies."""
        return self.registries["backbones"]

    @property
    def embedders(self) -> Registry:
        """Target embedders."""
        return self.registries["embedders"]

    @property
    def heads(self) -> Registry:
        """Task heads."""
        return self.registries["heads"]

    @property
    def objectives(self) -> Registry:
        """Task losses and alignment objectives."""
        return self.registries["objectives"]

    @property
    def datasets(self) -> Registry:
        """Target tasks and source proxies."""
        return self.registries["datasets"]

    @property
    def methods(self) -> Registry:
        """Transfer methods."""
        return self.registries["methods"]

    @property
    def metrics(self) -> Registry:
        """Evaluation metrics."""
        return self.registries["metrics"]

    @property
    def loggers(self) -> Registry:
        """Experiment loggers (``loggers=[...]`` in a run config)."""
        return self.registries["loggers"]

    @property
    def commands(self) -> Registry:
        """Plugin CLI verbs."""
        return self.registries["commands"]

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
        objective = entry.build(dict(options or {}))
        objective.register_forward_hook(scalar_output_check(entry))
        return objective

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
            # With plugins left out, the name may well be one of theirs: suggest only near-identical loaded names.
            suggest = _near(name, everything) if self.left_out else did_you_mean(name, everything)
            hint = _left_out_hint(self.left_out)
            raise UnknownNameError(
                f"no component is named {name!r}.{suggest}{hint} "
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


_NAMES = (str, bytes, bytearray, os.PathLike)


def _extra_plugins(extra: Any) -> list[object]:
    """``extra`` as a list of plugin objects. Strings are refused: pluggy would register a module *name*
    (or, for ``extra="os"``, each letter) as a plugin with no hooks, and nothing would say so."""
    how = "extra= takes a list of imported plugin modules or objects (extra=[my_plugin]), not names"
    if isinstance(extra, _NAMES):
        raise ConfigError(f"{how}; got {type(extra).__name__} {extra!r} - import it first (importlib.import_module).")
    try:
        plugins = list(extra)
    except TypeError:
        raise ConfigError(f"{how}; got a single {type(extra).__name__} - wrap it in a list: extra=[plugin].") from None
    for plugin in plugins:
        if isinstance(plugin, _NAMES):
            raise ConfigError(f"{how}; got {type(plugin).__name__} {plugin!r} - import it first (importlib.import_module).")
        if plugin is None:
            raise ConfigError(f"{how}; got None in the list.")
    return plugins


def load_kit(
    builtins: Iterable[str] = BUILTIN_PLUGINS,
    *,
    entry_points: bool = True,
    extra: Iterable[object] = (),
) -> Kit:
    """Build a fresh kit: first-party plugins, then installed third-party ones, then ``extra``."""
    pm, infos = make_plugin_manager(builtins, entry_points=entry_points, extra=_extra_plugins(extra))
    loaded = {n: i for n, i in infos.items() if i.loaded}
    return Kit(pm, loaded, left_out={n: i for n, i in infos.items() if not i.loaded})


def scalar_output_check(entry):
    """A forward hook that refuses an objective's value unless it is a one-element tensor: a Python float
    carries no gradient (alignment would fail far from the plugin, or train nothing) and a vector is no loss."""
    import torch

    def check(module, inputs, output):
        if not (isinstance(output, torch.Tensor) and output.numel() == 1):
            got = type(output).__name__ if not isinstance(output, torch.Tensor) else f"a tensor of shape {list(output.shape)}"
            raise PluginError(
                f"objective {entry.name!r} ({entry.provider}) returned {got}, not a one-element tensor (a loss that "
                f"gradients reach); fix the plugin's forward."
            )

    return check
