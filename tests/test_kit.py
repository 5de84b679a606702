"""Registries, provenance, names, duplicates and plugin loading errors."""

import types

import pytest

from mona_kit.errors import MonaError, PluginError, UnknownNameError
from mona_kit.hookspecs import hookimpl
from mona_kit.kit import load_kit


def plugin(**hooks):
    mod = types.ModuleType("test_plugin_" + "_".join(hooks))
    for name, fn in hooks.items():
        setattr(mod, name, hookimpl(fn))
    return mod


def test_entries_record_their_provider(toy_kit):
    entry = toy_kit.backbones.get("toy-body")
    assert entry.provider.plugin == "toy_plugin"
    assert entry.kind == "backbones"
    assert toy_kit.heads.get("toy-cls").meta["role"] == "head"
    assert "toy-body" in toy_kit.contributions("toy_plugin")["backbones"]


def test_kits_are_independent_values(toy_kit):
    other = load_kit(builtins=[], entry_points=False)
    assert "toy-body" in toy_kit.backbones and "toy-body" not in other.backbones


def test_unknown_name_suggests_and_points_to_list(toy_kit):
    with pytest.raises(UnknownNameError) as err:
        toy_kit.backbones.get("toy-bdy")
    msg = str(err.value)
    assert "'toy-body'" in msg and "mona-kit list backbones" in msg and "\n" not in msg


def test_glob_listing(toy_kit):
    assert [e.name for e in toy_kit.datasets.list("toy-t*")] == ["toy-text"]


def test_duplicate_registration_names_both_plugins():
    a = plugin(register_metrics=lambda register: register("dup", lambda: None))
    b = plugin(register_metrics=lambda register: register("dup", lambda: None))
    b.__name__ = "second_plugin"
    with pytest.raises(MonaError, match="registered twice.*test_plugin_register_metrics.*second_plugin.*replace=True"):
        load_kit(builtins=[], entry_points=False, extra=[a, b])


def test_replace_true_overrides():
    a = plugin(register_metrics=lambda register: register("dup", lambda: 1))
    b = plugin(register_metrics=lambda register: register("dup", lambda: 2, replace=True))
    b.__name__ = "winner"
    kit = load_kit(builtins=[], entry_points=False, extra=[a, b])
    assert kit.metrics.get("dup").provider.plugin == "winner"


def test_names_must_be_kebab_case():
    bad = plugin(register_methods=lambda register: register("My_Method", lambda: None))
    with pytest.raises(MonaError, match="lower-kebab-case"):
        load_kit(builtins=[], entry_points=False, extra=[bad])


def test_objective_needs_a_role():
    bad = plugin(register_objectives=lambda register: register("x", lambda: None))
    with pytest.raises(PluginError, match="role="):
        load_kit(builtins=[], entry_points=False, extra=[bad])


def test_factory_must_be_callable():
    bad = plugin(register_datasets=lambda register: register("x", 42))
    with pytest.raises(PluginError, match="not callable"):
        load_kit(builtins=[], entry_points=False, extra=[bad])


def test_plugin_raising_in_a_hook_is_named():
    def boom(register):
        raise RuntimeError("kaboom")

    with pytest.raises(PluginError, match="raised in register_backbones: RuntimeError: kaboom"):
        load_kit(builtins=[], entry_points=False, extra=[plugin(register_backbones=boom)])


def test_hook_typo_is_caught_by_check_pending():
    mod = types.ModuleType("typo_plugin")
    mod.register_backbone = hookimpl(lambda register: None)  # missing 's'
    with pytest.raises(PluginError, match="register_backbone"):
        load_kit(builtins=[], entry_points=False, extra=[mod])


def test_builtin_plugin_import_failure_is_named():
    with pytest.raises(PluginError, match="built-in plugin no_such_module failed to import"):
        load_kit(builtins=["no_such_module"], entry_points=False)


def test_prefix_resolution():
    def reg(register):
        register.prefix("path", lambda rest: {"factory": lambda: rest, "summary": f"from {rest}"}, summary="from a path")

    # Metrics: the one kind whose factory results are not type-checked, so a plain string will do.
    kit = load_kit(builtins=[], entry_points=False, extra=[plugin(register_metrics=reg)])
    entry = kit.metrics.get("path:/tmp/x")
    assert entry.name == "path:/tmp/x" and entry.build() == "/tmp/x"
    assert "path" in kit.metrics.prefixes()


def test_impl_may_take_a_subset_of_arguments():
    mod = types.ModuleType("noargs")
    mod.register_metrics = hookimpl(lambda: None)
    load_kit(builtins=[], entry_points=False, extra=[mod])  # no error


def test_every_builtin_plugin_loads():
    kit = load_kit(entry_points=False)
    assert {p.name for p in kit.plugins.values() if p.builtin} >= {"mona_plugins.methods", "mona_plugins.backbones"}


def test_every_registry_kind_is_a_typed_attribute():
    from mona_kit.kit import Kit, load_kit
    from mona_kit.registry import KINDS, Registry

    kit = load_kit(builtins=[], entry_points=False)
    for kind in KINDS:
        assert isinstance(getattr(Kit, kind), property), kind  # declared, so editors and type checkers see it
        assert getattr(kit, kind) is kit.registry(kind) and isinstance(getattr(kit, kind), Registry)
