"""Method options out of range are refused when the config is built: a one-line ConfigError naming the
option with an example of a valid value, before anything trains and before a run directory exists.

Covers the reference methods' candidate grids (linear's strengths, minirocket's alphas), their scalar
ranges, and MoNA's inner_params (names at config time, the body's groups before any stage).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from torch.utils.data import TensorDataset

import mona_kit.cli as cli
from mona_kit.errors import ConfigError

MONA_KIT = str(Path(sys.executable).with_name("mona-kit"))
TINY = {"backbone": "tiny-bert", "seed": 0, "train": {"epochs": 1, "batch_size": 4}}

GRID = "must be a non-empty list of positive finite numbers"
STRENGTHS = "e.g. method.strengths=[100,1,0.01]"
ALPHAS = "e.g. method.alphas=[0.001,1,1000]"


def one_line(text: str) -> str:
    text = text.strip()
    assert text.count("\n") == 0 and "Traceback" not in text, text
    return text


@pytest.mark.parametrize("method,options,phrases", [
    ("linear", {"strengths": []}, ["option 'strengths'", GRID, "got []", STRENGTHS]),
    ("linear", {"strengths": [-1]}, ["option 'strengths'", GRID, "got [-1.0]", STRENGTHS]),
    ("linear", {"strengths": [1.0, 0]}, ["option 'strengths'", GRID, STRENGTHS]),
    ("linear", {"strengths": [1.0, "inf"]}, ["option 'strengths'", GRID, STRENGTHS]),
    ("linear", {"strengths": ["nan"]}, ["option 'strengths'", GRID, STRENGTHS]),
    ("linear", {"max_iter": 0}, ["option 'max_iter' must be >= 1"]),
    ("minirocket", {"alphas": [-1]}, ["option 'alphas'", GRID, ALPHAS]),
    ("minirocket", {"alphas": []}, ["option 'alphas'", GRID, ALPHAS]),
    ("minirocket", {"num_features": 10}, ["option 'num_features' must be >= 84"]),
    ("minirocket", {"max_dilations": 0}, ["option 'max_dilations' must be >= 1"]),
    ("cnn", {"lr": 0}, ["option 'lr' must be > 0"]),
    ("cnn", {"dropout": 1.0}, ["option 'dropout' must be >= 0 and < 1"]),
    ("cnn", {"channels": 0}, ["option 'channels' must be >= 1"]),
    ("fno", {"modes": 0}, ["option 'modes' must be >= 1"]),
    ("fno", {"epochs": 0}, ["option 'epochs' must be >= 1"]),
    ("specialist", {"lr": -1e-3}, ["option 'lr' must be > 0"]),
    ("mona", {"inner_params": ["atention"]},
     ["option 'inner_params' names unknown body group(s) ['atention']", "Did you mean 'attention'", "e.g. method.inner_params=[attention,mlp]"]),
    ("mona", {"inner_params": ["all", "atention"]}, ["unknown body group(s) ['atention']"]),
    ("mona-grad-align", {"inner_params": ["mpl"]}, ["unknown body group(s) ['mpl']", "Did you mean 'mlp'"]),
    ("mona-grad-align", {"inner_params": []}, ["option 'inner_params' must name at least one body group", "[all]"]),
])
def test_bad_option_is_refused_when_the_config_is_built(kit, method, options, phrases):
    with pytest.raises(ConfigError) as info:
        kit.methods.get(method).make_config(options)
    message = one_line(str(info.value))
    assert message.startswith(f"method {method!r}: ")
    for phrase in phrases:
        assert phrase in message


@pytest.mark.parametrize("method,options", [
    ("linear", {"strengths": [1e3, 0.1]}),
    ("linear", {"strengths": [1]}),
    ("minirocket", {"alphas": [0.5]}),
    ("mona", {"inner_params": ["attention", "mlp"]}),
    ("mona", {"inner_params": ["all"]}),
    ("mona-grad-align", {"inner_params": ["norm"]}),
])
def test_good_values_still_build(kit, method, options):
    cfg = kit.methods.get(method).make_config(options)
    for key, value in options.items():
        assert list(getattr(cfg, key)) == list(value)


def test_direct_construction_checks_too():
    from mona_plugins.methods.mona import MonaConfig
    from mona_plugins.methods.references.linear import LinearConfig
    from mona_plugins.methods.references.minirocket import MiniRocketConfig

    with pytest.raises(ConfigError, match="option 'strengths'"):
        LinearConfig(strengths=())
    with pytest.raises(ConfigError, match="option 'alphas'"):
        MiniRocketConfig(alphas=(-1.0,))
    with pytest.raises(ConfigError, match="unknown body group"):
        MonaConfig(inner_params=("atention",))


def splits(n: int = 8):
    x, y = torch.randn(n, 1, 16), torch.arange(n) % 3
    return (TensorDataset(x, y),) * 3


@pytest.mark.parametrize("method,phrase", [
    ({"name": "linear", "strengths": []}, "option 'strengths'"),
    ({"name": "linear", "strengths": [-1]}, "option 'strengths'"),
    ({"name": "minirocket", "alphas": [-1]}, "option 'alphas'"),
    ({"name": "mona", "inner_params": ["atention"]}, "unknown body group(s) ['atention']"),
])
def test_python_api_fit_raises_config_error_and_writes_nothing(method, phrase, tmp_path, isolated_cache):
    from mona_kit.api import fit

    with pytest.raises(ConfigError) as info:
        fit(method, splits(), run_dir=tmp_path / "runs" / "r", **TINY)
    assert phrase in one_line(str(info.value))
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args,phrase", [
    (["method=linear", "task=gunpoint", "method.strengths=[]"], "method 'linear': option 'strengths'"),
    (["method=mona", "task=gunpoint", "method.inner_params=[atention]"], "method 'mona': option 'inner_params' names unknown"),
])
def test_cli_exits_2_with_one_line_and_no_run_dir(args, phrase, tmp_path):
    out = tmp_path / "runs"
    env = {**os.environ, "MONA_KIT_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [MONA_KIT, "run", *args, "backbone=tiny-bert", "train.epochs=1", f"output_dir={out}", "--no-progress"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert phrase in one_line(proc.stderr)
    assert not out.exists()


@pytest.fixture
def toy_cli(monkeypatch, toy_kit):
    import mona_kit.kit

    monkeypatch.setattr(mona_kit.kit, "load_kit", lambda *a, **k: toy_kit)
    return toy_kit


@pytest.mark.parametrize("method,inner,phrase", [
    # A name of the vocabulary that this body does not have: the toy body has attention, mlp and norm only.
    ("mona", ["position"], "names body group(s) ['position'] that backbone 'toy-body' does not have"),
    ("mona-grad-align", ["mlp", "head"], "names body group(s) ['head'] that backbone 'toy-body' does not have"),
])
def test_groups_the_body_lacks_fail_before_any_stage(toy_cli, capsys, tmp_path, method, inner, phrase):
    cfg = {
        "task": {"name": "toy-seq", "n_train": 32}, "backbone": "toy-body", "source": "toy-text",
        "method": {"name": method, "inner_params": inner, "meta_steps": 1, "objective": "toy-align-uniform"},
        "train": {"epochs": 1, "batch_size": 16}, "output_dir": str(tmp_path / "runs"), "run_name": "r",
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert cli.main(["run", str(path), "--no-progress"]) == 2
    err = one_line(capsys.readouterr().err)
    assert phrase in err and "choose among them" in err
    assert not (tmp_path / "runs").exists()


def test_groups_the_body_has_still_run(toy_cli, capsys, tmp_path):
    cfg = {
        "task": {"name": "toy-seq", "n_train": 32}, "backbone": "toy-body", "source": "toy-text",
        "method": {"name": "mona-grad-align", "inner_params": ["norm"], "meta_steps": 1, "warmup": "none",
                   "objective": "toy-align-uniform"},
        "train": {"epochs": 1, "batch_size": 16}, "output_dir": str(tmp_path / "runs"), "run_name": "r",
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert cli.main(["run", str(path), "--no-progress", "--no-plots"]) == 0, capsys.readouterr().err
