"""python -m mona_kit.gpu_check: the plan, the one-line refusal without CUDA, a CPU rehearsal."""

import json
import subprocess
import sys

import pytest
import torch

from mona_kit import gpu_check
from mona_kit.kit import load_kit

NO_CUDA = not torch.cuda.is_available()


def test_plan_on_two_gpus_runs_everything():
    checks = gpu_check.plan_checks(["finetune", "mona"], device="cuda", gpu_count=2)
    assert [(c.kind, c.name, c.precision) for c in checks if c.kind == "method"] == [
        ("method", "finetune", "bf16"), ("method", "finetune", "fp16"), ("method", "mona", "bf16"), ("method", "mona", "fp16"),
    ]
    assert {c.kind for c in checks} == {"method", "benchmarks", "torchrun"}
    assert all(c.skip is None for c in checks)


def test_plan_says_why_a_check_cannot_run():
    one_gpu = gpu_check.plan_checks(["finetune"], device="cuda", gpu_count=1)
    assert [c.skip for c in one_gpu if c.kind == "torchrun"] == ["needs 2 GPUs, 1 visible"] * 2
    cpu = {(c.kind, c.precision): c.skip for c in gpu_check.plan_checks(["finetune"], device="cpu", gpu_count=0)}
    assert cpu[("method", "bf16")] is None and cpu[("method", "fp16")] == "fp16 needs a GPU"
    assert cpu[("benchmarks", "fp32")] == "GPU benchmarks need a GPU"


@pytest.mark.skipif(not NO_CUDA, reason="this machine has a GPU")
def test_without_cuda_it_stops_with_one_line():
    proc = subprocess.run([sys.executable, "-m", "mona_kit.gpu_check"], capture_output=True, text=True)
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert err.count("\n") == 0 and "no CUDA GPU is visible" in err and "Traceback" not in err


def test_dry_plan_covers_every_registered_method(capsys):
    assert gpu_check.main(["--device", "cpu", "--dry"]) == 0
    plan = json.loads(capsys.readouterr().out)
    methods = {c["name"] for c in plan if c["kind"] == "method"}
    assert methods == {e.name for e in load_kit().methods}
    assert {c["precision"] for c in plan if c["kind"] == "method"} == {"bf16", "fp16"}


def test_bad_arguments_are_one_line(capsys):
    assert gpu_check.main(["--device", "cpu", "--dry", "--methods", "finetuen"]) == 2
    assert "unknown method(s) ['finetuen']" in capsys.readouterr().err
    assert gpu_check.main(["--device", "cpu", "--dry", "--precisions", "fp8"]) == 2
    assert "--precisions takes fp32, bf16, fp16" in capsys.readouterr().err
    assert gpu_check.main(["--device", "cpu", "--dry", "--tasks", "darcy-16,darcy-61"]) == 2
    assert "--tasks takes registered datasets (mona-kit list datasets); got ['darcy-61']" in capsys.readouterr().err


def test_each_task_runs_a_method_on_every_task_it_accepts(tmp_path):
    kit, tasks = load_kit(), gpu_check.task_entries(["darcy-16", "gunpoint"])
    mean = gpu_check.run_method(kit, gpu_check.Check("method", "mean"), device="cpu", backbone="tiny-bert",
                                out=str(tmp_path), tasks=tasks, each_task=True)
    assert mean["ok"] and [r["task"] for r in mean["runs"]] == ["darcy-16", "gunpoint"] and mean["refused"] == []
    fno = gpu_check.run_method(kit, gpu_check.Check("method", "fno"), device="cpu", backbone="tiny-bert",
                               out=str(tmp_path), tasks=tasks, each_task=True)
    assert fno["ok"] and fno["task"] == "darcy-16" and [r["task"] for r in fno["refused"]] == ["gunpoint"]
    first = gpu_check.run_method(kit, gpu_check.Check("method", "mean"), device="cpu", backbone="tiny-bert",
                                 out=str(tmp_path / "first"), tasks=tasks[::-1])
    assert first["ok"] and first["task"] == "gunpoint" and "runs" not in first


