"""A broken third-party plugin, as a fuzz pass met it: each mistake is one line naming the plugin (exit 2, no
traceback), caught where the plugin registers or where its verb runs, and KEY=VALUE items may follow options
in every verb that takes them."""

from __future__ import annotations

import types

import attrs
import pytest
import torch

import mona_kit.cli as cli
from mona_kit.api import TaskData, TaskSpec, TensorDictDataset, config, option
from mona_kit.config import build_config
from mona_kit.errors import ConfigError, PluginError
from test_plugin_author import plugin
from test_plugin_author import toy_kit_with as kit_with


def one_line_error(capsys, argv, code=2) -> str:
    assert cli.main(argv) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("mona-kit: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def tiny_task(cfg=None) -> TaskData:
    spec = TaskSpec(name="acme-task", task_type="classification", input_shape=(1, 32), output_shape=(3,), loss="toy-ce",
                    metric="toy-error", license="MIT", citation="none", source="generated")

    def split(n):
        return TensorDictDataset({"x": torch.zeros(n, 1, 32), "y": torch.zeros(n, dtype=torch.long)})

    return TaskData(spec=spec, train=split(4), val=split(4), test=split(4))


def registering(name: str, cfg) -> types.ModuleType:
    return plugin("acme", register_datasets=lambda register: register(name, tiny_task, config=cfg, summary="acme"))


# 1. config= must be an attrs class ----------------------------------------------------------------
class PlainConfig:
    n: int = 3


@config
class AcmeConfig:
    n: int = option(3, help="samples")


@pytest.mark.parametrize("cfg, expected", [
    (PlainConfig, r"config=PlainConfig is a plain class; decorate it with @config"),
    (AcmeConfig(), r"config= is an instance of AcmeConfig, not the class; pass config=AcmeConfig\."),
    ({"n": 3}, r"config= must be a class decorated with @config \(mona_kit.api\), got dict"),
])
def test_a_config_that_is_not_an_attrs_class_is_refused_at_registration(cfg, expected):
    with pytest.raises(PluginError, match=r"^acme registers dataset 'acme-data': " + expected) as err:
        kit_with(registering("acme-data", cfg))
    assert "leave it out: MONA_KIT_PLUGINS=" in str(err.value)  # the way around it, as for a hook that raises


def test_describe_and_data_info_of_a_plain_config_plugin_say_so_in_one_line(cli_kit, capsys, monkeypatch):
    import mona_kit.kit

    # What the CLI meets: the kit itself fails to load (before: NotAnAttrsClassError out of describe).
    monkeypatch.setattr(mona_kit.kit, "load_kit", lambda *a, **k: kit_with(registering("acme-data", PlainConfig)))
    for argv in (["describe", "acme-data"], ["data", "info", "acme-data"]):
        err = one_line_error(capsys, argv)
        assert "acme registers dataset 'acme-data': config=PlainConfig is a plain class" in err


# 2. Option defaults are the plugin's to get right ---------------------------------------------------
@config
class StrForInt:
    n: int = option("abc")


@config
class BelowMin:
    m: int = option(-1, min=0)


@config
class NotAChoice:
    c: str = option("z", choices=("a", "b"))


@config
class FactoryOutOfRange:
    sizes: tuple[int, ...] = option(factory=lambda: (4, 0), min=1)


@pytest.mark.parametrize("cfg, expected", [
    (StrForInt, "config class StrForInt: option 'n' defaults to 'abc', which is not int; fix the default."),
    (BelowMin, "config class BelowMin: option 'm' defaults to -1, but it must be >= 0; fix the default or the range."),
    (NotAChoice, "config class NotAChoice: option 'c' defaults to 'z', which is not one of 'a', 'b'; "
                 "fix the default or the choices."),
    (FactoryOutOfRange, "config class FactoryOutOfRange: option 'sizes' defaults to (4, 0), but it must hold only "
                        "finite numbers >= 1; fix the default or the range."),
])
def test_a_bad_option_default_blames_the_plugin_at_registration(cfg, expected):
    # Before: 'abc' reached the factory as n='abc'; -1 read as the user's mistake ("fix the value").
    with pytest.raises(PluginError) as err:
        kit_with(registering("acme-data", cfg))
    assert str(err.value).startswith(f"acme registers dataset 'acme-data': {expected} Fix or uninstall plugin 'acme'")


def test_good_defaults_register_and_build():
    kit = kit_with(registering("acme-data", AcmeConfig))
    assert kit.datasets.get("acme-data").make_config({}) == AcmeConfig(n=3)


def test_a_choices_validator_of_the_class_itself_reads_as_one_line():
    @attrs.frozen(kw_only=True)
    class Direct:
        c: str = attrs.field(default="a", validator=attrs.validators.in_(("a", "b")))

    with pytest.raises(ConfigError) as err:
        build_config(Direct, {"c": "z"}, where="dataset 'acme-data'")
    # Before: the attrs error's whole args tuple, Attribute(name='c', default=..., ...) included.
    assert str(err.value) == "dataset 'acme-data': option 'c' must be one of 'a', 'b', got 'z'; fix the value."


def test_a_prefix_resolver_that_returns_a_plain_config_is_named():
    def register_datasets(register):
        register.prefix("acme", lambda rest: {"factory": tiny_task, "config": PlainConfig})

    kit = kit_with(plugin("acme", register_datasets=register_datasets))
    with pytest.raises(PluginError, match=r"^acme \(.*\) resolves dataset 'acme:x': config=PlainConfig is a plain class"):
        kit.datasets.get("acme:x")


# 3. A plugin verb whose configure(parser) raises ----------------------------------------------------
def conflicting(parser):
    parser.add_argument("--x")
    parser.add_argument("--x")  # argparse.ArgumentError: conflicting option string


def test_a_plugin_verb_whose_configure_raises_breaks_only_itself(cli_kit, capsys):
    bad = plugin("acme", register_commands=lambda register: register("acme-verb", conflicting, lambda a, k: 0))
    cli_kit(kit_with(bad))
    # Before: the ArgumentError's traceback from every verb, this one included.
    assert cli.main(["list", "metrics"]) == 0
    assert "toy-error" in capsys.readouterr().out
    for argv in (["acme-verb"], ["acme-verb", "--x", "1", "extra"], ["acme-verb", "-h"]):
        err = one_line_error(capsys, argv)
        assert err.startswith("mona-kit: error: plugin acme ((in-process) ")
        assert err.endswith("): configure(parser) of its command 'acme-verb' raised ArgumentError: argument --x: "
                            "conflicting option string: --x; fix the plugin's configure (other verbs still work).")


def test_a_plugin_verb_named_like_a_built_in_one_is_left_out_with_a_warning(cli_kit, capsys):
    """Before: 'registers CLI verb 'list', which is built in' stopped every verb, the built-in one too."""
    clash = plugin("acme", register_commands=lambda register: register("list", lambda p: None, lambda a, k: 7))
    cli_kit(kit_with(clash))
    assert cli.main(["list", "metrics"]) == 0  # the built-in verb, not the plugin's (which would return 7)
    captured = capsys.readouterr()
    assert "toy-error" in captured.out
    assert "warning: plugin acme (" in captured.err and "registers CLI verb 'list', which is built in" in captured.err


# 4. A plugin verb's handler returns something other than an exit status -----------------------------
@pytest.mark.parametrize("returned", ["done", True, 1.0])
def test_a_handler_returning_a_non_int_is_a_plugin_error(cli_kit, capsys, returned):
    verb = plugin("acme", register_commands=lambda register: register("acme-verb", lambda p: None, lambda a, k: returned))
    cli_kit(kit_with(verb))
    err = one_line_error(capsys, ["acme-verb"])  # before: ValueError from int('done')
    assert "plugin acme (" in err
    assert f"its command 'acme-verb' returned {type(returned).__name__} {returned!r}; a handler returns an int" in err


@pytest.mark.parametrize("returned", [256, -1])
def test_a_handler_returning_an_out_of_range_status_is_a_plugin_error(cli_kit, capsys, returned):
    verb = plugin("acme", register_commands=lambda register: register("acme-verb", lambda p: None, lambda a, k: returned))
    cli_kit(kit_with(verb))
    err = one_line_error(capsys, ["acme-verb"])
    assert f"its command 'acme-verb' returned exit status {returned}; an exit status is 0 to 255" in err


@pytest.mark.parametrize("returned, status", [(None, 0), (0, 0), (3, 3)])
def test_a_handler_returning_none_or_an_int_sets_the_exit_status(cli_kit, returned, status):
    verb = plugin("acme", register_commands=lambda register: register("acme-verb", lambda p: None, lambda a, k: returned))
    cli_kit(kit_with(verb))
    assert cli.main(["acme-verb"]) == status


# 5. KEY=VALUE after an option, in every verb that takes them ----------------------------------------
@config
class RootConfig:
    root: str = option(help="files")
    seed: int = option(0, help="seed")


def test_data_verbs_take_key_value_items_after_options(cli_kit, capsys, tmp_path):
    seen: dict = {}

    def make(cfg):
        seen["build"] = cfg
        return tiny_task()

    def convert(source, root, **options):
        seen["convert"] = (source.name, root.name, options)
        return []

    def register_datasets(register):
        register("acme-files", make, config=RootConfig, summary="reads files", convert=convert)

    cli_kit(kit_with(plugin("acme", register_datasets=register_datasets)))
    (tmp_path / "src").mkdir()
    # Before: "unrecognized arguments: seed=1" for each (run already took this order).
    assert cli.main(["data", "convert", "acme-files", "--from", str(tmp_path / "src"), "--root", str(tmp_path / "dst"),
                     "seed=1"]) == 0
    assert seen["convert"] == ("src", "dst", {"seed": 1})
    assert cli.main(["data", "verify", "acme-files", "--root", str(tmp_path), "seed=2"]) == 0
    assert seen["build"] == RootConfig(root=str(tmp_path), seed=2)
    assert cli.main(["data", "info", "acme-files", "--json", "--root", str(tmp_path), "seed=3"]) == 0
    assert seen["build"].seed == 3
    capsys.readouterr()
    # An unknown option among the extras, and a verb with no KEY=VALUE list, still get argparse's usage error.
    for argv, stray in ((["data", "info", "acme-files", "--root", str(tmp_path), "--bogus", "seed=3"], "--bogus seed=3"),
                        (["describe", "acme-files", "seed=1"], "seed=1")):
        with pytest.raises(SystemExit) as exit_:
            cli.main(argv)
        assert exit_.value.code == 2
        assert f"unrecognized arguments: {stray}" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [3, "", "two\nlines"])
def test_a_provenance_that_is_not_one_line_of_text_is_refused_at_registration(bad):
    acme = plugin("acme", register_datasets=lambda register: register("acme-data", tiny_task, summary="acme", provenance=bad))
    with pytest.raises(PluginError, match=r"^acme registers dataset 'acme-data': provenance= must be one non-empty line"):
        kit_with(acme)
