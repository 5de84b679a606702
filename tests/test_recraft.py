"""RECRAFT: each stage's objective against a hand computation, the method end to end through the CLI,
and resume after an interruption (between stages and inside each stage) to the same metrics."""

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from mona_plugins.methods.recraft import (
    RecraftConfig,
    average_prediction_entropy,
    gradient_norm_penalty,
    label_matching_loss,
    source_head_terms,
)

from mona_kit.runconfig import RunConfig
from mona_kit.runner import run


# Objectives -----------------------------------------------------------------------------------
def test_label_matching_loss_is_the_entropy_of_the_averaged_prediction():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0], [-1.0, 0.0, 3.0], [0.0, 0.0, 0.0]])
    probs = [[math.exp(v) / sum(math.exp(u) for u in row) for v in row] for row in logits.tolist()]
    mean = [sum(p[k] for p in probs) / len(probs) for k in range(3)]
    entropy = -sum(m * math.log(m + 1e-10) for m in mean)
    assert average_prediction_entropy(logits).item() == pytest.approx(entropy, rel=1e-6)
    assert label_matching_loss(logits, 0.25).item() == pytest.approx(0.25 * entropy, rel=1e-6)
    # Softmax is applied once: the averaged *prediction*, not the average of twice-softmaxed rows.
    twice = torch.softmax(torch.softmax(logits, -1), -1).mean(0)
    assert average_prediction_entropy(logits).item() != pytest.approx(-(twice * twice.log()).sum().item(), rel=1e-3)
    # Minimal (0) when every sample confidently predicts the same source class; maximal (log K) when uniform.
    assert average_prediction_entropy(torch.tensor([[50.0, 0, 0], [40.0, 0, 0]])).item() == pytest.approx(0.0, abs=1e-6)
    assert average_prediction_entropy(torch.zeros(5, 3)).item() == pytest.approx(math.log(3), rel=1e-6)
    # Confident but disagreeing predictions still have a high averaged entropy (the point of averaging).
    assert average_prediction_entropy(torch.tensor([[50.0, 0, 0], [0, 50.0, 0]])).item() == pytest.approx(math.log(2), rel=1e-6)


def test_unlabelled_otdd_equals_otdd_with_a_single_class(kit):
    torch.manual_seed(0)
    xs, xt = torch.randn(40, 6), torch.randn(24, 6) + 0.5
    ys = torch.randint(0, 4, (40,))
    for mode in ("per-class", "joint"):
        otdd = kit.build_objective("otdd", "distance", {"mode": mode}, purpose="test")
        unlabelled = otdd(xs, None, xt, None)
        single = otdd(xs, torch.zeros(40, dtype=torch.long), xt, torch.zeros(24, dtype=torch.long))
        bound = otdd.bind_source(xs, None)(xt, None)
        assert unlabelled.item() == pytest.approx(single.item(), rel=1e-9, abs=1e-12)
        assert bound.item() == pytest.approx(single.item(), rel=1e-9, abs=1e-12)
        assert unlabelled.item() > 0
        # Source labels do matter when given: unlabelled OT is a different distance.
        assert otdd(xs, ys, xt, None).item() != pytest.approx(unlabelled.item(), rel=1e-3)


def test_gradient_norm_penalty_is_zero_below_tau_and_positive_above():
    norms = torch.tensor([0.1, 0.3, 0.4])
    assert gradient_norm_penalty(norms, tau=0.4, rho=100.0).item() == 0.0
    above = torch.tensor([0.1, 0.6, 1.4])
    # (rho / N) * sum max(0, n - tau)^2 = 100/3 * (0.2^2 + 1.0^2)
    assert gradient_norm_penalty(above, tau=0.4, rho=100.0).item() == pytest.approx(100 / 3 * (0.04 + 1.0), rel=1e-6)
    assert gradient_norm_penalty(above, tau=0.4, rho=0.0).item() == 0.0