def test_main_passes_tasks_through_and_records_them(tmp_path, capsys):
    out = tmp_path / "summary.json"
    code = gpu_check.main(["--device", "cpu", "--backbone", "tiny-bert", "--methods", "mean,fno", "--precisions", "fp32",
                           "--tasks", "gunpoint,darcy-16,gunpoint", "--each-task", "--no-benchmarks", "--out", str(out)])
    assert code == 0
    summary = json.loads(out.read_text())
    assert summary["tasks"] == ["gunpoint", "darcy-16"] and summary["each_task"] is True  # the repeat dropped
    mean, fno = (c for c in summary["checks"] if c["kind"] == "method")
    assert [r["task"] for r in mean["runs"]] == ["gunpoint", "darcy-16"] and mean["runs"][0]["steps"] == 0
    assert [r["task"] for r in fno["runs"]] == ["darcy-16"] and fno["refused"][0]["task"] == "gunpoint"
    # fp32 takes 4 steps (two epochs of 32 samples at batch 16); the validation passes count as none
    assert fno["runs"][0]["steps"] == 4 and fno["runs"][0]["skipped_steps"] == 0 and "warning" not in fno


def test_a_stage_whose_every_step_was_skipped_is_flagged(tmp_path):
    lines = [{"stage": "align", "event": "stage-start"}]
    lines += [{"stage": "align", "step": step, "epoch": 0, "loss": 2.0} for step in (1, 2)]  # trained
    lines += [{"stage": "finetune", "event": "stage-start"}]
    for step, event in ((1, "skipped-fp16-overflow"), (2, "skipped-nonfinite-loss"), (3, "skipped-nonfinite-gradient")):
        lines += [{"stage": "finetune", "step": step, "event": event},
                  {"stage": "finetune", "step": step, "epoch": 0, "loss": 1.0}]
    lines += [{"stage": "finetune", "step": 3, "epoch": 0, "split": "val", "loss": 1.0},  # a validation pass is no step
              {"stage": "finetune", "step": 3, "event": "plateau", "plateaued": False}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    steps = gpu_check.training_steps(tmp_path)
    assert steps == {"steps": 5, "skipped_steps": 3,
                     "stages": {"align": {"steps": 2, "skipped": 0}, "finetune": {"steps": 3, "skipped": 3}}}
    warning = gpu_check.untrained(steps)  # the run as a whole took 5 steps and skipped 3: still flagged
    assert "finetune (3 of 3)" in warning and "align" not in warning
    steps["stages"]["finetune"]["skipped"] = 2
    assert gpu_check.untrained(steps) is None
    assert gpu_check.untrained({"steps": 0, "skipped_steps": 0, "stages": {}}) is None  # a reference takes no steps


def test_a_multi_stage_method_counts_each_stage(tmp_path):
    orca = gpu_check.run_method(load_kit(), gpu_check.Check("method", "orca"), device="cpu", backbone="tiny-bert",
                                out=str(tmp_path))
    # alignment takes its own (short) options; the fine-tuning stage, "refine", runs to the check's cap
    assert orca["ok"] and "warning" not in orca
    assert orca["stages"] == {"align": {"steps": 2, "skipped": 0}, "refine": {"steps": 4, "skipped": 0}}
    assert orca["steps"] == 6 and orca["skipped_steps"] == 0


def test_fp16_gives_every_stage_more_steps():
    """Measured on the CPU with these options (fp32): every stage of ORCA, MoNA and RECRAFT takes 16 steps."""
    def options(method, precision):
        cfg = gpu_check.method_config(method, gpu_check.TASKS[0], device="cpu", precision=precision, backbone="tiny-bert", out="x")
        return cfg.method.options, cfg.train.max_steps, cfg.train.epochs

    assert options("orca", "bf16") == ({"align_epochs": 2, "max_source": 64, "target_samples": 32}, 4, 4)
    assert options("orca", "fp16") == ({"align_epochs": 16, "max_source": 64, "target_samples": 32}, 16, 16)
    assert options("mona", "fp16")[0] == {"meta_steps": 16, "warmup_epochs": 8}
    assert options("finetune", "fp16") == ({}, 16, 16)


@pytest.mark.slow
def test_cpu_rehearsal_writes_the_summary(tmp_path, capsys):
    out = tmp_path / "summary.json"
    code = gpu_check.main(["--device", "cpu", "--backbone", "tiny-bert", "--methods", "finetune,mona", "--precisions",
                           "bf16,fp16", "--no-benchmarks", "--out", str(out)])
    assert code == 0
    summary = json.loads(out.read_text())
    ran = [c for c in summary["checks"] if c["skip"] is None]
    assert [(c["name"], c["precision"]) for c in ran] == [("finetune", "bf16"), ("mona", "bf16")]
    assert all(c["ok"] and c["task"] == "darcy-16" and c["test"] >= 0 for c in ran)
    assert summary["passed"] is True
