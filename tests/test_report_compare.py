"""The report's comparisons: each transfer row against fine-tuning, seed by seed, and the best
transfer row against the specialist reference."""

from __future__ import annotations

import math

from mona_kit.report_compare import anchor_markdown, specialist_gaps, specialist_markdown, versus


def _row(label, task, seed, value, *, higher=False):
    return {"method_label": label, "method": label, "task_label": task, "seed": seed, "metric": "m",
            "higher_is_better": higher, "test": {"m": value}, "wall_time_s": 1.0, "peak_memory_mb": 1.0}


def _cell(label, task, values, **kw):
    return [_row(label, task, seed, v, **kw) for seed, v in enumerate(values)]


def test_versus_pairs_seeds_and_says_whether_the_sets_overlap():
    rows = [*_cell("finetune", "t", [0.20, 0.22, 0.24]), *_cell("mona", "t", [0.18, 0.19, 0.19]),
            *_cell("orca", "t", [0.21, 0.20, 0.25]), *_cell("fpt", "t", [0.40, 0.41])]
    mona, orca, fpt = (versus(rows, m, "finetune", "t") for m in ("mona", "orca", "fpt"))
    assert math.isclose(mona["ratio"], (0.56 / 3) / 0.22) and mona["wins"] == 3 and mona["apart"] == "ahead"
    assert orca["wins"] == 1 and orca["paired"] == 3 and orca["apart"] == ""  # overlapping seeds
    # fpt has seeds 0 and 1 only: the ratio is over those, against finetune's same two seeds.
    assert fpt["paired"] == 2 and fpt["wins"] == 0 and fpt["apart"] == "behind"
    assert math.isclose(fpt["ratio"], 0.405 / 0.21)
    assert versus(rows, "missing", "finetune", "t") is None


def test_one_seed_a_side_is_never_called_apart():
    rows = [*_cell("finetune", "t", [0.20, 0.22, 0.24]), *_cell("mga", "t", [0.19])]
    v = versus(rows, "mga", "finetune", "t")
    assert v["paired"] == 1 and v["wins"] == 1 and v["apart"] == "" and math.isclose(v["ratio"], 0.95)


def test_a_diverged_seed_loses_and_is_counted():
    rows = [*_cell("finetune", "t", [0.20, 0.22, 0.24]), *_cell("mona", "t", [float("nan"), 0.10, float("nan")])]
    v = versus(rows, "mona", "finetune", "t")
    assert v["wins"] == 1 and v["paired"] == 3 and v["diverged"] == 2 and v["apart"] == ""
    assert math.isclose(v["ratio"], 0.10 / 0.22)  # over the one seed both finished
    assert "| mona | 0.45× (1/3) 2 diverged |" in anchor_markdown(rows)


def test_a_higher_is_better_metric_counts_wins_the_other_way():
    rows = [*_cell("finetune", "t", [0.80, 0.82], higher=True), *_cell("mona", "t", [0.85, 0.86], higher=True)]
    v = versus(rows, "mona", "finetune", "t")
    assert v["wins"] == 2 and v["apart"] == "ahead" and v["ratio"] > 1


def test_anchor_section_bolds_only_cells_outside_the_spread_and_skips_references():
    rows = [*_cell("linear", "t", [0.3]), *_cell("finetune", "t", [0.20, 0.22]),
            *_cell("mona", "t", [0.18, 0.19]), *_cell("orca", "t", [0.19, 0.23])]
    section = anchor_markdown(rows, references={"linear"})
    lines = section.splitlines()
    assert lines[0] == "## Against fine-tuning" and "| method | t ↓ |" in lines
    assert "| mona | **0.88× (2/2)** |" in lines and "| orca | 1.00× (1/2) |" in lines
    assert not any(line.startswith("| linear |") or line.startswith("| finetune |") for line in lines)
    assert anchor_markdown([r for r in rows if r["method_label"] != "finetune"]) == ""


def test_the_anchor_is_found_by_its_method_name_under_any_label():
    rows = [*_cell("mona", "t", [0.18, 0.19])]
    rows += [{**r, "method_label": "ft-long", "method": "finetune"} for r in _cell("x", "t", [0.20, 0.22])]
    assert "| mona | **0.88× (2/2)** |" in anchor_markdown(rows)


def test_specialist_gap_leaves_out_references_and_controls():
    rows = [*_cell("specialist", "t", [0.01, 0.01]), *_cell("linear", "t", [0.009]),
            *_cell("scratch", "t", [0.011, 0.012]), *_cell("finetune", "t", [0.05, 0.07]), *_cell("mona", "t", [0.04, 0.05]),
            *_cell("specialist", "u", [0.10]), *_cell("finetune", "u", [0.12])]
    gaps = specialist_gaps(rows, references={"specialist", "linear"}, controls={"scratch"})
    assert [(g["task"], g["method"]) for g in gaps] == [("t", "mona"), ("u", "finetune")]
    assert math.isclose(gaps[0]["ratio"], 4.5) and math.isclose(gaps[1]["ratio"], 1.2)
    section = specialist_markdown(rows, references={"specialist", "linear"}, controls={"scratch"})
    assert "(1 of 2 tasks)" in section
    assert "| t | mona | 0.045 ± 0.0071 (n=2) | specialist | 0.01 | 4.50× | no |" in section
    assert "| u | finetune | 0.12 ± 0 (n=1) | specialist | 0.1 | 1.20× | yes |" in section
    assert specialist_markdown(rows, references={"linear"}) == ""  # no specialist row, no section


def test_the_best_of_several_specialist_rows_is_the_yardstick():
    rows = [*_cell("finetune", "t", [0.4])]
    rows += [{**r, "method_label": "spec-slow", "method": "specialist"} for r in _cell("x", "t", [0.5])]
    rows += [{**r, "method_label": "spec-good", "method": "specialist"} for r in _cell("x", "t", [0.01])]
    (gap,) = specialist_gaps(rows, references={"specialist"})
    assert gap["specialist_label"] == "spec-good" and math.isclose(gap["ratio"], 40)


def test_specialist_gap_of_a_higher_is_better_metric_compares_errors():
    rows = [*_cell("specialist", "t", [0.98], higher=True), *_cell("finetune", "t", [0.94], higher=True)]
    (gap,) = specialist_gaps(rows, references={"specialist"})
    assert math.isclose(gap["ratio"], 0.06 / 0.02)
    unbounded = [*_cell("specialist", "t", [31.0], higher=True), *_cell("finetune", "t", [28.0], higher=True)]  # PSNR
    (gap,) = specialist_gaps(unbounded, references={"specialist"})
    assert math.isnan(gap["ratio"]) and "| – | – |" in specialist_markdown(unbounded, references={"specialist"})
