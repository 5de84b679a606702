"""Numerical faults, full disks and kills at every write: a run stops with one line naming the
step and the component, keeps its last good checkpoint, and resumes to the same metrics."""

import errno
import hashlib
import json
import os
import types

import pytest
import torch

import mona_kit.cli as cli
from mona_kit.errors import NumericalError
from mona_kit.hookspecs import hookimpl
from mona_kit.runconfig import RunConfig
from mona_kit.runner import run

# A target embedder whose backward turns NaN once armed: a finite loss with a non-finite gradient.
ARMED = {"on": False}


class _NanGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return g * float("nan") if ARMED["on"] else g


def _nan_grad_embedder(task, body):
    import toy_plugin

    inner = toy_plugin.ToySeqEmbedder(task, body)
    original = inner.forward
    inner.forward = lambda x: _NanGrad.apply(original(x))
    return inner


fault_plugin = types.ModuleType("fault_plugin")
fault_plugin.register_embedders = hookimpl(
    lambda register: register("nan-grad-embed", _nan_grad_embedder, summary="toy embedder with NaN gradients when armed",
                              input_ranks=(2,), body_families=("transformer",))
)


@pytest.fixture
def fault_kit():
    import toy_plugin

    from mona_kit.kit import load_kit

    ARMED["on"] = False
    yield load_kit(builtins=["mona_plugins.methods"], entry_points=False, extra=[toy_plugin, fault_plugin])
    ARMED["on"] = False


def toy_config(tmp_path, method="finetune", name="r", **extra):
    opts = {"name": method}
    if method == "mona":
        opts.update(objective="toy-align-uniform", meta_steps=6, warmup="none")
    return RunConfig.from_dict({
        "task": {"name": "toy-seq", "n_train": 48}, "backbone": "toy-body", "source": "toy-text", "method": opts,
        "embedder": "nan-grad-embed", "train": {"epochs": 2, "batch_size": 16}, "output_dir": str(tmp_path),
        "run_name": name, "checkpoint_every": 2, **extra,
    })


def arm_after(monkeypatch, stage, step):
    """Arm the NaN gradient once ``stage`` has logged training step ``step``."""
    from mona_kit.engine import Session

    original = Session.log

    def log(self, **event):
        original(self, **event)
        if event.get("stage") == stage and event.get("step") == step and "loss" in event:
            ARMED["on"] = True

    monkeypatch.setattr(Session, "log", log)


def snapshot(folder, skip_tmp=False):
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not (skip_tmp and p.name.endswith(".tmp"))
    }


@pytest.mark.parametrize("method,stage,after,message", [
    ("finetune", "finetune", 2, r"stage 'finetune': gradient of 'embedder\.proj\.weight' is nan at step 3 \(task toy-seq, method finetune\); lower train\.lr or set train\.on_nonfinite=skip\. Kept: this stage's checkpoint at step 2 \(no stage had finished\)\. To retry at a lower rate: mona-kit run --resume \S+/r train\.lr=VALUE \(restarts stage 'finetune' from the start of the run\)\."),
    ("mona", "meta-align", 2, r"stage 'meta-align': gradient of 'embedder\.proj\.weight' is nan at step 3 \(task toy-seq, method mona\); lower method\.inner_lr or method\.meta_lr or set train\.on_nonfinite=skip\. Kept: this stage's checkpoint at step 2 \(no stage had finished\)\. To retry at a lower rate: mona-kit run --resume \S+/r method\.inner_lr=VALUE \(restarts stage 'meta-align' from the start of the run\)\."),
])
def test_nonfinite_gradient_stops_with_the_parameter_name(fault_kit, tmp_path, monkeypatch, method, stage, after, message):
    arm_after(monkeypatch, stage, after)
    with pytest.raises(NumericalError, match=f"^{message}$"):
        run(fault_kit, toy_config(tmp_path, method), progress=False)
    ckpt = tmp_path / "r" / "checkpoints"
    pointer = json.loads((ckpt / "stage-0-latest.json").read_text())  # mona without warm-up: meta-align is stage 0
    assert pointer["step"] == 2  # the last good checkpoint, written before the fault
    from mona_kit.checkpoint import load_weights

    weights = load_weights(ckpt / f"stage-0-{pointer['slot']}.safetensors")
    assert all(torch.isfinite(v).all() for v in weights.values())
    assert not (tmp_path / "r" / "results.json").exists()


