"""Bad input to the Python API (fit, create_model, load_kit, TaskSpec): a one-line mona_kit error that says
what is wrong and how to fix it, never a bare TypeError/ValueError from deep inside, and nothing written."""

from __future__ import annotations

import attrs
import pytest
import torch
from torch.utils.data import TensorDataset

import mona_kit.runner
from mona_kit.api import TaskSpec, create_model, fit, load_kit
from mona_kit.errors import ConfigError, DataError

SPEC = TaskSpec(name="t", task_type="classification", input_shape=(3, 64), output_shape=(4,),
                loss="cross-entropy", metric="zero-one-error")
TINY = {"backbone": "tiny-bert", "seed": 0, "train": {"epochs": 1, "batch_size": 4}}


def splits(n: int = 8) -> tuple[TensorDataset, TensorDataset, TensorDataset]:
    x, y = torch.randn(n, 1, 16), torch.arange(n) % 3
    return (TensorDataset(x, y),) * 3


@pytest.fixture
def no_run(monkeypatch):
    """A runner that fails the test if fit gets as far as running (and so never writes anything)."""
    def refuse(*args, **kwargs):
        raise AssertionError("fit reached the runner: the bad argument was not refused up front")

    monkeypatch.setattr(mona_kit.runner, "run", refuse)


@pytest.mark.parametrize("run_dir", ["/", ".", ""])
def test_run_dir_without_a_folder_name_is_refused(run_dir, tmp_path, monkeypatch, isolated_cache):
    monkeypatch.chdir(tmp_path)
    if run_dir == "/":  # on a build without the check fit would write into /: stop it at the runner
        monkeypatch.setattr(mona_kit.runner, "run", lambda *a, **k: pytest.fail("fit ran with run_dir='/'"))
    before = sorted(tmp_path.iterdir())
    with pytest.raises(ConfigError, match="run_dir must name a folder"):
        fit("mean", splits(), run_dir=run_dir, **TINY)
    assert sorted(tmp_path.iterdir()) == before  # nothing written in the cwd


@pytest.mark.parametrize("change,phrase", [
    ({"input_shape": (3, -1)}, "input_shape must be a tuple of positive ints"),
    ({"input_shape": (3.5, 64)}, "input_shape must be a tuple of positive ints"),
    ({"input_shape": (0, 64)}, "input_shape must be a tuple of positive ints"),
    ({"input_shape": "3x64"}, "input_shape must be a tuple of positive ints"),
    ({"output_shape": (-5,)}, "output_shape must be a non-empty tuple of positive ints"),
    ({"output_shape": (0,)}, "output_shape must be a non-empty tuple of positive ints"),
    ({"output_shape": ()}, "output_shape must be a non-empty tuple of positive ints"),
    ({"output_shape": (4, 2)}, r"classification task's output_shape is \(num_classes,\)"),
    ({"task_type": "dense1d", "output_shape": (64,)}, r"dense1d task's output_shape is \(C, L\)"),
    ({"task_type": "cls"}, "task_type 'cls' is not one of .* Did you mean 'classification'"),
])
def test_task_spec_checks_its_fields(change, phrase):
    with pytest.raises(ConfigError, match=phrase):
        attrs.evolve(SPEC, **change)
    # What the registered tasks and the docs use still builds (a list of ints becomes a tuple).
    assert attrs.evolve(SPEC, input_shape=[3, 64]).input_shape == (3, 64)
    assert attrs.evolve(SPEC, task_type="dense2d", output_shape=(1, 8, 8)).output_shape == (1, 8, 8)
    assert attrs.evolve(SPEC, task_type="regression", output_shape=(2, 3)).output_shape == (2, 3)


def test_create_model_seed_is_bounded(kit):
    with pytest.raises(ConfigError, match=r"'seed' must be >= 0 and <= 2\*\*63 - 1"):
        create_model("tiny-bert", SPEC, seed=2**70, kit=kit)


def test_non_numeric_inputs_are_a_data_error(tmp_path, isolated_cache, no_run):
    with pytest.raises(DataError, match="must be numeric arrays or tensors"):
        fit("linear", ([("abc", 1)] * 4,) * 3, run_dir=tmp_path / "run", **TINY)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("call,phrase", [
    (lambda kit, tmp: fit("mean", splits(), name=5, kit=kit, **TINY), "fit's name= takes a str, got int"),
    (lambda kit, tmp: fit("mean", splits(), run_dir=5, kit=kit, **TINY), "fit's run_dir= takes a folder path"),
    (lambda kit, tmp: fit("mean", splits(), kit="x", **TINY), "fit's kit= takes a Kit"),
    (lambda kit, tmp: create_model("tiny-bert", SPEC, kit=5), "create_model's kit= takes a Kit"),
    (lambda kit, tmp: fit("mean", splits(), run_dir=tmp / "run", overwrite="no", kit=kit, **TINY),
     "fit's overwrite= takes True or False, got str"),
])
def test_wrong_argument_types_are_named(call, phrase, kit, tmp_path, no_run):
    with pytest.raises(ConfigError, match=phrase):
        call(kit, tmp_path)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("extra", [["nosuchmodule"], "os"])
def test_load_kit_extra_takes_plugin_objects_not_names(extra):
    with pytest.raises(ConfigError, match="extra= takes a list of imported plugin modules or objects"):
        load_kit(entry_points=False, extra=extra)


def test_bytes_task_name_is_refused(kit, no_run):
    with pytest.raises(ConfigError, match="is bytes; a task name is a str"):
        fit("linear", b"gunpoint", kit=kit, **TINY)


@pytest.mark.parametrize("num_classes", [0, -1])
def test_num_classes_must_be_positive(num_classes, kit, no_run):
    with pytest.raises(ConfigError, match="num_classes must be >= 1"):
        fit("mean", splits(), num_classes=num_classes, kit=kit, **TINY)
