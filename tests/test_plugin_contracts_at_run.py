"""A third party's plugin that breaks a contract is one line naming it when a run starts, not a
traceback from deep in the runner or in a method that uses it (found by a plugin-author walkthrough):
a dataset that returns one object as two splits, a method whose stages() yields something else,
an objective whose value is no one-element tensor."""

from __future__ import annotations

import pytest
import torch
import yaml

from mona_kit.api import DistanceObjective, Method, TaskData
from mona_kit.errors import PluginError
from test_plugin_author import AcmeConfig, one_line_error, plugin, tensors, toy_spec
from test_plugin_author import toy_kit_with as kit_with


def run_argv(tmp_path, **keys) -> list[str]:
    cfg = {"task": {"name": "toy-seq", "n_train": 32}, "backbone": "toy-body", "source": "toy-text", "method": "finetune",
           "train": {"epochs": 1, "batch_size": 16}, "output_dir": str(tmp_path / "runs"), "run_name": "r", **keys}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return ["run", str(path), "--no-progress", "--no-plots"]


@pytest.mark.parametrize("same", ["val", "test"])
def test_a_dataset_giving_one_object_as_two_splits_is_refused_before_training(cli_kit, capsys, tmp_path, same):
    def make(cfg):
        train = tensors(8)
        splits = {"train": train, "val": tensors(4, 1), "test": tensors(4, 2)}
        splits[same] = train if same == "val" else splits["val"]
        return TaskData(spec=toy_spec(), **splits)

    cli_kit(kit_with(plugin("acme", register_datasets=lambda register: register("acme-same", make, config=AcmeConfig,
                                                                                 summary="reuses a split"))))
    err = one_line_error(capsys, run_argv(tmp_path, task="acme-same"))
    pair = "train and val" if same == "val" else "val and test"
    assert "dataset 'acme-same' (acme ((in-process)" in err and f"gives the same object as its {pair} splits" in err
    assert not (tmp_path / "runs").exists()  # refused before the run folder


class WordsMethod(Method):
    def stages(self, session):
        return "finetune"  # a name, not Stage objects


def test_a_method_whose_stages_are_not_stage_objects_is_named(cli_kit, capsys, tmp_path):
    cli_kit(kit_with(plugin("acme", register_methods=lambda register: register("acme-words", lambda: WordsMethod(),
                                                                               summary="stages are words"))))
    err = one_line_error(capsys, run_argv(tmp_path, method="acme-words"))
    assert "method 'acme-words' (acme ((in-process)" in err and "stages() yielded str 'f'" in err
    assert not (tmp_path / "runs").exists()


class FloatDistance(DistanceObjective):
    def forward(self, xs, ys, xt, yt):
        return float((xs.mean(0) - xt.mean(0)).pow(2).sum())  # a number, no gradient


class VectorDistance(DistanceObjective):
    def forward(self, xs, ys, xt, yt):
        return (xs.mean(0) - xt.mean(0)).pow(2)  # one value per feature, not a loss


@pytest.mark.parametrize("cls, got", [(FloatDistance, "returned float"), (VectorDistance, r"returned a tensor of shape \[4\]")])
def test_an_objective_whose_value_is_no_scalar_tensor_is_named_wherever_it_is_called(cls, got):
    kit = kit_with(plugin("acme", register_objectives=lambda register: register("acme-dist", lambda: cls(), role="distance",
                                                                                 summary="bad value")))
    objective = kit.build_objective("acme-dist", "distance", purpose="a test")
    xs, xt = torch.randn(6, 4), torch.randn(5, 4)
    with pytest.raises(PluginError, match=r"objective 'acme-dist' \(acme \(\(in-process\).*" + got):
        objective(xs, None, xt, None)
    with pytest.raises(PluginError, match="not a one-element tensor"):
        objective.bind_source(xs, None)(xt)  # the default bind_source goes through the same call


class PerSampleLoss(torch.nn.Module):
    def forward(self, logits, y):
        return torch.nn.functional.cross_entropy(logits, y, reduction="none")  # one value per sample


def test_a_task_loss_that_is_not_reduced_is_named_before_training(cli_kit, capsys, tmp_path):
    def register_objectives(register):
        register("acme-per-sample", lambda: PerSampleLoss(), role="task-loss", summary="reduction none")

    def register_datasets(register):
        register("acme-task", lambda cfg: TaskData(spec=toy_spec(loss="acme-per-sample"), train=tensors(8),
                                                   val=tensors(4, 1), test=tensors(4, 2)), config=AcmeConfig, summary="x")

    cli_kit(kit_with(plugin("acme", register_objectives=register_objectives, register_datasets=register_datasets)))
    err = one_line_error(capsys, run_argv(tmp_path, task="acme-task"))
    assert "objective 'acme-per-sample' (acme ((in-process)" in err and "returned a tensor of shape [2]" in err
    assert not (tmp_path / "runs").exists()
