"""A sweep runs cells as real 'mona-kit run' processes, skips finished cells, reports, and a
cell re-run from its recorded config reproduces its metric bitwise."""

import json
import os
import subprocess
import sys

import yaml

from mona_kit.kit import load_kit
from mona_kit.report import markdown_table, ranks
from mona_kit.sweep_profile import cells, expand_methods

PROFILE = {
    "name": "t", "output": "OUT", "seeds": [0, 1],
    "base": {"backbone": "tiny-bert", "train": {"epochs": 1, "batch_size": 16}},
    "tasks": {"gunpoint": {"task": "gunpoint"}},
    "methods": {"finetune": "finetune", "linear-probe": "linear-probe"},
}


def test_objective_wildcards_expand_over_the_registry():
    kit = load_kit(entry_points=False)
    methods = expand_methods({"orca-{objective}": {"name": "orca", "objective": "*distance"}}, kit)
    distances = {e.name for e in kit.objectives if e.meta.get("role") == "distance"}
    assert {m["objective"] for m in methods.values()} == distances
    assert set(methods) == {f"orca-{d}" for d in distances}
    assert len(list(cells({**PROFILE, "methods": {"orca-{objective}": {"name": "orca", "objective": "*distance"}}}, kit))) == 2 * len(distances)


def test_sweep_runs_skips_reports_and_reproduces(tmp_path):
    out = tmp_path / "out"
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump({**PROFILE, "output": str(out)}))
    cmd = [sys.executable, "-m", "mona_kit", "sweep", str(profile)]
    first = subprocess.run(cmd, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-1500:]
    table = (out / "table.md").read_text()
    assert "| finetune |" in table and "| linear-probe |" in table and "avg. rank" in table
    assert table.startswith("### t: 4 cells\n")  # every cell of the profile finished
    assert (out / "errors.png").stat().st_size > 1000 and (out / "results.csv").is_file()
    assert not list(out.glob("cells/*/*/seed*/checkpoints"))  # dropped after each finished cell
    second = subprocess.run(cmd, capture_output=True, text=True)
    assert second.returncode == 0 and second.stdout.count(": done") == 4  # every cell skipped
    # --status: an interrupted cell (its folder without results.json) counts as started, not finished.
    (out / "cells" / "finetune" / "gunpoint" / "seed1" / "results.json").rename(out / "results.json.aside")
    status = subprocess.run(cmd + ["--status"], capture_output=True, text=True)
    assert status.returncode == 0, status.stderr[-1500:]
    assert status.stdout.startswith(f"sweep t ({out}): 3 of 4 cells finished, 0 running, 1 started")
    assert "| finetune | 1/2 ◐1 |" in status.stdout and "| linear-probe | 2/2 |" in status.stdout
    assert "Left: 1 cells. The 1 with an estimate" in status.stdout and "1 from same method and task" in status.stdout
    # A folder without the run's config is a cell that died while starting: the next sweep runs it afresh.
    empty = out / "cells" / "finetune" / "gunpoint" / "seed7"
    from mona_kit.sweep_profile import Cell
    from mona_kit.sweep_status import cell_state
    empty.mkdir()
    assert cell_state(out, Cell("finetune", "gunpoint", 7, {})) == "not started"
    empty.rmdir()
    (out / "results.json.aside").rename(out / "cells" / "finetune" / "gunpoint" / "seed1" / "results.json")
    # A sweep of some of the cells: the table's title says how many of the profile's exist.
    (out / "cells" / "linear-probe" / "gunpoint" / "seed1" / "results.json").rename(out / "results.json.aside")
    partial = subprocess.run(cmd + ["--report-only"], capture_output=True, text=True)
    assert partial.returncode == 0, partial.stderr[-1500:]
    assert (out / "table.md").read_text().startswith("### t: 3 of the profile's 4 cells\n")
    (out / "results.json.aside").rename(out / "cells" / "linear-probe" / "gunpoint" / "seed1" / "results.json")
    # Cells kept in another folder: the table's command names it, so re-running it finds them.
    import shutil
    moved = tmp_path / "elsewhere"
    shutil.copytree(out, moved)
    elsewhere = subprocess.run(cmd + ["--report-only", "--output", str(moved)], capture_output=True, text=True)
    assert elsewhere.returncode == 0, elsewhere.stderr[-1500:]
    assert f"Produced by: `mona-kit sweep {profile} --output {moved}`" in (moved / "table.md").read_text()
    assert f"Produced by: `mona-kit sweep {profile}`" in table
    cell = out / "cells" / "finetune" / "gunpoint" / "seed1"
    recorded = json.loads((cell / "results.json").read_text())
    # Bitwise needs the cell's thread count too (it changes float summation order); env.json records it.
    threads = json.loads((cell / "env.json").read_text())["cpu_threads"]
    again = subprocess.run(
        [sys.executable, "-m", "mona_kit", "run", str(cell / "config.yaml"), f"output_dir={tmp_path}", "run_name=again",
         "--no-progress", "--no-plots"], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    assert again.returncode == 0, again.stderr[-1500:]
    rerun = json.loads((tmp_path / "again" / "results.json").read_text())
    assert rerun["test"] == recorded["test"] and rerun["val"] == recorded["val"]


def test_ranks_share_ties_and_respect_direction():
    rows = [
        {"method_label": m, "task_label": t, "metric": "e", "higher_is_better": False, "test": {"e": v}, "seed": 0}
        for m, t, v in [("a", "x", 0.1), ("b", "x", 0.1), ("c", "x", 0.3), ("a", "y", 0.5), ("b", "y", 0.2), ("c", "y", 0.9)]
    ]
    from mona_kit.report import aggregate

    r = ranks(aggregate(rows), ["a", "b", "c"], ["x", "y"])
    assert r == {"a": (1.5 + 2) / 2, "b": (1.5 + 1) / 2, "c": 3.0}
    table = markdown_table(rows)
    assert "**0.2 ± 0**" in table


def test_ranks_leave_out_a_task_not_every_method_has_run():
    # Column z has only begun: a and b alone would rank 1 and 2 there and skew their averages.
    rows = [
        {"method_label": m, "task_label": t, "metric": "e", "higher_is_better": False, "test": {"e": v}, "seed": 0}
        for m, t, v in [("a", "x", 0.1), ("b", "x", 0.2), ("c", "x", 0.3), ("a", "z", 0.9), ("b", "z", 0.1)]
    ]
    from mona_kit.report import aggregate, table_model

    assert ranks(aggregate(rows), ["a", "b", "c"], ["x", "z"]) == {"a": 1.0, "b": 2.0, "c": 3.0}
    notes = table_model(rows)["notes"]
    assert any(n.startswith("The average rank leaves out z:") for n in notes)
    # Once every row has a cell there, z counts; with fewer seeds than x, the notes say so.
    seeds = [{**r, "seed": s} for r in rows[:3] for s in (0, 1)] + rows[3:] + [{**rows[2], "task_label": "z", "test": {"e": 0.5}}]
    notes = table_model(seeds)["notes"]
    assert not any(n.startswith("The average rank leaves out") for n in notes)
    assert "On z some transfer rows have fewer than 2 seeds yet: the average rank uses the seeds there are, so it may still move." in notes
    # No task complete: every task counts rather than no rank at all.
    assert ranks(aggregate(rows[3:]), ["a", "b", "c"], ["z"]) == {"a": 2.0, "b": 1.0}


def test_bad_wildcards_and_label_collisions_are_errors():
    import pytest

    from mona_kit.errors import ConfigError

    kit = load_kit(entry_points=False)
    with pytest.raises(ConfigError, match="no registered objective has role 'distnace'"):
        expand_methods({"orca-{objective}": {"name": "orca", "objective": "*distnace"}}, kit)
    with pytest.raises(ConfigError, match="its label needs '{objective}'"):
        expand_methods({"orca": {"name": "orca", "objective": "*distance"}}, kit)


def test_task_sections_merge_into_the_base():
    from mona_kit.sweep_profile import deep_merge

    merged = deep_merge({"train": {"lr": 0.1, "epochs": 3}}, {"train": {"epochs": 9}})
    assert merged == {"train": {"lr": 0.1, "epochs": 9}}


def test_method_options_of_a_task_reach_only_that_tasks_cells_of_that_method():
    # main-cpu r5: diffusion's epochs doubled, and the specialist (3x the task's epochs) must not follow
    # into a schedule its patience would cut at a high learning rate; other cells keep their configs.
    kit = load_kit(entry_points=False)
    profile = {"name": "p", "output": "o", "seeds": [0], "base": {"backbone": "tiny-bert"},
               "tasks": {"a": {"task": "gunpoint", "method_options": {"spec": {"patience": None, "epochs": 7}}},
                         "b": {"task": "gunpoint"}},
               "methods": {"spec": {"name": "specialist", "patience": 15}, "ft": "finetune"}}
    configs = {(c.method, c.task): c.config for c in cells(profile, kit)}
    assert configs[("spec", "a")]["method"] == {"name": "specialist", "patience": None, "epochs": 7}
    assert configs[("spec", "b")]["method"] == {"name": "specialist", "patience": 15}
    assert configs[("ft", "a")]["method"] == {"name": "finetune"}
    assert all("method_options" not in c for c in configs.values())
    # Options are checked like any method option before a cell runs.
    import pytest

    from mona_kit.errors import ConfigError

    profile["tasks"]["a"]["method_options"] = {"spec": {"patients": 3}}
    with pytest.raises(ConfigError, match=r"sweep cell spec/a/seed0: .*patients"):
        list(cells(profile, kit))
    # Wildcard methods: options name the expanded cell labels, and cannot change the expanded key.
    profile["methods"] = {"orca-{objective}": {"name": "orca", "objective": "*distance", "align_epochs": 2}}
    profile["tasks"]["a"]["method_options"] = {"orca-l2": {"align_epochs": 9}}
    configs = {(c.method, c.task): c.config["method"] for c in cells(profile, kit)}
    assert configs[("orca-l2", "a")]["align_epochs"] == 9 and configs[("orca-l2", "b")]["align_epochs"] == 2
    assert all(m["align_epochs"] == 2 for (label, task), m in configs.items() if label != "orca-l2")
    profile["tasks"]["a"]["method_options"] = {"orca-{objective}": {"align_epochs": 9}}
    with pytest.raises(ConfigError, match=r"names 'orca-\{objective\}', which is not a method label .*orca-l2"):
        list(cells(profile, kit))
    profile["tasks"]["a"]["method_options"] = {"orca-l2": {"objective": "mmd"}}
    with pytest.raises(ConfigError, match=r"'method_options' of 'orca-l2' sets 'objective', which its label expands over"):
        list(cells(profile, kit))


def test_a_diverged_seed_is_counted_not_hidden():
    rows = [{"method_label": "a", "task_label": "x", "metric": "e", "higher_is_better": True, "test": {"e": v}, "seed": i}
            for i, v in enumerate([0.5, float("nan"), 0.7])]
    table = markdown_table(rows)
    assert "0.6 ± 0.14 (n=2 of 3)" in table and "(e ↑)" in table


def test_only_and_tasks_select_cells_by_method_and_task_label():
    from mona_kit.commands.sweep import select

    kit = load_kit(entry_points=False)
    profile = {**PROFILE, "tasks": {"gp": {"task": "gunpoint"}, "bm": {"task": "basic-motions"}}}
    todo = list(cells(profile, kit))
    by_task = select(todo, "bm", ["gp", "bm"], option="--tasks", kind="task")
    assert {(c.method, c.task) for c in by_task} == {("finetune", "bm"), ("linear-probe", "bm")} and len(by_task) == 4
    both = select(by_task, "linear-probe", list(profile["methods"]))
    assert [(c.method, c.task, c.seed) for c in both] == [("linear-probe", "bm", 0), ("linear-probe", "bm", 1)]


def test_seeds_select_cells_by_seed_and_reject_seeds_the_profile_lacks():
    import pytest

    from mona_kit.commands.sweep import select_seeds
    from mona_kit.errors import ConfigError

    kit = load_kit(entry_points=False)
    todo = list(cells(PROFILE, kit))
    first_pass = select_seeds(todo, "0", PROFILE["seeds"])
    assert [(c.method, c.seed) for c in first_pass] == [("finetune", 0), ("linear-probe", 0)]
    assert len(select_seeds(todo, "1, 0", PROFILE["seeds"])) == len(todo)
    with pytest.raises(ConfigError, match="the profile has no seed 7; its seeds are 0, 1"):
        select_seeds(todo, "0,7", PROFILE["seeds"])
    with pytest.raises(ConfigError, match="not a comma-separated list of integers"):
        select_seeds(todo, "zero", PROFILE["seeds"])


def test_status_estimates_from_the_same_method_else_the_tasks_trained_methods():
    from mona_kit.sweep_profile import Cell
    from mona_kit.sweep_status import estimate

    walls = {("ft", "a"): [100.0, 300.0, 200.0], ("mean", "b"): [1.0], ("ft", "b"): [50.0], ("mona", "b"): [150.0]}
    left = [Cell("ft", "a", 2, {}), Cell("orca", "b", 0, {}), Cell("orca", "c", 0, {})]
    seconds, basis = estimate(left, walls, references={"mean"})
    # ft on a: its median 200; orca on b: the median of ft and mona there (100), not the reference's 1 s.
    assert seconds == 200 + 100
    assert basis == {"same method and task": 1, "other trained methods on the task": 1,
                     "the same reference method on other tasks": 0, "no estimate (nothing finished to go by)": 1}


def test_status_estimates_an_unfinished_reference_cell_from_its_own_method_elsewhere():
    from mona_kit.sweep_profile import Cell
    from mona_kit.sweep_status import estimate

    # A new task where only fine-tuning has finished: its mean-predictor cell must not be priced as a
    # fine-tuning run (2,600 s) but as the mean predictor elsewhere (about a second).
    walls = {("ft", "new"): [2600.0], ("mean", "a"): [1.0, 3.0], ("fno", "a"): [400.0]}
    left = [Cell("mean", "new", 0, {}), Cell("fno", "new", 0, {}), Cell("knn", "new", 0, {})]
    seconds, basis = estimate(left, walls, references={"mean", "fno", "knn"})
    assert seconds == 2.0 + 400.0
    assert basis == {"same method and task": 0, "other trained methods on the task": 0,
                     "the same reference method on other tasks": 2, "no estimate (nothing finished to go by)": 1}
