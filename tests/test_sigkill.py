"""A real ``mona-kit run`` killed with SIGKILL during MoNA's stage 1 and again during fine-tuning
resumes (``run --resume RUN_DIR``) to bitwise the same final metrics as an uninterrupted run.

Tiny offline first-party components (tiny-bert, GunPoint, a capped Rotten Tomatoes proxy) keep
each process to a few seconds; most of the time is interpreter and torch start-up.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

CONFIG = {
    "task": {"name": "gunpoint"},
    "backbone": "tiny-bert",
    "source": {"name": "rotten-tomatoes", "max_per_class": 20},
    "method": {"name": "mona", "meta_steps": 40, "source_batch_size": 8},
    "train": {"epochs": 8, "batch_size": 4},
    "checkpoint_every": 2,
    "threads": 1,
    "device": "cpu",
}


def mona_kit(*args, cache):
    env = {**os.environ, "MONA_KIT_CACHE": str(cache), "MONA_KIT_PLUGINS": "none", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "mona_kit", "run", *args, "--no-progress", "--no-plots"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def events(run_dir):
    from mona_kit.runs import RunDir

    return RunDir(run_dir).events()  # skips a line cut by the kill


def kill_during(proc, run_dir, stage, after_steps, timeout=60):
    """SIGKILL ``proc`` as soon as ``stage`` has logged ``after_steps`` training steps."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        steps = [e for e in events(run_dir) if e.get("stage") == stage and "loss" in e and "split" not in e]
        if len(steps) >= after_steps:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {stage} logged {after_steps} steps: {proc.stderr.read()}")
        time.sleep(0.005)
    proc.kill()
    pytest.fail(f"{stage} did not log {after_steps} steps within {timeout} s")


def finish(proc):
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return out


def test_sigkill_in_meta_align_and_finetune_then_resume(tmp_path):
    cache = tmp_path / "cache"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({**CONFIG, "output_dir": str(tmp_path / "runs")}))
    finish(mona_kit(str(cfg), "run_name=reference", cache=cache))
    reference = json.loads((tmp_path / "runs" / "reference" / "results.json").read_text())

    run_dir = tmp_path / "runs" / "killed"
    kill_during(mona_kit(str(cfg), "run_name=killed", cache=cache), run_dir, "meta-align", 3)
    assert not any(e.get("event") == "stage-end" and e["stage"] == "meta-align" for e in events(run_dir))
    kill_during(mona_kit("--resume", str(run_dir), cache=cache), run_dir, "finetune", 3)
    assert not any(e.get("event") == "stage-end" and e["stage"] == "finetune" for e in events(run_dir))
    assert not (run_dir / "results.json").exists()
    finish(mona_kit("--resume", str(run_dir), cache=cache))

    resumed = json.loads((run_dir / "results.json").read_text())
    assert resumed["test"] == reference["test"] and resumed["val"] == reference["val"]
    # Both kills really landed mid-stage.
    starts = [e["stage"] for e in events(run_dir) if e.get("event") == "stage-start"]
    assert starts.count("meta-align") == 2 and starts.count("finetune") == 2
    resumed_in = {e["stage"] for e in events(run_dir) if e.get("event") == "resumed"}
    assert resumed_in == {"meta-align", "finetune"}  # from the step-2 checkpoints, not from the stage starts
    assert not list(run_dir.rglob("*.tmp"))  # no temporary file survives a resumed run
