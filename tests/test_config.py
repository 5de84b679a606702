"""Typed configs: unknown keys, wrong types, choices, overrides, files."""

import pytest

from mona_kit.config import build_config, config, describe_fields, option, to_dict
from mona_kit.errors import ConfigError
from mona_kit.runconfig import RunConfig, apply_overrides, read_config_file

BASE = {"task": "toy-seq", "backbone": "toy-body", "method": "finetune"}


@config
class Example:
    lr: float = option(1e-3, help="learning rate")
    kind: str = option("a", choices=("a", "b"), help="a kind")
    layers: tuple[int, ...] = option((1, 2), help="layers")
    cap: int | None = option(None, help="cap")


def test_build_and_round_trip():
    cfg = build_config(Example, {"lr": 1, "layers": [3], "cap": 5})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float) and cfg.layers == (3,)
    assert build_config(Example, to_dict(cfg)) == cfg


def test_unknown_key_suggests():
    with pytest.raises(ConfigError, match="no option 'kidn'. Did you mean 'kind'"):
        build_config(Example, {"kidn": "a"}, where="thing")


def test_wrong_type_and_choice():
    with pytest.raises(ConfigError, match="'cap' must be int | None, got 'many'"):
        build_config(Example, {"cap": "many"})
    with pytest.raises(ConfigError, match="must be one of 'a', 'b', got 'c'"):
        build_config(Example, {"kind": "c"})


def test_yaml_exponent_strings_are_floats():
    assert build_config(Example, {"lr": "3e-4"}).lr == pytest.approx(3e-4)


def test_describe_fields_has_type_default_help():
    rows = {r["name"]: r for r in describe_fields(Example)}
    assert rows["lr"]["default"] == "0.001" and rows["lr"]["help"] == "learning rate"
    assert rows["kind"]["type"] == "str"


def test_run_config_rejects_unknown_top_level_key():
    with pytest.raises(ConfigError, match="unknown config key 'sed'. Did you mean 'seed'"):
        RunConfig.from_dict({**BASE, "sed": 1})


def test_run_config_requires_components():
    with pytest.raises(ConfigError, match="needs 'method'"):
        RunConfig.from_dict({"task": "a", "backbone": "b"})


def test_overrides_nest_and_replace_names():
    data = apply_overrides({**BASE, "method": {"name": "mona", "lam": 0.3}}, ["method.lam=0.4", "train.lr=3e-4", "seed=7"])
    cfg = RunConfig.from_dict(data)
    assert cfg.method.options == {"lam": 0.4} and cfg.train.lr == pytest.approx(3e-4) and cfg.seed == 7
    cfg = RunConfig.from_dict(apply_overrides(data, ["method=orca"]))
    assert cfg.method.name == "orca" and cfg.method.options == {}


@pytest.mark.parametrize("bad", ["novalue", "=3", "a.b.c.d=1"])
def test_bad_overrides(bad):
    with pytest.raises(ConfigError):
        apply_overrides(BASE, [bad])


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_config_file(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("task: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        read_config_file(tmp_path / "bad.yaml")
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(ConfigError, match="empty"):
        read_config_file(tmp_path / "empty.yaml")
    (tmp_path / "obj.yaml").write_text("!!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError):
        read_config_file(tmp_path / "obj.yaml")  # safe loader: no code runs


def test_resolved_config_round_trips():
    cfg = RunConfig.from_dict({**BASE, "train": {"epochs": 2}})
    assert RunConfig.from_dict(cfg.to_plain()) == cfg
