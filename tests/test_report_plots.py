"""errors.png: transfer rows as points with their seed spread, reference rows as horizontal lines, and a
log axis where a task's values span more than LOG_SPAN."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
from matplotlib.collections import PathCollection

from mona_kit.report_plots import LOG_SPAN, errors_figure, plot_errors


def _row(method, task, seed, value):
    return {"method_label": method, "method": method, "task_label": task, "seed": seed, "metric": "nrmse",
            "higher_is_better": False, "test": {"nrmse": value}, "wall_time_s": 1.0, "peak_memory_mb": 1.0}


ROWS = [
    # "wide": the specialist is 100x below the transfer rows, as on the PDE tasks -> log axis
    *[_row("mean", "wide", s, 1.0) for s in (0, 1)], *[_row("specialist", "wide", s, 0.002) for s in (0, 1)],
    _row("finetune", "wide", 0, 0.20), _row("finetune", "wide", 1, 0.24), _row("mona", "wide", 0, float("nan")),
    # "narrow": everything within 3x -> linear axis
    *[_row("mean", "narrow", s, 0.5) for s in (0, 1)], *[_row("specialist", "narrow", s, 0.2) for s in (0, 1)],
    _row("finetune", "narrow", 0, 0.30), _row("finetune", "narrow", 1, 0.32), _row("mona", "narrow", 0, 0.28),
]


def _ref_lines(ax):
    """The reference rows' lines of an axes: labelled by their method (matplotlib's own start with '_')."""
    return sorted(line.get_ydata()[0] for line in ax.get_lines() if not line.get_label().startswith("_"))


def test_references_are_lines_transfer_rows_points_and_wide_spans_log():
    assert 0.24 / 0.002 > LOG_SPAN > 0.5 / 0.2
    fig = errors_figure(ROWS, references={"mean", "specialist"})
    try:
        wide, narrow = fig.axes[:2]
        assert [t.get_text() for t in wide.get_xticklabels()] == ["finetune", "mona"]  # references are no column
        assert wide.get_yscale() == "log" and narrow.get_yscale() == "linear"
        assert _ref_lines(wide) == [0.002, 1.0] and _ref_lines(narrow) == [0.2, 0.5]
        # finetune's point is its mean; its two seeds are drawn beside it; mona's NaN seed leaves no point
        points = [c for c in wide.collections if isinstance(c, PathCollection)]
        ys = sorted(float(y) for c in points for _, y in c.get_offsets())
        assert ys == [0.20, 0.24]
        means = [float(c.lines[0].get_ydata()[0]) for c in wide.containers]  # one errorbar per transfer row
        assert means == [0.22]  # finetune's mean ± std
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
        assert legend == ["mean (reference)", "specialist (reference)"]
    finally:
        plt.close(fig)


def test_without_references_every_method_is_a_column_and_a_sweep_wraps(tmp_path):
    rows = [_row(m, f"t{k}", 0, 0.1 * (k + 1)) for k in range(6) for m in ("finetune", "mona")]
    fig = errors_figure(rows)
    try:
        visible = [ax for ax in fig.axes if ax.get_visible()]
        assert len(visible) == 6 and len(fig.axes) == 8  # four panels a row: two rows, two left empty
        assert [t.get_text() for t in visible[0].get_xticklabels()] == ["finetune", "mona"] and not fig.legends
    finally:
        plt.close(fig)
    out = plot_errors(rows, tmp_path / "errors.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _curve_row(run_dir, method, task, seed, values):
    """A run whose last stage logged one validation value per 10 steps in its metrics.jsonl."""
    run_dir.mkdir(parents=True)
    events = [{"stage": "finetune", "event": "stage-start", "index": 0, "trains_task": True}]
    events += [{"stage": "finetune", "step": 10 * (k + 1), "split": "val", "nrmse": v} for k, v in enumerate(values)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return {**_row(method, task, seed, values[-1]), "run_dir": str(run_dir)}


def test_learning_curves_go_log_where_a_task_spans_decades(tmp_path, monkeypatch):
    import mona_kit.report_plots as plots

    rows = [_curve_row(tmp_path / "a", "finetune", "pde", 0, [1.0, 0.1, 0.01]),
            _curve_row(tmp_path / "b", "finetune", "cls", 0, [0.5, 0.4, 0.3]),
            _curve_row(tmp_path / "c", "mona", "cls", 0, [0.6, 0.4, 0.35])]
    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.append(fig) or path)
    assert plots.plot_learning(rows, tmp_path / "learning-curves.png") == tmp_path / "learning-curves.png"
    (fig,) = figures
    try:
        pde, cls = fig.axes[:2]
        assert pde.get_yscale() == "log" and cls.get_yscale() == "linear"
        assert [list(line.get_ydata()) for line in cls.get_lines()] == [[0.5, 0.4, 0.3], [0.6, 0.4, 0.35]]
        assert [t.get_text() for t in fig.legends[0].get_texts()] == ["finetune", "mona"]  # one legend, above the panels
    finally:
        plt.close(fig)


def test_a_method_keeps_its_colour_across_figures(tmp_path, monkeypatch):
    """errors.png and learning-curves.png colour a method alike, though the curves also draw the reference."""
    import mona_kit.report_plots as plots

    rows = [{**_curve_row(tmp_path / m, m, "pde", 0, [1.0, 0.5]), "method": m} for m in ("specialist", "finetune", "mona")]
    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.append(fig) or path)
    plots.plot_learning(rows, tmp_path / "l.png", references={"specialist"})
    errors = errors_figure(rows, references={"specialist"})
    try:
        curve_colour = {line.get_label(): line.get_color() for line in figures[0].axes[0].get_lines()}
        point_colour = {label.get_text(): c.lines[0].get_color()
                        for label, c in zip(errors.axes[0].get_xticklabels(), errors.axes[0].containers)}
        assert point_colour == {m: curve_colour[m] for m in ("finetune", "mona")}
        assert curve_colour["specialist"] not in point_colour.values()
    finally:
        plt.close(figures[0])
        plt.close(errors)


def test_one_panel_keeps_its_legend_and_a_wide_spread_its_axis():
    """A one-task report once cut its top legend off both sides; a seed spread wider than the mean once
    pulled a log axis down three decades below every value shown."""
    rows = [*[_row(m, "t", 0, v) for m, v in (("mean", 1.0), ("linear", 0.3), ("knn", 0.5), ("specialist", 0.001))],
            _row("finetune", "t", 0, 0.01), _row("finetune", "t", 1, 1.0), _row("mona", "t", 0, 0.1)]
    fig = errors_figure(rows, references={"mean", "linear", "knn", "specialist"})
    try:
        fig.canvas.draw()
        legend, page = fig.legends[0].get_window_extent(), fig.bbox
        assert page.x0 <= legend.x0 and legend.x1 <= page.x1 and legend.y1 <= page.y1
        ax = fig.axes[0]
        assert ax.get_yscale() == "log" and ax.get_ylim()[0] > 0.0005  # the specialist's 0.001 is the lowest line
    finally:
        plt.close(fig)


def test_mona_kit_plot_draws_a_falling_pde_error_on_a_log_axis(tmp_path, monkeypatch):
    import mona_kit.report as report
    from mona_kit.plotting import plot_runs
    from mona_kit.report_plots import log_if_wide

    fig, ax = plt.subplots()
    assert not log_if_wide(ax, [0.3, 0.2, float("nan"), None]) and ax.get_yscale() == "linear"
    assert not log_if_wide(ax, [0.0, 1.0]) and ax.get_yscale() == "linear"  # zero has no place on a log axis
    assert log_if_wide(ax, [1.0, 0.01]) and ax.get_yscale() == "log"
    plt.close(fig)

    run = tmp_path / "run"
    run.mkdir()
    events = [{"stage": "finetune", "event": "stage-start", "index": 0, "trains_task": True}]
    events += [{"stage": "finetune", "step": s, "loss": 1.0 / s} for s in range(1, 5)]
    events += [{"stage": "finetune", "step": s, "split": "val", "nrmse": 10.0 ** -s} for s in range(1, 5)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (run / "results.json").write_text(json.dumps({"metric": "nrmse", "method": "finetune", "seed": 0}))
    figures = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path: figures.append(fig) or path)
    plot_runs([run], tmp_path / "plots")
    try:
        loss, val = figures[0].axes
        assert loss.get_yscale() == "log" and val.get_yscale() == "log"
    finally:
        plt.close(figures[0])


def test_mona_kit_plot_draws_a_reference_run_as_a_line(tmp_path, monkeypatch):
    """The default job plots MoNA, fine-tuning and `linear`: ridge takes no steps, so it is a line at its
    validation value (the level the curves must get under), not an empty legend entry."""
    import mona_kit.report as report
    from mona_kit.plotting import plot_runs

    trained, ridge = tmp_path / "finetune", tmp_path / "linear"
    for run, method in ((trained, "finetune"), (ridge, "linear")):
        run.mkdir()
        reference = {"reference": {"model": "linear"}} if method == "linear" else {}  # as a reference run records
        (run / "results.json").write_text(json.dumps({"metric": "relative-l2", "method": method, "seed": 0,
                                                      "val": {"relative-l2": 0.244}, **reference}))
    events = [{"stage": "finetune", "event": "stage-start", "index": 0, "trains_task": True}]
    events += [{"stage": "finetune", "step": s, "loss": 1.0 / s} for s in range(1, 5)]
    events += [{"stage": "finetune", "step": s, "split": "val", "relative-l2": 0.5 / s} for s in range(1, 5)]
    (trained / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    figures = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path: figures.append(fig) or path)
    plot_runs([trained, ridge], tmp_path / "plots")
    try:
        loss, val = figures[0].axes
        assert [line.get_label() for line in loss.get_lines()] == ["finetune (seed 0)"]
        lines = {line.get_label(): list(line.get_ydata()) for line in val.get_lines()}
        assert lines["linear (seed 0), fitted"] == [0.244, 0.244] and len(lines["finetune (seed 0)"]) == 4
    finally:
        plt.close(figures[0])


def test_mona_kit_plot_of_a_reference_run_alone_warns_nothing(tmp_path, monkeypatch):
    """A ridge run has no loss curve: its empty panel gets no legend (matplotlib warned on stderr before)."""
    import warnings

    import mona_kit.report as report
    from mona_kit.plotting import plot_runs

    ridge = tmp_path / "linear"
    ridge.mkdir()
    (ridge / "results.json").write_text(json.dumps({"metric": "relative-l2", "method": "linear", "seed": 0,
                                                    "val": {"relative-l2": 0.244}, "reference": {"model": "linear"}}))
    figures = []
    monkeypatch.setattr(report, "save_figure", lambda fig, path: figures.append(fig) or path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_runs([ridge], tmp_path / "plots")
    try:
        loss, val = figures[0].axes
        assert loss.get_legend() is None and val.get_legend() is not None
    finally:
        plt.close(figures[0])
