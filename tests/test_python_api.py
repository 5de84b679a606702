"""The Python API (issue 13, item 1): docs/python-api.md's examples run as written, fit on a user's own
TensorDatasets learns, seeding and deterministic mode are scoped to the call, errors match the CLI."""

import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

import mona_kit
from mona_kit import MonaError, create_model, fit
from mona_kit.errors import ConfigError, DataError, UnknownNameError

DOC = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"
PUBLIC = {"FitResult", "MonaError", "TaskSpec", "__version__", "create_model", "fit", "hookimpl", "load_kit"}


def doc_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)


def test_doc_examples_run(tmp_path, monkeypatch, isolated_cache):
    """Every ```python block of docs/python-api.md, in order, in one namespace (as a reader would)."""
    blocks = doc_blocks()
    assert len(blocks) >= 6
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{DOC.name} block {i + 1}", "exec"), namespace)  # noqa: S102 - the doc examples
    assert (tmp_path / "runs" / "my-series" / "results.json").is_file()  # the one run the doc keeps
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]  # nothing else written


def splits(n: int = 400, seed: int = 0):
    """An easy task: is a noisy 1x16 series mostly positive?"""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 16, generator=g)
    y = (x.mean(dim=(1, 2)) > 0).long()
    a, b = int(n * 0.6), int(n * 0.8)
    return TensorDataset(x[:a], y[:a]), TensorDataset(x[a:b], y[a:b]), TensorDataset(x[b:], y[b:])


def test_fit_on_tensor_datasets_beats_the_mean_predictor(tmp_path):
    data = splits()
    common = {"backbone": "tiny-bert", "seed": 0, "train": {"epochs": 3, "lr": 1e-3}}
    trained = fit("finetune", data, **common)
    baseline = fit("mean", data, **common)  # the majority class
    assert trained.metric == "zero-one-error" and trained.task == "user-task"
    assert trained.test["zero-one-error"] < baseline.test["zero-one-error"] - 0.15
    assert trained.run_dir is None and isinstance(trained.model, torch.nn.Module)
    # The returned model is the one evaluated: its test error, recomputed here, is the reported one.
    x, y = data[2].tensors
    trained.model.eval()
    with torch.no_grad():
        error = (trained.model(x).argmax(1) != y).float().mean().item()
    assert error == pytest.approx(trained.test["zero-one-error"], abs=1e-6)


def test_user_data_stays_out_of_the_callers_kit():
    from mona_kit import load_kit

    kit = load_kit(entry_points=False)
    fit("finetune", splits(120), backbone="tiny-bert", train={"epochs": 1}, name="my-data", kit=kit)
    assert "my-data" not in kit.datasets


def test_regression_spec_inferred_from_float_targets():
    from mona_kit.api_data import user_task

    x = torch.randn(20, 2, 8)
    y = x.sum(dim=(1, 2))  # scalar float targets -> regression with one output
    data = user_task((TensorDataset(x, y),) * 3)
    assert (data.spec.task_type, data.spec.input_shape, data.spec.output_shape) == ("regression", (2, 8), (1,))
    assert (data.spec.loss, data.spec.metric) == ("mse", "nrmse")
    assert data.train[0]["y"].shape == (1,) and data.train[0]["x"].dtype == torch.float32


def _state():
    return random.random(), float(np.random.rand()), torch.rand(1).item()


@pytest.mark.parametrize("deterministic", [False, True])
def test_seeding_and_deterministic_mode_restored(deterministic):
    saved = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    threads = torch.get_num_threads()
    try:
        torch.use_deterministic_algorithms(deterministic)
        random.seed(7), np.random.seed(7), torch.manual_seed(7)
        expected = _state()
        random.seed(7), np.random.seed(7), torch.manual_seed(7)
        fit("finetune", splits(120), backbone="tiny-bert", train={"epochs": 1}, seed=3, deterministic=True, threads=1)
        assert torch.are_deterministic_algorithms_enabled() is deterministic
        assert not torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.get_num_threads() == threads
        assert _state() == expected
        # create_model seeds its new weights, and puts the caller's random stream back too.
        random.seed(7), np.random.seed(7), torch.manual_seed(7)
        create_model("tiny-bert", _spec(), seed=5)
        assert _state() == expected
        # ... also when the run fails after seeding (labels outside num_classes: a DataError).
        ones = TensorDataset(torch.randn(8, 1, 16), torch.ones(8, dtype=torch.long))
        random.seed(7), np.random.seed(7), torch.manual_seed(7)
        with pytest.raises(DataError):
            fit("finetune", (ones, ones, ones), backbone="tiny-bert", num_classes=1, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled() is deterministic
        assert _state() == expected
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])


