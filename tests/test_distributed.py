"""torchrun with 2 CPU processes (gloo) gives the metrics of one process with the same global batch."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ENTRY = Path(__file__).parent / "ddp_entry.py"
TORCHRUN = shutil.which("torchrun", path=str(Path(sys.executable).parent))

pytestmark = [pytest.mark.distributed, pytest.mark.skipif(TORCHRUN is None, reason="torchrun not installed")]

#: Gradients are averaged over ranks instead of over one batch: equal up to float32 summation order.
TOLERANCE = 1e-4


def launch(nproc: int, out: Path, method: str, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [TORCHRUN, "--nproc-per-node", str(nproc), "--master-port", str(29500 + nproc * 7 + len(method)), str(ENTRY), str(out), method, *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.parametrize("method", ["finetune", "mona"])
def test_two_ranks_match_one_process(tmp_path, method):
    one = launch(1, tmp_path / "one", method)
    assert one.returncode == 0, one.stderr[-2000:]
    two = launch(2, tmp_path / "two", method)
    assert two.returncode == 0, two.stderr[-2000:]
    a = json.loads((tmp_path / "one" / method / "results.json").read_text())
    b = json.loads((tmp_path / "two" / method / "results.json").read_text())
    assert b["test"]["loss"] == pytest.approx(a["test"]["loss"], rel=TOLERANCE)
    assert b["val"]["loss"] == pytest.approx(a["val"]["loss"], rel=TOLERANCE)
    env = json.loads((tmp_path / "two" / method / "env.json").read_text())
    assert env["world_size"] == 2


def test_ranks_with_different_plugins_stop_at_start(tmp_path):
    proc = launch(2, tmp_path / "odd", "finetune", "1")
    assert proc.returncode != 0
    assert "ranks loaded different plugins: only rank 1 loaded odd_plugin" in proc.stderr
