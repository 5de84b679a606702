"""benchmarks/recheck_plateau.py re-derives a finished cell's plateau record under the noise floor,
only when the cell's logged curve reproduces its recorded verdict."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from mona_kit.plateau import plateau_record

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import recheck_plateau  # noqa: E402

ERRORS = [0.30, 0.10, 0.07, 0.065, 0.0625, 0.06125, 0.0575, 0.0625]  # 49 -> 46 of 800 in the last quarter


def _cell(root: Path, improvement_shift: float = 0.0) -> Path:
    cell = root / "cells" / "ft" / "mnist" / "seed0"
    cell.mkdir(parents=True)
    history = [(200 * (i + 1), e) for i, e in enumerate(ERRORS)]
    record = plateau_record(history, 1600, 0.25, 0.02, stopped_early=False)
    del record["noise"]  # as a run recorded it before the noise floor
    record["improvement"] += improvement_shift
    record |= {"steps": 1600, "budget": 1600, "selection": "validation"}
    (cell / "results.json").write_text(json.dumps({"metric": "zero-one-error", "higher_is_better": False,
                                                   "plateau": {"finetune": record}, "test": {"zero-one-error": 0.06}}))
    (cell / "metrics.jsonl").write_text("".join(
        json.dumps({"stage": "finetune", "step": s, "split": "val", "zero-one-error": e}) + "\n" for s, e in history))
    (cell / "config.yaml").write_text(yaml.safe_dump({"task": {"name": "mnist-5k"}}))
    return cell


def test_a_gain_within_noise_is_rerecorded_as_a_plateau_keeping_the_old_verdict(tmp_path, capsys):
    cell = _cell(tmp_path)
    assert recheck_plateau.main([str(tmp_path), "--write"]) == 0
    record = json.loads((cell / "results.json").read_text())["plateau"]["finetune"]
    assert record["plateaued"] is True and record["plateaued_before_noise_floor"] is False
    assert record["val_samples"] == 800 and abs(record["noise"] - (0.06125 * 0.93875 / 800) ** 0.5) < 1e-12
    assert "now plateaued" in capsys.readouterr().out
    assert recheck_plateau.main([str(tmp_path), "--write"]) == 0  # a second pass changes nothing
    assert json.loads((cell / "results.json").read_text())["plateau"]["finetune"] == record


def test_a_cell_whose_curve_does_not_reproduce_its_record_is_left_alone(tmp_path, capsys):
    cell = _cell(tmp_path, improvement_shift=0.01)
    before = (cell / "results.json").read_text()
    assert recheck_plateau.main([str(tmp_path), "--write"]) == 0
    assert (cell / "results.json").read_text() == before
    assert "left alone" in capsys.readouterr().out
