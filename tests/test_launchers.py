"""Sweep launchers (issue 17, item 1): cells run N at once on this machine or as submitit jobs; the
table does not depend on the launcher; a failed cell is a record; an interrupt ends running cells;
bad launcher settings are one line, exit 2, before any cell starts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import mona_kit.cli as cli
from mona_kit import sweep
from mona_kit.errors import ConfigError
from mona_kit.launchers import LocalLauncher, check_submitit_section, cpu_count, thread_env

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "benchmarks" / "profiles" / "tiny.yaml"


@pytest.fixture
def in_process_kit(kit, monkeypatch):
    import mona_kit.kit

    monkeypatch.setattr(mona_kit.kit, "load_kit", lambda *a, **k: kit)
    return kit


def _sweep(profile: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "mona_kit", "sweep", str(profile), "--output", str(out), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)


def _table(out: Path) -> str:
    """table.md without its 'Produced by' line (the same command either way, but keep it honest)."""
    return (out / "table.md").read_text().split("\n\nProduced by:")[0]


def _tiny_table_both_ways(tmp_path: Path, *only: str) -> tuple[str, str, Path]:
    pytest.importorskip("submitit")
    local, remote = tmp_path / "local", tmp_path / "submitit"
    a = _sweep(TINY, local, "--launcher", "local", "--jobs", "2", *only)
    assert a.returncode == 0, a.stderr[-2000:]
    b = _sweep(TINY, remote, "--launcher", "submitit", "--submitit", "cluster=local", "--jobs", "2", *only)
    assert b.returncode == 0, b.stderr[-2000:]
    assert "submitit launcher (local)" in b.stdout + b.stderr
    assert list((remote / "submitit").glob("*/*_result.pkl")), "the cells did not run as submitit jobs"
    return _table(local), _table(remote), remote


def test_submitit_local_executor_gives_the_local_launchers_table(tmp_path):
    """The tiny profile's fine-tuning cells (the whole profile: the slow test below): the same table
    through either launcher, and each cell's metric bitwise the same (runs are deterministic on the CPU)."""
    ours, theirs, remote = _tiny_table_both_ways(tmp_path, "--only", "finetune")
    assert "| finetune |" in ours and (tmp_path / "local" / "report.html").is_file()
    assert ours == theirs
    for results in (tmp_path / "local").glob("cells/*/*/seed*/results.json"):
        twin = remote / results.relative_to(tmp_path / "local")
        assert json.loads(twin.read_text())["test"] == json.loads(results.read_text())["test"]


@pytest.mark.slow
def test_the_whole_tiny_profile_gives_one_table_through_either_launcher(tmp_path):
    ours, theirs, _ = _tiny_table_both_ways(tmp_path)
    assert ours == theirs and "| mona |" in ours and "| orca-" in ours


def test_a_failed_submitit_job_is_reported_and_the_cell_retried(tmp_path):
    """A cell whose job fails is one FAILED line and exit 1; the next invocation runs it again."""
    pytest.importorskip("submitit")
    out = tmp_path / "out"
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump({
        "name": "t", "output": str(out), "seeds": [0],
        "base": {"backbone": "tiny-bert", "train": {"epochs": 1, "batch_size": 16}},
        "tasks": {"gunpoint": {"task": "gunpoint"}}, "methods": {"finetune": "finetune"},
    }))
    # The setup line fails the job before the cell starts (as a broken module load on a cluster would).
    first = _sweep(profile, out, "--launcher", "submitit", "--submitit", "cluster=local", "--submitit", "setup=[exit 3]")
    assert first.returncode == 1, first.stderr[-2000:]
    assert "FAILED finetune/gunpoint/seed0" in first.stderr
    assert not (out / "cells" / "finetune" / "gunpoint" / "seed0" / "results.json").exists()
    second = _sweep(profile, out, "--launcher", "submitit", "--submitit", "cluster=local")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "finetune/gunpoint/seed0: ran" in second.stdout + second.stderr


def test_local_jobs_share_the_cores_out(tmp_path):
    """Each cell process gets cores // jobs threads (recorded in its env.json)."""
    launcher = LocalLauncher(jobs=2)
    assert launcher.threads == max(1, cpu_count() // 2)
    assert thread_env(launcher.threads)["OMP_NUM_THREADS"] == str(launcher.threads)
    out = tmp_path / "out"
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump({
        "name": "t", "output": str(out), "seeds": [0, 1],
        "base": {"backbone": "tiny-bert", "train": {"epochs": 1, "batch_size": 16}},
        "tasks": {"gunpoint": {"task": "gunpoint"}}, "methods": {"finetune": "finetune"},
    }))
    done = _sweep(profile, out, "--jobs", "2")
    assert done.returncode == 0, done.stderr[-2000:]
    for seed in (0, 1):
        env = json.loads((out / "cells" / "finetune" / "gunpoint" / f"seed{seed}" / "env.json").read_text())
        assert env["cpu_threads"] == launcher.threads


def test_an_interrupted_local_launcher_ends_its_running_cells(tmp_path):
    """Closing the launcher (what a Ctrl-C does to the sweep's loop) kills the cell processes still running."""
    sleeper = shutil.which("sleep")
    if sleeper is None:
        pytest.skip("no 'sleep' program on this machine")
    codes = []

    def run_one(cell, env):
        if cell == "fast":  # returns once both slow cells run, so that the close meets them running
            for _ in range(600):
                if len(sweep._LIVE) == 2:
                    break
                time.sleep(0.1)
            return {"status": "ran"}
        with open(tmp_path / f"{cell}.log", "w") as log:
            codes.append(sweep._wait_cell([sleeper, "120"], log, env))
        return {"status": "failed"}

    running = LocalLauncher(jobs=3).run(["slow-a", "fast", "slow-b"], run_one)
    assert next(running) == ("fast", {"status": "ran"})
    running.close()  # GeneratorExit at the yield, as KeyboardInterrupt would unwind the loop
    assert sorted(codes) == [-9, -9]


@pytest.mark.parametrize("argv,message", [
    (["--jobs", "0"], "--jobs must be a whole number >= 1"),
    (["--launcher", "submitit", "--submitit", "partiton=gpu"], "unknown submitit key 'partiton'"),
    (["--launcher", "submitit", "--submitit", "time_min=soon"], "submitit.time_min must be a int"),
    (["--launcher", "submitit", "--submitit", "cluster=moon"], "submitit.cluster must be slurm, local or auto"),
])
def test_bad_launcher_settings_are_one_line_and_exit_2(argv, message, in_process_kit, tmp_path, capsys):
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump({
        "name": "t", "output": str(tmp_path / "out"), "seeds": [0],
        "base": {"backbone": "tiny-bert"}, "tasks": {"gunpoint": {"task": "gunpoint"}}, "methods": {"finetune": "finetune"},
    }))
    assert cli.main(["sweep", str(profile), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_profile_submitit_section_is_checked():
    assert check_submitit_section({"partition": "gpu", "gpus_per_cell": 1, "setup": ["module load cuda"]}, "p")["partition"] == "gpu"
    with pytest.raises(ConfigError, match="submitit.gpus_per_cell must be >= 1"):
        check_submitit_section({"gpus_per_cell": 0}, "p")
    with pytest.raises(ConfigError, match="'submitit' must be a mapping"):
        check_submitit_section(["slurm"], "p")
