"""The sweep table shows reference rows apart, marks transfer cells that do not beat the linear
reference, and marks cells whose last training stage had not plateaued."""

from __future__ import annotations

from mona_kit.report import markdown_table


def _row(label, task, seed, value, *, plateaued=True, method=None):
    plateau = {"finetune": {"plateaued": plateaued, "selection": "validation"}} if plateaued is not None else None
    row = {"method_label": label, "method": method or label, "task_label": task, "seed": seed, "metric": "nrmse",
           "higher_is_better": False, "test": {"nrmse": value}, "wall_time_s": 1.0, "peak_memory_mb": 1.0}
    if plateau:
        row["plateau"] = plateau
    return row


def test_reference_block_baseline_marks_and_plateau_flags():
    rows = [
        _row("mean", "t", 0, 1.0, plateaued=None), _row("mean", "t", 1, 1.0, plateaued=None),
        _row("linear", "t", 0, 0.30, plateaued=None), _row("linear", "t", 1, 0.32, plateaued=None),
        _row("finetune", "t", 0, 0.20), _row("finetune", "t", 1, 0.22),
        _row("fpt", "t", 0, 0.40, plateaued=False), _row("fpt", "t", 1, 0.42),
    ]
    table = markdown_table(rows, references={"mean", "linear"})
    lines = table.splitlines()
    assert lines.index("| *reference* | | |") < lines.index("| *transfer* | | |")
    fpt = next(line for line in lines if line.startswith("| fpt |"))
    finetune = next(line for line in lines if line.startswith("| finetune |"))
    assert "◇" in fpt and "†1" in fpt  # loses to linear, one seed still improving
    assert "◇" not in finetune and "†" not in finetune and "**0.21 ± 0.014**" in finetune
    # Ranks are among transfer methods only: references show none.
    assert next(line for line in lines if line.startswith("| linear |")).endswith("| – |")
    assert finetune.endswith("| 1.00 |")
    assert "(1 cell)." in table and "(1 run in 1 table cell;" in table  # one ◇ cell and one unsettled run, counted in the notes


def test_without_references_the_table_is_plain():
    rows = [_row("finetune", "t", 0, 0.2), _row("fpt", "t", 0, 0.4)]
    table = markdown_table(rows)
    assert "*reference*" not in table and "◇" not in table


def test_tiny_and_large_values_keep_their_digits():
    rows = [_row("linear", "t", 0, 2.365e-07, plateaued=None), _row("linear", "t", 1, 2.365e-07, plateaued=None)]
    assert "2.365e-07 ± 0" in markdown_table(rows)


def test_a_seed_no_better_than_the_mean_reference_is_marked_per_seed():
    # One of three seeds collapsed to the training mean (its curve plateaus too): the cell's mean
    # still beats `mean`, so only the per-seed mark says one run learned nothing.
    rows = [
        _row("mean", "t", 0, 0.0095, plateaued=None), _row("linear", "t", 0, 0.0011, plateaued=None),
        _row("finetune", "t", 0, 0.0016), _row("finetune", "t", 1, 0.0096), _row("finetune", "t", 2, 0.0015),
        _row("scratch", "t", 0, 0.0005), _row("scratch", "t", 1, 0.0006),
    ]
    table = markdown_table(rows, references={"mean", "linear"})
    finetune = next(line for line in table.splitlines() if line.startswith("| finetune |"))
    scratch = next(line for line in table.splitlines() if line.startswith("| scratch |"))
    assert "◇ ∅1" in finetune and "∅" not in scratch
    assert "(1 run in 1 table cell)" in table
    # Higher-is-better metrics compare the other way round; without such a seed, no mark and no note.
    acc = [dict(r, higher_is_better=True) for r in [_row("mean", "t", 0, 0.11, plateaued=None),
                                                     _row("finetune", "t", 0, 0.93), _row("scratch", "t", 0, 0.10)]]
    table = markdown_table(acc, references={"mean"})
    assert "∅1" in next(line for line in table.splitlines() if line.startswith("| scratch |"))
    assert "∅" not in markdown_table(acc[:2], references={"mean"})
    # A tie with the mean is "no better"; a diverged (nan) seed is counted in n, not as unlearned.
    tie = [_row("mean", "t", 0, 0.5, plateaued=None), _row("ft", "t", 0, 0.5), _row("ft", "t", 1, float("nan"))]
    assert "∅1" in next(line for line in markdown_table(tie, references={"mean"}).splitlines() if line.startswith("| ft |"))


def test_flagged_cells_list_every_marked_cell_seed_by_seed():
    from mona_kit.report_flags import flagged_cells, flags_markdown

    rows = [
        _row("mean", "t", 0, 1.0, plateaued=None), _row("linear", "t", 0, 0.30, plateaued=None),
        _row("finetune", "t", 0, 0.20), _row("finetune", "t", 1, 0.22),
        _row("fpt", "t", 1, 0.42), _row("fpt", "t", 0, 0.40, plateaued=False),
        _row("probe", "t", 0, 1.2), _row("probe", "t", 1, 0.9),
    ]
    rows[5]["plateau"]["finetune"]["improvement"] = 0.182
    flagged = flagged_cells(rows, references={"mean", "linear"})
    # finetune carries no mark, so it is not listed; the others are, seeds in order, with the references' means.
    assert [f["method"] for f in flagged] == ["fpt", "probe"]
    fpt, probe = flagged
    assert fpt == {"task": "t", "method": "fpt", "marks": "◇ †1", "seeds": "s0 0.4, s1 0.42", "baseline": "0.3",
                   "floor": "1", "improving": "s0 18 %"}
    assert probe["marks"] == "◇ ∅1" and probe["improving"] == "–"
    section = flags_markdown(rows, references={"mean", "linear"})
    assert section.startswith("## Flagged cells") and "| t | fpt | ◇ †1 | s0 0.4, s1 0.42 | 0.3 | 1 | s0 18 % |" in section
    # A record that says where its best came shows it, as a share of the run's steps.
    rows[5]["plateau"]["finetune"] |= {"best_step": 17640, "steps": 20160}
    assert flagged_cells(rows, references={"mean", "linear"})[0]["improving"] == "s0 18 % (best at 88 % of its steps)"


def test_a_table_without_marks_has_no_flagged_section():
    from mona_kit.report_flags import flags_markdown

    rows = [_row("linear", "t", 0, 0.30, plateaued=None), _row("finetune", "t", 0, 0.20)]
    assert flags_markdown(rows, references={"linear"}) == ""


def test_a_fully_diverged_cell_is_listed_among_the_flagged():
    from mona_kit.report_flags import flagged_cells

    rows = [_row("linear", "t", 0, 0.30, plateaued=None), _row("finetune", "t", 0, 0.20),
            _row("mona", "t", 0, "nan"), _row("mona", "t", 1, "nan")]
    (flagged,) = flagged_cells(rows, references={"linear"})
    assert flagged["method"] == "mona" and flagged["marks"] == "diverged" and flagged["seeds"] == "s0 nan, s1 nan"