def test_source_head_penalty_uses_the_gradient_with_respect_to_the_embedded_tokens():
    torch.manual_seed(0)
    body = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh())
    head = torch.nn.Linear(8, 3)
    tokens, y = torch.randn(5, 4, 8), torch.randint(0, 3, (5,))
    ce, pen = source_head_terms(body, head, tokens, None, y, penalty=True, tau=0.0, rho=1.0)
    z = tokens.clone().requires_grad_(True)
    ref = torch.nn.functional.cross_entropy(head(body(z).mean(1)), y)
    (g,) = torch.autograd.grad(ref, z)
    assert ce.item() == pytest.approx(ref.item(), rel=1e-6)
    assert pen.item() == pytest.approx((g.flatten(1).norm(dim=1) ** 2).mean().item(), rel=1e-5)
    _, off = source_head_terms(body, head, tokens, None, y, penalty=True, tau=1e6, rho=100.0)
    assert off.item() == 0.0
    pen.backward()  # the penalty trains the head (a double backward through the body)
    assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0


def test_defaults_are_the_reference_values():
    c = RecraftConfig()
    assert (c.tau, c.rho, c.head_epochs, c.penalty_start_epoch, c.objective, c.align_epochs) == (0.4, 100.0, 20, 10, "otdd", 60)
    assert (c.label_epochs, c.label_max_samples, c.train_source_head, c.pseudo_label_k) == (5, 20, True, 10)


# End to end -----------------------------------------------------------------------------------
FAST = {"head_epochs": 2, "penalty_start_epoch": 1, "head_batch_size": 16, "max_source": 32, "align_epochs": 2,
        "target_samples": 32, "label_epochs": 1, "label_max_samples": 8}
SMALL = {"max_train": 32, "max_val": 16, "max_test": 16}
GENERATED = {"n_train": 60, "n_test": 20, "resolution": 32}  # the generated PDE tasks: a few samples, made fast


def main_table_tasks() -> dict[str, dict]:
    """Every task of the main reproduction profile, with its embedder, shrunk to a few samples (issue 16:
    recraft must run on every main-table task), plus gunpoint (a UCR set with a fixed budget)."""
    profile = yaml.safe_load((Path(__file__).parents[1] / "benchmarks" / "profiles" / "main-cpu.yaml").read_text())
    tasks = {"gunpoint": {"task": {"name": "gunpoint", **SMALL}}}
    for label, cfg in profile["tasks"].items():
        task = cfg["task"] if isinstance(cfg["task"], dict) else {"name": cfg["task"]}
        name = task["name"]
        shrink = {**SMALL, **GENERATED} if name in ("advection-1d", "diffusion-reaction-1d") else SMALL
        tasks[label] = {"task": {"name": name, **shrink}, "embedder": cfg["embedder"]}
    return tasks


TASKS = main_table_tasks()


