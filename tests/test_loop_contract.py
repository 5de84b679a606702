"""The resume and fault contract (``mona_kit.testing``) over every stage of every registered method,
and the one training loop behind it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from mona_kit.testing import check_nonfinite_stops, check_resume_bitwise


def contract_kit():
    import toy_plugin

    from mona_kit.kit import load_kit

    return load_kit(builtins=["mona_plugins.methods", "mona_plugins.objectives", "mona_plugins.embedders"],
                    entry_points=False, extra=[toy_plugin])


#: The smallest settings that still give every stage a few steps (each check runs a method several times).
OPTIONS = {
    "mona": {"objective": "toy-align-uniform", "meta_steps": 5},
    "mona-grad-align": {"objective": "toy-align-uniform", "meta_steps": 5},
    "orca": {"objective": "mmd", "align_epochs": 5, "max_source": 24, "target_samples": 16},
    "recraft": {"head_epochs": 2, "penalty_start_epoch": 1, "head_batch_size": 16, "max_source": 32, "align_epochs": 4,
                "target_samples": 16, "label_epochs": 1, "label_max_samples": 8},
    "cnn": {"channels": 4, "blocks": 1},
    "fno": {"width": 4, "modes": 4, "layers": 1},
}
#: Methods whose models need grid targets run on the toy dense task.
TASK = {"fno": "shift-field"}


def method_config(method: str) -> dict:
    return {
        "task": {"name": TASK.get(method, "toy-seq"), **({} if method in TASK else {"n_train": 40})},
        "backbone": "toy-body", "source": "toy-text", "method": {"name": method, **OPTIONS.get(method, {})},
        "train": {"epochs": 2, "batch_size": 16},
    }


METHODS = sorted(entry.name for entry in contract_kit().methods)
#: Over 5 s here; test_recraft.py's resume tests cover the same stages in the default run.
SLOW = {"recraft"}
CASES = [pytest.param(m, marks=pytest.mark.slow) if m in SLOW else m for m in METHODS]


@pytest.mark.parametrize("method", CASES)
def test_every_stage_resumes_bitwise(method, tmp_path):
    stages = check_resume_bitwise(contract_kit(), method_config(method), tmp_path)
    assert stages and list(stages)[-1] == "evaluate"


@pytest.mark.parametrize("method", METHODS)
def test_a_nan_loss_in_every_training_stage_stops_with_one_line(method, tmp_path):
    checked = check_nonfinite_stops(contract_kit(), method_config(method), tmp_path)
    trains = {"mean", "knn", "linear", "minirocket", "specialist"}  # closed-form fits: nothing steps
    assert bool(checked) == (method not in trains), checked


def test_there_is_one_training_loop():
    """Only mona_kit/loop.py calls ``optimizer.step()`` / ``.backward()`` on a loss; stages supply steps."""
    root = Path(__file__).resolve().parents[1]
    offenders = []
    for path in [*root.glob("mona_kit/**/*.py"), *root.glob("plugins/*/**/*.py")]:
        # diagnostics.py: the knowledge-reuse probe's L-BFGS solve of a convex fit, not a training stage;
        # precision.py: the loop's fp16 scaler steps (and skips) the optimiser on the loop's behalf.
        if path.name in ("loop.py", "diagnostics.py", "precision.py") or "testing" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("step", "backward", "zero_grad"):
                target = ast.unparse(node.func.value)
                if "optim" in target or node.func.attr == "backward":
                    offenders.append(f"{path.relative_to(root)}:{node.lineno} {ast.unparse(node)}")
    assert not offenders, offenders


def test_a_third_party_method_gets_the_contract_for_free(tmp_path):
    """The stage of docs/hooks.md, registered by a plugin module, passes both checks unchanged."""
    import types

    import attrs

    import toy_plugin

    from mona_kit.api import Method, TrainStage, hookimpl, load_kit

    @attrs.define(kw_only=True)
    class SmoothedStage(TrainStage):
        smoothing: float = 0.1

        def training_step(self, session, model, batch, step):
            batch = session.to_device(batch)
            logits = model(batch["x"])
            loss = session.task_loss(logits, batch["y"])
            smooth = -logits.log_softmax(-1).mean()
            return loss + self.smoothing * smooth, {"loss": loss.item(), "smooth": smooth.item()}

    class Smoothed(Method):
        def stages(self, session):
            return [SmoothedStage(name="smoothed")]

    plugin = types.ModuleType("smoothed_plugin")
    plugin.register_methods = hookimpl(lambda register: register("smoothed", Smoothed, summary="label smoothing"))
    kit = load_kit(entry_points=False, extra=[toy_plugin, plugin])
    config = {"task": {"name": "toy-seq", "n_train": 40}, "backbone": "toy-body", "method": "smoothed",
              "train": {"epochs": 2, "batch_size": 16}}
    assert check_resume_bitwise(kit, config, tmp_path / "resume") == {"smoothed": 6, "evaluate": 0}
    assert check_nonfinite_stops(kit, config, tmp_path / "nan") == ["smoothed"]
