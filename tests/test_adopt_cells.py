"""benchmarks/adopt_cells.py copies a finished cell into another profile's sweep only when both
profiles ask for the same run (a default spelt out is the same run; another objective is not), and
the receiving sweep then counts the cell as done."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from mona_kit.sweep import check_existing
from mona_kit.sweep_profile import cells, read_profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import adopt_cells  # noqa: E402

BASE = {"backbone": "tiny-bert", "source": "rotten-tomatoes", "train": {"epochs": 1}}
TASKS = {"gunpoint": {"task": "gunpoint"}}


def _profile(tmp: Path, name: str, methods: dict) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "output": str(tmp / name), "seeds": [0, 1], "base": BASE,
                                    "tasks": TASKS, "methods": methods}))
    return path


def _finish(output: Path, method: str, seed: int) -> Path:
    cell = output / "cells" / method / "gunpoint" / f"seed{seed}"
    (cell / "checkpoints").mkdir(parents=True)
    (cell / "checkpoints" / "stage-0.pt").write_bytes(b"weights")
    (cell / "results.json").write_text(json.dumps({"method": "orca", "task": "gunpoint", "metric": "zero-one-error", "seed": seed,
                                                   "val": {"zero-one-error": 0.1}, "test": {"zero-one-error": 0.1}}))
    (cell.parent / f"seed{seed}.log").write_text("done\n")
    return cell


def test_a_spelt_out_default_is_adopted_and_the_sweep_counts_it_done(tmp_path, kit):
    main = _profile(tmp_path, "main", {"orca": {"name": "orca", "align_epochs": 2}})
    variants = _profile(tmp_path, "variants", {"orca-{objective}": {"name": "orca", "objective": "*distance", "align_epochs": 2}})
    _finish(tmp_path / "main", "orca", 0)  # seed 1 has not finished: nothing to adopt for it
    assert adopt_cells.main([str(main), str(variants)]) == 0

    adopted = tmp_path / "variants" / "cells" / "orca-otdd" / "gunpoint" / "seed0"
    assert (adopted / "results.json").is_file() and (adopted.parent / "seed0.log").is_file()
    assert not (adopted / "checkpoints").exists()
    assert json.loads((adopted / "adopted.json").read_text())["from_method"] == "orca"
    got = sorted(p.relative_to(tmp_path / "variants" / "cells").as_posix()
                 for p in (tmp_path / "variants" / "cells").glob("*/*/seed*/results.json"))
    assert got == ["orca-otdd/gunpoint/seed0/results.json"]  # not orca-l2, not seed 1

    target = read_profile(variants)
    check_existing(tmp_path / "variants", list(cells(target, kit)))  # the recorded config is the profile's
    assert adopt_cells.main([str(main), str(variants)]) == 0  # a second pass leaves it alone
    assert (adopted / "results.json").read_text() == (tmp_path / "main" / "cells" / "orca" / "gunpoint" / "seed0" / "results.json").read_text()


def test_a_changed_setting_or_a_started_cell_is_not_adopted(tmp_path, capsys):
    main = _profile(tmp_path, "main", {"orca": {"name": "orca", "align_epochs": 2}})
    other = _profile(tmp_path, "other", {"orca": {"name": "orca", "align_epochs": 3}})
    _finish(tmp_path / "main", "orca", 0)
    assert adopt_cells.main([str(main), str(other), "--dry-run"]) == 0
    assert capsys.readouterr().out.strip().endswith("0 cell(s) (dry run)")

    same = _profile(tmp_path, "same", {"orca": {"name": "orca", "align_epochs": 2, "objective": "otdd"}})
    started = tmp_path / "same" / "cells" / "orca" / "gunpoint"
    started.mkdir(parents=True)
    (started / "seed0.yaml").write_text("{}\n")  # the sweep started it: its own record wins
    assert adopt_cells.main([str(main), str(same)]) == 0
    assert not (started / "seed0").exists()
