"""table.tex: the sweep's main table as LaTeX, with the same cells, marks and blocks as table.md, and
labels escaped so that a user's method or task name cannot break the document."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mona_kit.report import table_model, write_report
from mona_kit.report_latex import latex_escape, latex_table


def _row(label, task, seed, value, *, plateaued=True):
    row = {"method_label": label, "method": label, "task_label": task, "seed": seed, "metric": "nrmse",
           "higher_is_better": False, "test": {"nrmse": value}, "wall_time_s": 1.0, "peak_memory_mb": 1.0}
    if plateaued is not None:
        row["plateau"] = {"finetune": {"plateaued": plateaued, "selection": "validation"}}
    return row


ROWS = [
    _row("mean", "burgers_1d", 0, 1.0, plateaued=None), _row("mean", "burgers_1d", 1, 1.0, plateaued=None),
    _row("linear", "burgers_1d", 0, 0.30, plateaued=None), _row("linear", "burgers_1d", 1, 0.32, plateaued=None),
    _row("finetune", "burgers_1d", 0, 0.20), _row("finetune", "burgers_1d", 1, 0.22),
    _row("my_fpt&co", "burgers_1d", 0, 0.40, plateaued=False), _row("my_fpt&co", "burgers_1d", 1, 1.2),
]


def _body_lines(tex: str) -> list[str]:
    return [line for line in tex.splitlines() if line.endswith(r"\\")]


def test_cells_marks_and_blocks_match_the_markdown_table():
    tex = latex_table(table_model(ROWS, references={"mean", "linear"}), title="demo")
    lines = _body_lines(tex)
    assert lines[0] == r"method & burgers\_1d & avg.\ rank \\"
    assert lines[1] == r" & nrmse $\downarrow$ & \\"
    assert lines[2] == r"\multicolumn{3}{l}{\textit{reference}} \\"
    assert r"finetune & \textbf{0.21 $\pm$ 0.014} & 1.00 \\" in lines
    # The user's label is escaped; the row loses to linear, one seed no better than the mean, one still improving.
    assert r"my\_fpt\&co & 0.8 $\pm$ 0.57$^{\diamond \emptyset1 \dagger1}$ & 2.00 \\" in lines
    assert r"linear & 0.31 $\pm$ 0.014 & -- \\" in lines  # references are not ranked
    assert tex.count(r"\midrule") == 2 and r"\textit{transfer}" in tex
    # Every body row has as many cells as the header: method, one per task, rank.
    assert all(line.count(" & ") == 2 for line in lines if not line.startswith(r"\multicolumn"))
    assert r"\caption{demo: test metric" in tex and r"\texttt{linear} reference" in tex


def test_escape_covers_latex_specials():
    assert latex_escape(r"a_b%c#d$e{f}g~h^i\j") == (r"a\_b\%c\#d\$e\{f\}g\textasciitilde{}h\textasciicircum{}i"
                                                   r"\textbackslash{}j")


def test_the_sweep_report_writes_table_tex_beside_table_md(tmp_path: Path):
    rows = [{**r, "run_dir": str(tmp_path / "cells" / r["method_label"] / r["task_label"] / f"seed{r['seed']}")} for r in ROWS]
    for r in rows:
        Path(r["run_dir"]).mkdir(parents=True)  # runs that logged no events: the report has no curves to draw
    written = write_report(tmp_path, rows, title="demo", command="mona-kit sweep demo.yaml", references={"mean", "linear"})
    assert tmp_path / "table.tex" in written
    assert r"\begin{tabular}{lcc}" in (tmp_path / "table.tex").read_text()


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex (texlive-latex-recommended)")
def test_table_tex_compiles(tmp_path: Path):
    table = latex_table(table_model(ROWS, references={"mean", "linear"}), title="demo_1 & 2")
    doc = "\\documentclass{article}\n\\usepackage{booktabs,graphicx}\n\\begin{document}\n" + table + "\\end{document}\n"
    (tmp_path / "t.tex").write_text(doc)
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "t.pdf").stat().st_size > 0


# A method's provenance (where its implementation comes from) is said under every table of its rows.
MONA_NOTE = "a reconstruction from the paper (no public code)"


def test_provenance_is_said_under_the_markdown_latex_and_run_tables(tmp_path: Path):
    from mona_kit.report import markdown_table
    from mona_kit.summary import comparison_table

    rows = [*ROWS, {**_row("mona-x", "burgers_1d", 0, 0.25), "method": "mona"}, _row("mona", "burgers_1d", 0, 0.24)]
    notes = {"mona": MONA_NOTE, "fpt": "not in these rows"}
    model = table_model(rows, references={"mean", "linear"}, provenance=notes)
    assert model["method_notes"] == ["mona-x, mona: a reconstruction from the paper (no public code)."]
    assert markdown_table(rows, references={"mean", "linear"}, provenance=notes).endswith(model["method_notes"][0])
    assert "mona-x, mona: a reconstruction" in latex_table(model)  # in the caption
    assert "not in these rows" not in markdown_table(rows, provenance=notes)
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text('{"method": "mona", "task": "t", "metric": "m", "test": {"m": 0.5}}')
    assert comparison_table([run, run], notes).splitlines()[-1] == f"mona: {MONA_NOTE}."
    assert comparison_table([run]).splitlines()[-1].startswith("| mona | t |")  # no provenance given: no note


def test_mona_rows_say_they_are_a_reconstruction():
    from mona_kit.kit import load_kit
    from mona_kit.summary import method_provenance

    notes = method_provenance(load_kit())
    assert "no public MoNA code" in notes["mona"] and "no public MoNA code" in notes["mona-grad-align"]
    assert "finetune" not in notes


def test_caption_says_fixed_budget_cells_and_sets_code_in_typewriter():
    rows = [{**_row("finetune", "gunpoint", s, 0.1), "plateau": {"finetune": {"plateaued": True, "selection": "fixed-budget"}}}
            for s in (0, 1)]
    tex = latex_table(table_model(rows, provenance={"finetune": "see `mona-kit describe finetune`"}))
    assert "1 cells train on a set too small to select on" in tex
    assert r"finetune: see \texttt{mona-kit describe finetune}." in tex