def test_one_seed_scope_can_be_entered_again_and_nested():
    """A scope kept in a variable works for several blocks, and nested entries each put back their own state."""
    from mona_kit.api import seed_scope

    scope = seed_scope()
    torch.manual_seed(1)
    outer = torch.random.get_rng_state()
    for _ in range(2):
        with scope:
            torch.manual_seed(2)
            inner = torch.random.get_rng_state()
            with scope:
                torch.manual_seed(3)
            assert torch.equal(torch.random.get_rng_state(), inner)
        assert torch.equal(torch.random.get_rng_state(), outer)

    @seed_scope()
    def reseeds():
        torch.manual_seed(4)

    reseeds()
    reseeds()  # as a decorator too, as the generator-based version was
    assert torch.equal(torch.random.get_rng_state(), outer)


def _spec():
    from mona_kit import TaskSpec

    return TaskSpec(name="t", task_type="regression", input_shape=(1, 16), output_shape=(2,), loss="mse", metric="nrmse")


def _cli_error(capsys, *argv: str) -> str:
    from mona_kit.cli import main

    assert main(["run", "--no-progress", "--no-plots", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mona-kit: error: ")
    return err.removeprefix("mona-kit: error: ")


@pytest.mark.parametrize(
    ("argv", "call", "kind"),
    [
        (["method=finetun", "task=advection-1d", "backbone=tiny-bert"],
         lambda: fit("finetun", "advection-1d", backbone="tiny-bert"), UnknownNameError),
        (["method=finetune", "task=advection-1d", "backbone=tiny-bert", "train.epoch=1"],
         lambda: fit("finetune", "advection-1d", backbone="tiny-bert", **{"train.epoch": 1}), ConfigError),
        (["method=finetune", "task=advection-1d", "backbone=tiny-bert", "seed=-1"],
         lambda: fit("finetune", "advection-1d", backbone="tiny-bert", seed=-1), ConfigError),
    ],
)
def test_errors_are_the_clis_one_liners(argv, call, kind, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(kind) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    assert message == _cli_error(capsys, *argv)
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: fit("finetune", splits(40)[:2], backbone="tiny-bert"), "three datasets (train, val, test)"),
        (lambda: fit("finetune", "advection-1d", backbone="tiny-bert", task_type="regression"), "describe your own datasets"),
        (lambda: fit("finetune", splits(40), backbone="tiny-bert", name="advection-1d"), "is a registered dataset"),
        (lambda: fit("finetune", splits(40), backbone="tiny-bert", metric="accuracy"), "unknown metric 'accuracy'"),
        (lambda: fit("finetune", splits(40), backbone="tiny-bert", task_type="tabular"), "task_type 'tabular'"),
        (lambda: create_model("tiny-bert", _spec(), sed=1), "create_model has no option 'sed'. Did you mean 'seed'?"),
        (lambda: create_model("tiny-brt", _spec()), "unknown backbone 'tiny-brt'"),
    ],
)
def test_bad_input_is_a_mona_error(call, fragment):
    with pytest.raises(MonaError) as info:
        call()
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_public_names():
    assert set(mona_kit.__all__) == PUBLIC and len(mona_kit.__all__) == len(PUBLIC)
    for name in mona_kit.__all__:
        assert getattr(mona_kit, name) is not None
    namespace: dict = {}
    exec("from mona_kit import *", namespace)  # noqa: S102
    assert PUBLIC <= set(namespace)
    assert mona_kit.load_kit().backbones.get("tiny-bert").name == "tiny-bert"
