"""A plugin author's path (issue 13, item 4): each friction met by a third-party plugin written from the
docs alone, with the test that would have caught it."""

from __future__ import annotations

import json
import re
import types
from pathlib import Path

import attrs
import pytest
import torch
import yaml

import mona_kit.cli as cli
from mona_kit.api import (
    ConfigError,
    SplitOptions,
    TaskData,
    TaskSpec,
    TensorDictDataset,
    assemble_task,
    config,
    hookimpl,
    option,
)
from mona_kit.components import TaskSpec as CoreTaskSpec
from mona_kit.errors import PluginError, UnknownNameError
from mona_kit.kit import load_kit
from mona_kit.runconfig import DiagnosticsConfig, RunConfig, TrainConfig
from mona_kit.sweep_profile import PROFILE_KEYS

ROOT = Path(__file__).resolve().parents[1]
HOOKS_DOC = (ROOT / "docs" / "hooks.md").read_text()
RUNS_DOC = (ROOT / "docs" / "runs.md").read_text()


def plugin(name: str, **hooks) -> types.ModuleType:
    """An in-process third-party plugin module with the given hook implementations."""
    module = types.ModuleType(name)
    for hook, fn in hooks.items():
        setattr(module, hook, hookimpl(fn))
    return module


def toy_kit_with(*modules):
    import toy_plugin

    return load_kit(builtins=["mona_plugins.methods"], entry_points=False, extra=[toy_plugin, *modules])


def one_line_error(capsys, argv, code=2) -> str:
    assert cli.main(argv) == code
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    return err


def toy_spec(**changes) -> TaskSpec:
    fields = dict(name="toy-seq", task_type="classification", input_shape=(1, 32), output_shape=(3,),
                  loss="toy-ce", metric="toy-error", license="MIT", citation="none", source="generated")
    return TaskSpec(**{**fields, **changes})


def tensors(n: int, label: int = 0) -> TensorDictDataset:
    return TensorDictDataset({"x": torch.zeros(n, 1, 32), "y": torch.full((n,), label, dtype=torch.long)})


# TaskSpec fields and dataset metadata -------------------------------------------------------------
def test_every_taskspec_field_is_documented_and_verify_demands_are_marked():
    table = HOOKS_DOC.split("The `TaskSpec` fields", 1)[1].split("\n\n", 2)[1]
    documented = re.findall(r"^\| `([a-z_]+)` \|", table, re.MULTILINE)
    assert documented == [f.name for f in attrs.fields(CoreTaskSpec)]
    for field in ("license", "citation", "source"):
        assert re.search(rf"^\| `{field}` \| \*verify\*", table, re.MULTILINE), field


def test_offline_metadata_is_documented_and_decides_data_list(cli_kit, capsys):
    assert "`offline`" in HOOKS_DOC and "needs root" in HOOKS_DOC

    @config
    class RootConfig:
        root: str = option("data", help="folder with the files")

    def register_datasets(register):
        register("acme-files", lambda cfg: None, config=RootConfig, summary="reads files")
        register("acme-generated", lambda: None, summary="generated")
        register("acme-package", lambda cfg: None, config=RootConfig, summary="package data", offline=True)

    import mona_kit_example

    cli_kit(toy_kit_with(plugin("acme", register_datasets=register_datasets), mona_kit_example))
    assert cli.main(["data", "list"]) == 0
    where = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "needs root" in where["acme-files"]
    assert "offline" in where["acme-generated"] and "offline" in where["acme-package"]
    assert "offline" in where["chirp-direction"]  # the example's generated dataset, shown as "needs root" before


def test_split_helpers_are_public_and_carve_and_cap():
    @config
    class AcmeSplitConfig(SplitOptions):
        noise: float = option(0.1, help="noise")

    def values(ds) -> set[int]:
        return {int(ds[i]["x"].item()) for i in range(len(ds))}

    numbered = TensorDictDataset({"x": torch.arange(40.0).reshape(40, 1, 1), "y": torch.zeros(40, dtype=torch.long)})
    cfg = AcmeSplitConfig(val_fraction=0.25, min_val=0, max_train=10, split_seed=3)
    data = assemble_task(toy_spec(), cfg, train=numbered, test=tensors(8))
    assert isinstance(data, TaskData) and (len(data.train), len(data.val), len(data.test)) == (10, 10, 8)
    assert not values(data.train) & values(data.val)  # validation is carved out of train, never shared
    again = assemble_task(toy_spec(), cfg, train=numbered, test=tensors(8))
    assert values(again.val) == values(data.val)  # seeded: the same carve every time
    other = assemble_task(toy_spec(), AcmeSplitConfig(val_fraction=0.25, min_val=0, split_seed=4), train=numbered,
                          test=tensors(8))
    assert values(other.val) != values(data.val)


