"""benchmarks/target_rounding.py measures what bf16 rounding in original units costs a task's targets."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import target_rounding  # noqa: E402


def test_task_specs_carry_integer_options():
    assert target_rounding.parse("advection-1d:n_train=1250") == ("advection-1d", {"n_train": 1250})
    assert target_rounding.parse("darcy-16") == ("darcy-16", {})


def test_a_zero_mean_task_rounds_by_bf16s_relative_step():
    # burgers-1d's targets centre on 0, so rounding costs each value about 2^-9 of itself: under
    # 0.5 % of the spread, far below the 0.05-0.3 nRMSE its models reach.
    row = target_rounding.rounding_row("burgers-1d", {})
    name, mean, std, rms_std, rel = (cell.strip() for cell in row.strip("|").split("|"))
    assert name == "burgers-1d"
    assert abs(float(mean)) < 1e-3 < float(std)
    assert 1e-4 < float(rms_std) < 5e-3
    assert 1e-4 < float(rel) < 5e-3
