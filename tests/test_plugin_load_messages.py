"""Plugin-loading messages a third-party plugin author meets, each one line saying what is wrong and the way
around it: a module given by its entry point and by ``load_kit(extra=...)``, a misspelled hook, the
``mona-kit hooks`` listing (``mona_kit.api`` names only) and unknown names while ``MONA_KIT_PLUGINS``
leaves installed plugins out."""

from __future__ import annotations

import importlib.metadata
import re
import sys
import types

import pytest

import mona_kit.cli as cli
from mona_kit import api
from mona_kit.errors import PluginError, UnknownNameError
from mona_kit.hookspecs import hookimpl
from mona_kit.kit import load_kit


class FakeEntryPoint:
    """What make_plugin_manager reads of an installed entry point (name, value, dist, load)."""

    def __init__(self, name: str, module: types.ModuleType, dist: str, version: str = "1.0"):
        self.name, self.value, self._module = name, module.__name__, module
        self.dist = types.SimpleNamespace(name=dist, version=version)

    def load(self):
        return self._module


def module(name: str, **hooks) -> types.ModuleType:
    mod = types.ModuleType(name)
    for hook, fn in hooks.items():
        setattr(mod, hook, hookimpl(fn))
    return mod


def register_metric(register):
    register("acme-score", lambda: None, summary="acme's score")


@pytest.fixture
def installed(monkeypatch):
    """Install fake entry points of the mona_kit group: ``installed(FakeEntryPoint(...), ...)``."""
    monkeypatch.delenv("MONA_KIT_PLUGINS", raising=False)
    real = importlib.metadata.entry_points

    def use(*eps: FakeEntryPoint) -> None:
        for ep in eps:
            monkeypatch.setitem(sys.modules, ep.value, ep.load())

        def entry_points(**kw):
            return list(eps) if kw.get("group") == "mona_kit" else real(**kw)

        monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)

    return use


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text and "{" not in text and "<module" not in text, text  # no pluggy dict, no module repr
    return text


# 4. The same module given by its entry point and by extra= ------------------------------------------
def test_a_module_given_by_entry_point_and_extra_is_one_line(installed):
    acme = module("mona_acme", register_metrics=register_metric)
    installed(FakeEntryPoint("acme", acme, "mona-acme"))
    for load in (load_kit, api.load_kit):
        with pytest.raises(PluginError) as err:
            load(extra=[acme])
        assert one_line(err) == (
            "plugin module 'mona_acme' is given by entry point 'acme' (distribution mona-acme 1.0) and by "
            "load_kit(extra=...); pass entry_points=False, or leave it out of extra=."
        )
    assert "acme-score" in load_kit(entry_points=False, extra=[acme]).metrics  # the way out works
    assert "acme-score" in load_kit().metrics


def test_a_module_given_by_two_entry_points_names_both_distributions(installed):
    acme = module("mona_acme", register_metrics=register_metric)
    installed(FakeEntryPoint("acme", acme, "mona-acme"), FakeEntryPoint("acme-fork", acme, "acme-fork", "2.0"))
    with pytest.raises(PluginError) as err:
        load_kit(builtins=[])
    assert one_line(err) == (
        "plugin module 'mona_acme' is given by entry point 'acme' (distribution mona-acme 1.0) and by entry point "
        "'acme-fork' (distribution acme-fork 2.0); uninstall one ('pip uninstall acme-fork'), or leave it out: "
        "MONA_KIT_PLUGINS=acme."
    )


@pytest.mark.parametrize("extra, expected", [
    ("twice", "plugin module 'mona_acme' is listed twice in load_kit(extra=...); list it once in extra=."),
    ("builtin", "plugin module 'mona_plugins.metrics' is given by first-party plugin mona_plugins.metrics and by "
                "load_kit(extra=...); leave it out of extra= (the first-party plugins are loaded already)."),
    ("same-name", "two plugins are named 'mona_acme': load_kit(extra=...) and load_kit(extra=...); give the module "
                  "in extra= another __name__."),
])
def test_a_plugin_given_twice_in_process_is_one_line(extra, expected):
    import mona_plugins.metrics

    acme = module("mona_acme", register_metrics=register_metric)
    plugins = {"twice": [acme, acme], "builtin": [mona_plugins.metrics],
               "same-name": [acme, module("mona_acme", register_metrics=register_metric)]}[extra]
    with pytest.raises(PluginError) as err:
        load_kit(builtins=["mona_plugins.metrics"], entry_points=False, extra=plugins)
    assert one_line(err) == expected


# 5. A misspelled hook --------------------------------------------------------------------------------
def test_a_misspelled_hook_names_the_plugin_the_hook_meant_and_the_way_out():
    broken = module("mona_acme_broken", register_dataset=lambda register: None)
    with pytest.raises(PluginError) as err:
        load_kit(builtins=[], entry_points=False, extra=[broken])
    assert one_line(err) == (
        "plugin 'mona_acme_broken' (given to load_kit(extra=...)) implements unknown hook 'register_dataset'. "
        "Did you mean 'register_datasets'? Rename it to one of the hooks 'mona-kit hooks' lists. "
        "Fix or uninstall plugin 'mona_acme_broken', or leave it out: MONA_KIT_PLUGINS=none."
    )