@pytest.mark.parametrize("task", list(TASKS))
def test_cli_run_method_recraft(tmp_path, monkeypatch, task):
    from mona_kit import cli

    monkeypatch.setenv("MONA_KIT_PLUGINS", "none")
    cfg = {
        **TASKS[task], "backbone": "tiny-bert", "method": {"name": "recraft", **FAST},
        "source": {"name": "rotten-tomatoes", "max_per_class": 16}, "train": {"epochs": 1, "batch_size": 16},
        "output_dir": str(tmp_path), "run_name": "r",
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert cli.main(["run", str(path), "method=recraft", "--no-progress", "--no-plots"]) == 0
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    assert results["method"] == "recraft" and results["task"] == TASKS[task]["task"]["name"]  # darcy-16-p2 runs darcy-16
    metric = results["metric"]
    assert math.isfinite(results["val"][metric]) and math.isfinite(results["test"][metric])
    events = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    stages = [e["stage"] for e in events if e.get("event") == "stage-start"]
    assert stages == ["source-head", "align", "label-match", "finetune", "evaluate"]
    penalties = [e["penalty"] for e in events if e.get("stage") == "source-head" and "penalty" in e]
    assert penalties[0] == 0.0  # epoch 0: cross-entropy only
    assert all(math.isfinite(e["loss"]) for e in events if e.get("stage") == "label-match" and "loss" in e)
    # The finetune stage selected on validation, never on test.
    assert results["plateau"]["finetune"]["selection"] in ("validation", "fixed-budget")


# Resume ---------------------------------------------------------------------------------------
class Killed(Exception):
    pass


@pytest.fixture
def toy_objectives_kit():
    import toy_plugin

    from mona_kit.kit import load_kit

    return load_kit(builtins=["mona_plugins.methods", "mona_plugins.objectives"], entry_points=False, extra=[toy_plugin])


def toy_config(tmp_path, name):
    return RunConfig.from_dict({
        "task": {"name": "toy-seq", "n_train": 48}, "backbone": "toy-body", "source": "toy-text",
        "method": {"name": "recraft", **FAST, "head_epochs": 3, "penalty_start_epoch": 1, "head_batch_size": 8,
                   "align_epochs": 4, "label_epochs": 2},
        "train": {"epochs": 2, "batch_size": 16}, "output_dir": str(tmp_path), "run_name": name, "checkpoint_every": 2,
    })


@pytest.mark.parametrize("kill_stage,kill_after", [
    ("source-head", 5), ("align", 3), ("label-match", 3), ("label-match", "stage-start"), ("finetune", 3),
])
def test_resume_matches_uninterrupted(toy_objectives_kit, tmp_path, monkeypatch, kill_stage, kill_after):
    kit = toy_objectives_kit
    reference = json.loads((run(kit, toy_config(tmp_path, "ref"), progress=False) / "results.json").read_text())

    from mona_kit.engine import Session

    original_log = Session.log
    seen = {"n": 0}

    def dying_log(self, **event):
        original_log(self, **event)
        if event.get("stage") != kill_stage:
            return
        if kill_after == "stage-start":  # between stages: the previous one is recorded as done
            if event.get("event") == "stage-start":
                raise Killed()
        elif ("loss" in event or "distance" in event) and "split" not in event:
            seen["n"] += 1
            if seen["n"] == kill_after:
                raise Killed()

    monkeypatch.setattr(Session, "log", dying_log)
    with pytest.raises(Killed):
        run(kit, toy_config(tmp_path, "killed"), progress=False)
    monkeypatch.setattr(Session, "log", original_log)
    run_dir = tmp_path / "killed"
    assert not (run_dir / "results.json").exists()
    torch.manual_seed(12345)  # resuming must not depend on the state of the process
    resumed = json.loads((run(kit, toy_config(tmp_path, "killed"), progress=False, resume=run_dir) / "results.json").read_text())
    assert resumed["test"] == reference["test"] and resumed["val"] == reference["val"]
    if kill_after != "stage-start" and kill_stage != "finetune" and kill_after >= 2:
        events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert any(e.get("event") == "resumed" and e.get("stage") == kill_stage for e in events)


@pytest.mark.slow  # ~27 s: four interpreter start-ups
def test_sigkill_in_source_head_and_label_match_then_resume(tmp_path):
    """A real ``mona-kit run method=recraft`` killed with SIGKILL in stage 1 and again in stage 3."""
    from test_sigkill import events, finish, kill_during, mona_kit

    cache = tmp_path / "cache"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({
        "task": {"name": "gunpoint", "max_train": 32, "max_val": 16, "max_test": 16}, "backbone": "tiny-bert",
        "source": {"name": "rotten-tomatoes", "max_per_class": 12},
        "method": {"name": "recraft", **FAST, "head_batch_size": 4, "max_source": 24, "label_epochs": 2, "label_max_samples": 4},
        "train": {"epochs": 1, "batch_size": 8}, "checkpoint_every": 2, "threads": 1, "device": "cpu",
        "output_dir": str(tmp_path / "runs"),
    }))
    finish(mona_kit(str(cfg), "run_name=reference", cache=cache))
    reference = json.loads((tmp_path / "runs" / "reference" / "results.json").read_text())
    run_dir = tmp_path / "runs" / "killed"
    kill_during(mona_kit(str(cfg), "run_name=killed", cache=cache), run_dir, "source-head", 5)
    kill_during(mona_kit("--resume", str(run_dir), cache=cache), run_dir, "label-match", 3)
    assert not (run_dir / "results.json").exists()
    finish(mona_kit("--resume", str(run_dir), cache=cache))
    resumed = json.loads((run_dir / "results.json").read_text())
    assert resumed["test"] == reference["test"] and resumed["val"] == reference["val"]
    starts = [e["stage"] for e in events(run_dir) if e.get("event") == "stage-start"]
    assert starts.count("source-head") == 2 and starts.count("label-match") == 2