# Run-config keys and the profile format -----------------------------------------------------------
def test_run_config_keys_and_profile_format_are_documented():
    table = RUNS_DOC.split("## The run config", 1)[1].split("\n## ", 1)[0]
    for cls in (RunConfig, TrainConfig, DiagnosticsConfig):
        for field in attrs.fields(cls):
            assert f"`{field.name}`" in table, f"docs/runs.md does not document {cls.__name__}.{field.name}"
    sweeps = RUNS_DOC.split("## Sweeps", 1)[1]
    for key in PROFILE_KEYS:
        assert f"{key}:" in sweeps, f"docs/runs.md's profile example lacks {key!r}"


@pytest.mark.parametrize("section,expected", [
    ("train", ["max_steps: int | None (>= 1) = None", "embedder_lr"]),
    ("diagnostics", ["reuse_every", "reuse_samples"]),
    ("run", ["threads: int | None (>= 1 and <= 1024) = None", "source: NAME", "see 'mona-kit describe train'"]),
    ("profile", [f"    {k}" for k in PROFILE_KEYS]),
])
def test_describe_answers_for_settings(cli_kit, capsys, section, expected):
    cli_kit(toy_kit_with())
    assert cli.main(["describe", section]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{section}  (settings)")
    for text in expected:
        assert text in out
    assert cli.main(["describe", section, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]


def test_describe_prints_tuple_ellipsis(cli_kit, capsys):
    @config
    class ShapeConfig:
        kernel: tuple[int, ...] = option((3, 3), help="kernel size per axis")

    def register_heads(register):
        register("acme-head", lambda cfg, *, task, body, embedder: None, role="head", config=ShapeConfig, summary="x")

    cli_kit(toy_kit_with(plugin("acme", register_embedders=register_heads)))
    assert cli.main(["describe", "acme-head"]) == 0
    out = capsys.readouterr().out
    assert "kernel: tuple[int, ...] = (3, 3)" in out and "Ellipsis" not in out


# Registration-time validation ---------------------------------------------------------------------
@config
class AcmeConfig:
    n: int = option(1, help="n")


@pytest.mark.parametrize("factory,with_config,expected", [
    (lambda config: None, False, r"its factory needs argument 'config' but no config class is registered.*pass config=YourConfigClass"),
    (lambda: None, True, r"config=AcmeConfig but its factory takes no argument for it"),
    (lambda cfg, extra: None, True, r"needs argument 'extra', which the core never passes"),
])
def test_a_factory_that_cannot_be_called_is_refused_at_registration(factory, with_config, expected):
    def register_datasets(register):
        register("acme-task", factory, summary="x", **({"config": AcmeConfig} if with_config else {}))

    with pytest.raises(PluginError, match=expected) as err:
        toy_kit_with(plugin("acme", register_datasets=register_datasets))
    assert "\n" not in str(err.value) and "acme registers dataset 'acme-task'" in str(err.value)


def test_embedder_context_keywords_are_accepted_without_a_config():
    def register_embedders(register):
        register("acme-embed", lambda *, task, body: None, summary="x")
        register("acme-head", lambda task, body, embedder: None, role="head", summary="x")

    kit = toy_kit_with(plugin("acme", register_embedders=register_embedders))
    assert "acme-embed" in kit.embedders.names() and "acme-head" in kit.heads.names()


@config
class AcmeFilesConfig:
    root: str = option(".", help="folder with the files")


@pytest.fixture
def wrong_type_kit(cli_kit):
    def register_datasets(register):
        register("acme-dict", lambda cfg: {"x": 1}, config=AcmeFilesConfig, summary="returns a dict")

    return cli_kit(toy_kit_with(plugin("acme", register_datasets=register_datasets)))


@pytest.mark.parametrize("argv", [
    ["data", "info", "acme-dict"],
    ["data", "verify", "acme-dict", "--root", "."],
    ["gap", "task=acme-dict", "backbone=toy-body", "source=toy-text", "--objectives", "toy-align-uniform"],
])
def test_a_factory_returning_the_wrong_type_is_one_line_in_every_verb(wrong_type_kit, capsys, argv):
    err = one_line_error(capsys, argv)
    assert "dataset 'acme-dict' (acme ((in-process)" in err and "returned dict, not a TaskData" in err
    assert "AttributeError" not in err


def test_data_info_fails_when_samples_contradict_the_spec(cli_kit, capsys):
    def make(cfg):
        bad = TensorDictDataset({"x": torch.zeros(4, 1, 16), "y": torch.zeros(4, dtype=torch.long)})
        return TaskData(spec=toy_spec(), train=bad, val=tensors(4), test=tensors(4))

    def register_datasets(register):
        register("acme-bad", make, config=AcmeConfig, summary="x shapes disagree with the spec")
        register("acme-good", lambda cfg: TaskData(spec=toy_spec(), train=tensors(4), val=tensors(4, 1),
                                                   test=tensors(4, 2)), config=AcmeConfig, summary="fine")

    cli_kit(toy_kit_with(plugin("acme", register_datasets=register_datasets)))
    assert cli.main(["data", "info", "acme-good"]) == 0
    capsys.readouterr()
    assert cli.main(["data", "info", "acme-bad"]) == 2
    captured = capsys.readouterr()
    assert re.search(r"train +4 samples +x \(1, 16\)", captured.out)  # what it holds is still shown
    assert "'x' has shape (1, 16), the spec says (1, 32)" in captured.err and captured.err.count("\n") == 1


# Plugin loading -----------------------------------------------------------------------------------
def test_a_hook_that_raises_points_at_mona_kit_plugins():
    def register_datasets(register):
        raise KeyError("missing-table")

    with pytest.raises(PluginError) as err:
        load_kit(entry_points=False, extra=[plugin("acme", register_datasets=register_datasets)])
    message = str(err.value)
    assert "raised in register_datasets: KeyError: 'missing-table'" in message
    assert "leave it out: MONA_KIT_PLUGINS=none" in message and "\n" not in message


def test_a_one_line_error_from_a_hook_also_points_at_mona_kit_plugins():
    def register_datasets(register):
        raise ConfigError("acme needs ACME_HOME set.")

    with pytest.raises(ConfigError, match=r"acme needs ACME_HOME set\. Fix or uninstall plugin 'acme'.*MONA_KIT_PLUGINS="):
        load_kit(entry_points=False, extra=[plugin("acme", register_datasets=register_datasets)])


@pytest.fixture
def example_installed():
    from importlib.metadata import entry_points

    if "example" not in {ep.name for ep in entry_points(group="mona_kit")}:
        pytest.skip("the example plugin is not installed in this environment (install.sh installs it)")


def test_a_typo_in_mona_kit_plugins_is_an_error(example_installed, monkeypatch):
    monkeypatch.setenv("MONA_KIT_PLUGINS", "exmaple")
    with pytest.raises(PluginError, match=r"MONA_KIT_PLUGINS names 'exmaple', which no installed plugin provides\. "
                                          r"Did you mean 'example'\?"):
        load_kit()
    monkeypatch.setenv("MONA_KIT_PLUGINS", "example")
    assert "chirp-direction" in load_kit().datasets.names()


def test_describe_names_the_plugin_left_out_instead_of_an_unrelated_name(example_installed, monkeypatch):
    monkeypatch.setenv("MONA_KIT_PLUGINS", "none")
    with pytest.raises(UnknownNameError) as err:
        load_kit().find("stft-patch")
    message = str(err.value)
    assert "leaves out installed plugin(s) example (mona-kit-example" in message
    assert "Did you mean" not in message  # before: 'scratch', 'grid2d-patch'


# Checkpoint retention -----------------------------------------------------------------------------
def write_config(tmp_path: Path, name: str) -> Path:
    cfg = {"task": {"name": "toy-seq", "n_train": 32}, "backbone": "toy-body", "source": "toy-text",
           "method": "finetune", "train": {"epochs": 1, "batch_size": 16}, "output_dir": str(tmp_path / "runs"),
           "run_name": name, "checkpoint_every": 1}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_a_finished_run_keeps_only_the_final_weights_unless_asked(cli_kit, tmp_path, capsys):
    cli_kit(toy_kit_with())
    for keep in ("final", "all", "none"):
        argv = ["run", str(write_config(tmp_path, keep)), "--no-progress", "--no-plots"]
        assert cli.main(argv + ([] if keep == "final" else ["--checkpoints", keep])) == 0, capsys.readouterr().err
    kept = {k: sorted(p.name for p in (tmp_path / "runs" / k / "checkpoints").glob("*"))
            for k in ("final", "all")}
    assert kept["final"] == ["progress.json", "results-partial.json", "stage-1.safetensors"]  # finetune, evaluate
    assert {"stage-0.safetensors", "stage-1-start.pt"} <= set(kept["all"])
    assert not (tmp_path / "runs" / "none" / "checkpoints").exists()
    assert (tmp_path / "runs" / "none" / "results.json").is_file()
    capsys.readouterr()
    # What is kept is what resume needs: resuming the finished run still works.
    assert cli.main(["run", "--resume", str(tmp_path / "runs" / "final"), "--no-progress"]) == 0, capsys.readouterr().err


def test_checkpoint_retention_is_documented():
    assert "--checkpoints" in RUNS_DOC and "`final` (default)" in RUNS_DOC
    assert "checkpoints=" in (ROOT / "mona_kit" / "api_fit.py").read_text()