def test_a_misspelled_hook_of_an_entry_point_names_it_as_the_other_plugin_errors_do(installed):
    good = module("mona_good", register_metrics=register_metric)
    broken = module("mona_acme_broken", register_backbone=lambda register: None)
    installed(FakeEntryPoint("good", good, "mona-good"), FakeEntryPoint("acme", broken, "mona-acme", "0.3"))
    with pytest.raises(PluginError) as err:
        load_kit(builtins=[])
    assert one_line(err) == (
        "entry point 'acme' (module mona_acme_broken, distribution mona-acme 0.3) implements unknown hook "
        "'register_backbone'. Did you mean 'register_backbones'? Rename it to one of the hooks 'mona-kit hooks' "
        "lists. Fix or uninstall plugin 'acme', or leave it out: MONA_KIT_PLUGINS=good."
    )


def test_a_hook_name_far_from_every_hook_gets_no_guess():
    broken = module("mona_acme_broken", setup=lambda: None)
    with pytest.raises(PluginError, match=r"implements unknown hook 'setup'\. Rename it") as err:
        load_kit(builtins=[], entry_points=False, extra=[broken])
    assert "Did you mean" not in one_line(err)


def test_an_impl_argument_no_spec_has_names_the_plugin_and_the_way_out():
    bad = module("mona_acme_bad", register_metrics=lambda reg: None)
    with pytest.raises(PluginError) as err:
        load_kit(builtins=[], entry_points=False, extra=[bad])
    assert one_line(err) == (
        "plugin 'mona_acme_bad' (given to load_kit(extra=...)) has an invalid hook: its register_metrics takes "
        "'reg', which the hook does not pass (it passes 'register'); rename the argument. Fix or uninstall plugin "
        "'mona_acme_bad', or leave it out: MONA_KIT_PLUGINS=none."
    )


# 6. `mona-kit hooks` points at mona_kit.api ------------------------------------------------------------
def test_hooks_verb_names_only_public_classes(capsys):
    assert cli.main(["hooks"]) == 0
    out = capsys.readouterr().out
    assert "mona_kit.components" not in out and "mona_kit.stages" not in out and "mona_kit.loggers" not in out
    named = re.findall(r"mona_kit\.api\.(\w+)", out)
    assert {"Backbone", "Embedder", "Head", "TaskData", "Method", "Metric", "Logger"} <= set(named)
    assert set(named) <= set(api.__all__)
    assert "import every name from mona_kit.api" in out


def test_hooks_verb_leaves_a_name_the_api_does_not_export():
    from mona_kit.commands.hooks import public_names

    assert public_names("a :class:`mona_kit.components.Backbone`") == "a :class:`mona_kit.api.Backbone`"
    assert public_names("mona_kit.engine.Backbone") == "mona_kit.engine.Backbone"  # api's is another module's
    assert public_names("mona_kit.engine.Internal") == "mona_kit.engine.Internal"


# 7. Unknown names while MONA_KIT_PLUGINS leaves plugins out ------------------------------------------
def test_an_unknown_name_says_which_installed_plugins_are_left_out(installed, monkeypatch):
    import toy_plugin

    installed(FakeEntryPoint("acme", module("mona_acme", register_metrics=register_metric), "mona-acme"))
    monkeypatch.setenv("MONA_KIT_PLUGINS", "none")
    kit = load_kit(builtins=[], extra=[toy_plugin])
    with pytest.raises(UnknownNameError) as err:
        kit.datasets.get("acme-sine")
    assert one_line(err) == (
        "unknown dataset 'acme-sine'. MONA_KIT_PLUGINS leaves out installed plugin(s) acme (mona-acme 1.0), "
        "which may provide it. Run 'mona-kit list datasets' to see them all."
    )
    with pytest.raises(UnknownNameError, match=r"^unknown dataset 'toy-sq'\. Did you mean 'toy-seq'\? MONA_KIT_PLUGINS "
                                                r"leaves out installed plugin\(s\) acme"):
        kit.datasets.get("toy-sq")  # a near-identical loaded name is still suggested
    assert kit.datasets.get("toy-seq").name == "toy-seq"
    with pytest.raises(UnknownNameError, match="leaves out installed plugin"):
        kit.find("acme-sine")


def test_the_cli_says_so_too(installed, monkeypatch, capsys):
    installed(FakeEntryPoint("acme", module("mona_acme", register_metrics=register_metric), "mona-acme"))
    monkeypatch.setenv("MONA_KIT_PLUGINS", "none")
    assert cli.main(["data", "info", "acme-sine"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("mona-kit: error: unknown dataset 'acme-sine'. MONA_KIT_PLUGINS leaves out installed plugin(s) "
                   "acme (mona-acme 1.0), which may provide it. Run 'mona-kit list datasets' to see them all.")


def test_with_nothing_left_out_an_unknown_name_reads_as_before(toy_kit):
    with pytest.raises(UnknownNameError) as err:
        toy_kit.datasets.get("acme-sine")
    assert one_line(err) == "unknown dataset 'acme-sine'. Run 'mona-kit list datasets' to see them all."
    with pytest.raises(UnknownNameError, match=r"Did you mean 'toy-seq', 'toy-text'"):
        toy_kit.datasets.get("toy-sq")