def test_nonfinite_gradient_through_the_cli_exits_2(fault_kit, tmp_path, monkeypatch, capsys):
    import yaml

    import mona_kit.kit

    monkeypatch.setattr(mona_kit.kit, "load_kit", lambda *a, **k: fault_kit)
    arm_after(monkeypatch, "finetune", 1)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(toy_config(tmp_path).to_plain()))
    assert cli.main(["run", str(cfg), "--no-progress", "--no-plots"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "gradient of 'embedder.proj.weight' is nan at step 2" in err


@pytest.mark.parametrize("method,stage", [("finetune", "finetune"), ("mona", "meta-align")])
def test_on_nonfinite_skip_skips_the_step(fault_kit, tmp_path, monkeypatch, method, stage):
    from mona_kit.engine import Session

    original = Session.log
    # NaN gradients on exactly one step: armed after step 2 is logged, disarmed after the next.
    def log(self, **event):
        original(self, **event)
        if event.get("stage") == stage and "loss" in event:
            ARMED["on"] = event.get("step") == 2
        if event.get("event") == "skipped-nonfinite-gradient":
            ARMED["on"] = False

    monkeypatch.setattr(Session, "log", log)
    config = toy_config(tmp_path, method, train={"epochs": 2, "batch_size": 16, "on_nonfinite": "skip"})
    path = run(fault_kit, config, progress=False)
    events = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    skipped = [e for e in events if e.get("event") == "skipped-nonfinite-gradient"]
    assert [e["parameter"] for e in skipped] == ["embedder.proj.weight"]
    results = json.loads((path / "results.json").read_text())
    assert all(torch.isfinite(torch.tensor(v)) for v in results["test"].values())


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_full_disk_keeps_the_previous_checkpoint(toy_kit, tmp_path, monkeypatch, capsys, failing):
    """ENOSPC on the 2nd mid-stage checkpoint: one-line exit 2, the 1st checkpoint byte-identical, no temp files."""
    import yaml

    import mona_kit.atomic_io as atomic_io
    import mona_kit.kit

    monkeypatch.setattr(mona_kit.kit, "load_kit", lambda *a, **k: toy_kit)
    cfg = tmp_path / "cfg.yaml"
    plain = toy_config(tmp_path).to_plain()
    cfg.write_text(yaml.safe_dump({**plain, "embedder": "auto"}))
    ckpt = tmp_path / "r" / "checkpoints"
    seen = {}
    real = getattr(os, failing)

    def full_disk(*args):
        target = str(args[-1]) if failing == "replace" else os.readlink(f"/proc/self/fd/{args[0]}")
        # Slot b holds step 2; the step-4 checkpoint goes to slot a and meets a full disk.
        if "stage-0-a" in target and "before" not in seen:
            seen["before"] = snapshot(ckpt, skip_tmp=True)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args)

    monkeypatch.setattr(atomic_io.os, failing, full_disk)
    assert cli.main(["run", str(cfg), "--no-progress", "--no-plots"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith(f"mona-kit: error: cannot write '{ckpt}/stage-0-")
    assert "No space left on device; free disk space" in err and "previous version of the file is intact" in err
    assert snapshot(ckpt) == seen["before"]  # byte-identical, and no temporary file left behind
    pointer = json.loads((ckpt / "stage-0-latest.json").read_text())
    monkeypatch.setattr(atomic_io.os, failing, real)
    assert cli.main(["run", "--resume", str(tmp_path / "r"), "--no-progress"]) == 0  # and the run resumes from it
    events = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert {"stage": "finetune", "step": pointer["step"], "event": "resumed"} in events


class Killed(BaseException):
    """Stands in for SIGKILL: unwinds through every ``except Exception``."""


def _count_replaces(monkeypatch, kill_at=None):
    import mona_kit.atomic_io as atomic_io

    real = os.replace
    calls = {"n": 0}

    def replace(src, dst):
        calls["n"] += 1
        if calls["n"] == kill_at:
            raise Killed()  # after the temp file is complete and fsynced, before the rename
        return real(src, dst)

    monkeypatch.setattr(atomic_io.os, "replace", replace)
    return calls


@pytest.mark.parametrize("every", [7, pytest.param(1, marks=pytest.mark.slow)])
def test_killed_at_any_write_resumes_to_the_same_metrics(toy_kit, tmp_path, monkeypatch, every):
    """A kill just before each atomic rename (every 7th one by default, all with -m slow) of a
    MoNA run (warm-up, meta-align, reset, fine-tune, evaluate) resumes to identical metrics."""

    def config(name):
        return RunConfig.from_dict({
            "task": {"name": "toy-seq", "n_train": 32}, "backbone": "toy-body", "source": "toy-text",
            "method": {"name": "mona", "objective": "toy-align-uniform", "meta_steps": 4},
            "train": {"epochs": 2, "batch_size": 16}, "output_dir": str(tmp_path), "run_name": name, "checkpoint_every": 2,
        })

    calls = _count_replaces(monkeypatch)
    reference = json.loads((run(toy_kit, config("ref"), progress=False) / "results.json").read_text())
    total = calls["n"]
    assert total > 20, total
    for k in range(2, total + 1, every):  # k=1 is config.yaml: nothing to resume yet
        name = f"k{k}"
        _count_replaces(monkeypatch, kill_at=k)
        with pytest.raises(Killed):
            run(toy_kit, config(name), progress=False)
        _count_replaces(monkeypatch)
        torch.manual_seed(k)  # resuming must not depend on the state of the process
        resumed = json.loads((run(toy_kit, config(name), progress=False, resume=tmp_path / name) / "results.json").read_text())
        assert (resumed["val"], resumed["test"]) == (reference["val"], reference["test"]), f"killed at write {k}"


@pytest.mark.parametrize("kill_stage", ["align", "refine"])
def test_orca_resume_matches_uninterrupted(tmp_path, monkeypatch, kill_stage):
    """Killed mid-alignment or mid-refinement, ORCA resumes from the stage's step-2 checkpoint to identical metrics."""
    from mona_kit.engine import Session
    from mona_kit.kit import load_kit

    kit = load_kit(entry_points=False)

    def config(name):
        return RunConfig.from_dict({
            "task": {"name": "gunpoint", "cache": False}, "backbone": "tiny-bert",
            "source": {"name": "rotten-tomatoes", "max_per_class": 20, "cache": False},
            "method": {"name": "orca", "objective": "mmd", "align_epochs": 6, "max_source": 40, "target_samples": 32},
            "train": {"epochs": 2, "batch_size": 8}, "device": "cpu", "output_dir": str(tmp_path), "run_name": name,
            "checkpoint_every": 2,
        })

    reference = json.loads((run(kit, config("ref"), progress=False) / "results.json").read_text())
    original = Session.log

    def dying_log(self, **event):
        original(self, **event)
        if event.get("stage") == kill_stage and event.get("step") == 3 and "split" not in event:
            raise Killed()

    monkeypatch.setattr(Session, "log", dying_log)
    with pytest.raises(Killed):
        run(kit, config("killed"), progress=False)
    monkeypatch.setattr(Session, "log", original)
    torch.manual_seed(99)
    resumed = json.loads((run(kit, config("killed"), progress=False, resume=tmp_path / "killed") / "results.json").read_text())
    assert (resumed["val"], resumed["test"]) == (reference["val"], reference["test"])
    events = [json.loads(line) for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert {"stage": kill_stage, "step": 2, "event": "resumed"} in events
