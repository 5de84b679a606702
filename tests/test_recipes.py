"""Recipes that converge: train-fitted normalisation, warm-up, early stopping and the plateau check."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from mona_kit.cli import main
from mona_kit.kit import load_kit
from mona_kit.normalize import Normalization, attach_input, attach_output, fit
from mona_kit.stages import plateau_record

TINY = ["backbone=tiny-bert", "--no-progress", "--no-plots", "train.batch_size=32"]


def test_pointwise_statistics_standardise_every_point():
    x = torch.randn(500, 1, 8) * torch.linspace(1, 5, 8) + torch.arange(8.0)
    stats = fit(x, "pointwise")
    z = (x - stats.mean) / stats.std
    assert torch.allclose(z.mean(0), torch.zeros(1, 8), atol=1e-5)
    assert torch.allclose(z.std(0, unbiased=False), torch.ones(1, 8), atol=1e-3)
    assert fit(x, "channel").mean.shape == (1, 1) and fit(x, "global").mean.ndim == 0
    assert fit(x, "none") is None


def test_a_constant_point_does_not_divide_by_zero():
    x = torch.randn(100, 1, 4)
    x[:, :, 0] = 0.0  # a Dirichlet boundary: the same value in every sample
    stats = fit(x, "pointwise")
    assert torch.isfinite((x - stats.mean) / stats.std).all()


def test_hooks_standardise_inputs_and_restore_outputs():
    x = torch.randn(64, 1, 6) * 3 + 7
    y = torch.randn(64, 1, 6) * 0.01 + 0.5
    inp, out = nn.Identity(), nn.Identity()
    attach_input(inp, fit(x, "pointwise"))
    attach_output(out, fit(y, "pointwise"))
    assert abs(float(inp(x).mean())) < 1e-4
    # A head that outputs zeros predicts the training mean, in original units.
    assert torch.allclose(out(torch.zeros(2, 1, 6)), y.mean(0).expand(2, 1, 6), atol=1e-6)
    # The statistics travel with the module's state (checkpoints carry them).
    assert {"input_mean", "input_std"} <= set(inp.state_dict())
    assert {"output_mean", "output_std"} <= set(out.state_dict())


def test_pointwise_statistics_follow_a_finer_grid():
    x = torch.randn(50, 1, 16, 16)
    inp = nn.Identity()
    attach_input(inp, fit(x, "pointwise"))
    assert inp(torch.randn(3, 1, 32, 32)).shape == (3, 1, 32, 32)


def test_auto_normalises_regression_but_not_labels():
    from mona_kit.data import TensorDictDataset

    ds = TensorDictDataset({"x": torch.randn(20, 1, 8), "y": torch.randn(20, 1, 8)})
    dense = Normalization.fit_task(ds, "dense1d", "auto", "auto")
    assert dense.describe() == {"inputs": "pointwise", "targets": "global"}
    labels = TensorDictDataset({"x": torch.randn(20, 1, 8), "y": torch.zeros(20, dtype=torch.long)})
    cls = Normalization.fit_task(labels, "classification", "auto", "pointwise")
    assert cls.describe() == {"inputs": "none", "targets": "none"}  # labels are never standardised


def _scores(values):
    return [(i + 1, v) for i, v in enumerate(values)]


def test_plateau_record_flags_a_curve_still_falling():
    falling = _scores([1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    rec = plateau_record(falling, 8, 0.25, 0.02, stopped_early=False)
    assert rec["plateaued"] is False and rec["improvement"] == pytest.approx((0.3 - 0.1) / 0.3)
    assert rec["best_step"] == 8  # still falling at its last evaluation
    flat = _scores([1.0, 0.5, 0.3, 0.3, 0.3, 0.3, 0.299, 0.2995])
    assert plateau_record(flat, 8, 0.25, 0.02, stopped_early=False)["plateaued"] is True
    dropped_then_flat = _scores([1.0, 0.5, 0.3, 0.3, 0.3, 0.3, 0.2, 0.2])
    rec = plateau_record(dropped_then_flat, 8, 0.25, 0.02, stopped_early=False)
    assert rec["plateaued"] is False and rec["best_step"] == 7  # flagged, but flat since step 7 (the first of the tie)
    # Early stopping means the metric stopped improving: a plateau by definition.
    assert plateau_record(falling, 20, 0.25, 0.02, stopped_early=True)["plateaued"] is True
    assert plateau_record([], 8, 0.25, 0.02, stopped_early=False)["plateaued"] is None


def test_a_gain_within_the_metrics_sampling_error_is_not_progress():
    # An error rate on 800 validation samples: 49 -> 46 errors in the last quarter is 6 % relative,
    # over the 2 % tolerance, but under the binomial standard error at 49/800 (about 6.8 samples).
    curve = _scores([0.30, 0.10, 0.07, 0.065, 0.0625, 0.06125, 0.0575, 0.0625])
    se = lambda value: math.sqrt(value * (1 - value) / 800)  # noqa: E731
    raw = plateau_record(curve, 8, 0.25, 0.02, stopped_early=False)
    assert raw["plateaued"] is False and raw["noise"] is None
    rec = plateau_record(curve, 8, 0.25, 0.02, stopped_early=False, standard_error=se)
    assert rec["plateaued"] is True and rec["noise"] == pytest.approx(se(0.06125))
    assert rec["improvement"] == raw["improvement"]
    # A gain beyond the error still counts: the same curve on 80,000 samples has not plateaued.
    many = plateau_record(curve, 8, 0.25, 0.02, stopped_early=False, standard_error=lambda v: math.sqrt(v * (1 - v) / 80000))
    assert many["plateaued"] is False


def test_the_noise_floor_reads_a_higher_is_better_metric_in_its_own_units():
    from mona_kit.plateau import sampling_error

    class Accuracy:
        higher_is_better = True

        def standard_error(self, value, n):
            assert 0 <= value <= 1  # the raw accuracy, not the negated score the loop ranks by
            return math.sqrt(value * (1 - value) / n)

    se = sampling_error(Accuracy(), 400)
    assert se(-0.9) == pytest.approx(0.015)  # lower-is-better score -0.9 = accuracy 0.9
    # Accuracy 0.9 -> 0.91 on 400 samples (4 samples) is within the error; 0.9 -> 0.95 is not.
    assert plateau_record(_scores([-0.5, -0.8, -0.9, -0.91]), 4, 0.25, 0.001, stopped_early=False, standard_error=se)["plateaued"]
    assert not plateau_record(_scores([-0.5, -0.8, -0.9, -0.95]), 4, 0.25, 0.001, stopped_early=False, standard_error=se)["plateaued"]
    assert sampling_error(Accuracy(), None) is None and sampling_error(object(), 400) is None


def test_only_error_rates_declare_a_standard_error():
    kit = load_kit(entry_points=False)
    error = kit.metrics.get("zero-one-error").build()
    assert error.standard_error(0.1, 400) == pytest.approx(0.015)
    assert kit.metrics.get("nrmse").build().standard_error(0.1, 400) is None
    assert kit.metrics.get("one-minus-auroc").build().standard_error(0.1, 400) is None


def test_warmup_then_cosine():
    from types import SimpleNamespace

    from mona_kit.stages import make_scheduler

    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    session = SimpleNamespace(config=SimpleNamespace(train=SimpleNamespace(warmup=0.1, scheduler="cosine")))
    sched = make_scheduler(session, opt, 100)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a <= b for a, b in zip(lrs[:10], lrs[1:10]))  # rising during warm-up
    assert lrs[-1] < 0.01 and all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # cosine decay after


def _results(run_dir):
    return json.loads((run_dir / "results.json").read_text())


def _events(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_a_normalised_run_reports_original_units_and_records_its_plateau(tmp_path):
    argv = ["run", "task=burgers-1d", "task.max_train=256", "method=finetune", "train.epochs=3", "train.lr=1e-3",
            "train.embedder_lr=1e-3", f"output_dir={tmp_path}", "run_name=r", *TINY]
    assert main(argv) == 0
    res = _results(tmp_path / "r")
    # Predicting the training mean scores nRMSE about 1.0 on burgers-1d; a learned model in the task's
    # own units scores far below it (a model left in standardised units would score about 1 or worse).
    assert 0 < res["test"]["nrmse"] < 0.6
    plateau = res["plateau"]["finetune"]
    assert plateau["selection"] == "validation" and plateau["budget"] == plateau["steps"] == 24
    assert isinstance(plateau["plateaued"], bool)
    assert plateau["val_samples"] == 200 and plateau["noise"] is None  # nRMSE declares no standard error


def test_a_classification_run_records_its_metrics_sampling_error(tmp_path):
    argv = ["run", "task=mnist-5k", "task.max_train=320", "method=finetune", "train.epochs=2",
            f"output_dir={tmp_path}", "run_name=r", *TINY]
    assert main(argv) == 0
    plateau = _results(tmp_path / "r")["plateau"]["finetune"]
    n = plateau["val_samples"]
    assert n >= 100
    # The noise is the binomial error of the best validation error before the plateau window.
    cut = (1 - plateau["window"]) * plateau["budget"]
    before = min(e["zero-one-error"] for e in _events(tmp_path / "r")
                 if e.get("split") == "val" and e.get("stage") == "finetune" and e["step"] <= cut)
    assert plateau["noise"] == pytest.approx(math.sqrt(before * (1 - before) / n), rel=1e-6)


def test_early_stopping_ends_a_stage_that_stopped_improving(tmp_path):
    # lr 0 for the body and tiny for the rest: validation cannot improve, so patience 2 ends it.
    argv = ["run", "task=burgers-1d", "task.max_train=256", "method=finetune", "train.epochs=10",
            "train.lr=1e-12", "train.embedder_lr=1e-12", "train.patience=2", "train.normalize_targets=none",
            f"output_dir={tmp_path}", "run_name=r", *TINY]
    assert main(argv) == 0
    res = _results(tmp_path / "r")
    plateau = res["plateau"]["finetune"]
    assert plateau["stopped_early"] and plateau["plateaued"] and plateau["steps"] == 3 * 8 < plateau["budget"]
    assert any(e.get("event") == "early-stop" for e in _events(tmp_path / "r"))


def test_early_stopping_waits_for_patience_start(tmp_path):
    # The same stalled run, but early stopping may not end it before half its 80 steps.
    argv = ["run", "task=burgers-1d", "task.max_train=256", "method=finetune", "train.epochs=10",
            "train.lr=1e-12", "train.embedder_lr=1e-12", "train.patience=2", "train.patience_start=0.5",
            "train.normalize_targets=none", f"output_dir={tmp_path}", "run_name=r", *TINY]
    assert main(argv) == 0
    plateau = _results(tmp_path / "r")["plateau"]["finetune"]
    assert plateau["stopped_early"] and plateau["steps"] == 5 * 8 and plateau["budget"] == 80


def test_a_small_set_trains_its_whole_budget_without_selection(tmp_path):
    argv = ["run", "task=gunpoint", "method=finetune", "train.epochs=2", f"output_dir={tmp_path}", "run_name=r", *TINY]
    assert main(argv) == 0
    res = _results(tmp_path / "r")
    assert res["plateau"]["finetune"]["selection"] == "fixed-budget"
    assert not any(e.get("event") == "selected" for e in _events(tmp_path / "r"))
    assert math.isfinite(res["test"]["zero-one-error"])


def test_the_training_loss_is_taken_in_standardised_units():
    from mona_kit.normalize import StandardizedLoss

    y = torch.randn(32, 1, 8) * 1e-3 + 0.01  # Darcy-like: a small spread around a mean field
    stats = fit(y, "pointwise")
    mse = nn.MSELoss()
    pred = (y + 1e-4 * torch.randn_like(y)).requires_grad_()
    loss = StandardizedLoss(mse, stats)(pred, y)
    assert loss.item() == pytest.approx(mse((pred - stats.mean) / stats.std, (y - stats.mean) / stats.std).item())
    # The gradient reaching the head's standardised output is O(1), not scaled down by the spread.
    z = ((pred - stats.mean) / stats.std).detach().requires_grad_()
    StandardizedLoss(mse, stats)(z * stats.std + stats.mean, y).backward()
    raw = z.detach().clone().requires_grad_()
    mse(raw * stats.std + stats.mean, y).backward()
    assert z.grad.abs().mean() > 1e5 * raw.grad.abs().mean()


def test_bf16_autocast_restores_and_scores_in_fp32():
    """A target far from zero against its spread (diffusion-reaction-1d: 0.73 +- 0.0185) rounded to
    bf16 in original units moves in steps of 0.0039, a fifth of its standard deviation; the restore
    and the loss must see the head's small standardised differences."""
    from mona_kit.normalize import StandardizedLoss

    y = torch.randn(256, 1, 8, generator=torch.Generator().manual_seed(0)) * 0.0185 + 0.73
    stats = fit(y, "global")
    head = nn.Linear(1, 1)
    with torch.no_grad():
        head.weight.fill_(1.0)
        head.bias.zero_()
    attach_output(head, stats)
    z = torch.full((4, 1, 1), 0.0625)  # exact in bf16: a sixteenth of a standard deviation off the mean
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pred = head(z)
        loss = StandardizedLoss(nn.MSELoss(), stats)(pred, stats.mean.expand(4, 1, 1))
    assert pred.dtype == torch.float32
    assert torch.allclose(pred, stats.mean + 0.0625 * stats.std, rtol=0, atol=1e-6)  # bf16: 0.73 +- 0.002
    assert loss.item() == pytest.approx(0.0625**2, rel=1e-4)
