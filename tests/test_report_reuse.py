"""The knowledge-reuse table: first vs last probe of each run's last training stage, mean over
seeds, and the count of tasks where a method ends above fine-tuning."""

import json

from mona_kit.report_reuse import cka_summary, reuse_markdown, reuse_summary


def run_row(tmp_path, method, task, seed, probes):
    """A row whose run directory logged ``probes`` = [(stage, step, accuracy)] as knowledge-reuse events."""
    run = tmp_path / f"{method}-{task}-{seed}"
    run.mkdir()
    lines = [{"stage": stage, "step": step, "event": "knowledge-reuse", "davies_bouldin": 10 - acc, "probe_accuracy": acc}
             for stage, step, acc in probes]
    lines.insert(1, {"stage": probes[0][0], "step": 1, "loss": 0.5})  # other events are ignored
    (run / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    return {"method_label": method, "task_label": task, "seed": seed, "run_dir": str(run)}


def test_summary_compares_first_and_last_probe_of_the_last_stage(tmp_path):
    rows = [
        # MoNA's meta stage also probed; only the last stage (fine-tuning) counts.
        run_row(tmp_path, "mona", "a", 0, [("meta-align", 0, 0.1), ("finetune", 0, 0.60), ("finetune", 100, 0.70)]),
        run_row(tmp_path, "mona", "a", 1, [("finetune", 0, 0.60), ("finetune", 50, 0.9), ("finetune", 100, 0.66)]),
        run_row(tmp_path, "finetune", "a", 0, [("finetune", 0, 0.60), ("finetune", 100, 0.62)]),
        run_row(tmp_path, "finetune", "b", 0, [("finetune", 0, 0.60), ("finetune", 100, 0.50)]),
        run_row(tmp_path, "mona", "b", 0, [("finetune", 0, 0.60), ("finetune", 100, 0.40)]),
        run_row(tmp_path, "scratch", "a", 0, [("finetune", 0, 0.5)]),  # one probe: nothing to compare
        run_row(tmp_path, "linear", "a", 0, [("fit", 0, 0.5), ("fit", 10, 0.5)]),  # left out by skip
    ]
    summary = reuse_summary(rows)
    assert set(summary) == {("mona", "a"), ("finetune", "a"), ("finetune", "b"), ("mona", "b"), ("linear", "a")}
    mona = summary[("mona", "a")]
    assert mona["n"] == 2 and abs(mona["start_acc"] - 0.60) < 1e-12 and abs(mona["end_acc"] - 0.68) < 1e-12
    assert abs(mona["end_db"] - (10 - 0.68)) < 1e-12

    table = reuse_markdown(rows, skip={"linear"})
    assert "| mona | 0.680 (+0.080) | 0.400 (-0.200) | 1 of 2 |" in table
    assert "| finetune | 0.620 (+0.020) | 0.500 (-0.100) | — |" in table
    assert "| linear |" not in table and "| scratch |" not in table


def test_no_reuse_events_no_section(tmp_path):
    assert reuse_markdown([run_row(tmp_path, "finetune", "a", 0, [("finetune", 0, 0.6)])]) == ""


def test_non_finite_probe_values_are_left_out_and_labels_map_to_methods(tmp_path):
    diverged = run_row(tmp_path, "ft-long", "a", 1, [("finetune", 0, 0.6), ("finetune", 100, 0.7)])
    metrics = diverged["run_dir"] + "/metrics.jsonl"
    with open(metrics, "a") as f:  # the run logger writes NaN as the string "nan"
        f.write(json.dumps({"stage": "finetune", "step": 200, "event": "knowledge-reuse", "davies_bouldin": "nan",
                            "probe_accuracy": "nan"}) + "\n")
    rows = [
        {**run_row(tmp_path, "ft-long", "a", 0, [("finetune", 0, 0.6), ("finetune", 100, 0.64)]), "method": "finetune"},
        {**diverged, "method": "finetune"},
        {**run_row(tmp_path, "mona-x", "a", 0, [("finetune", 0, 0.6), ("finetune", 100, 0.7)]), "method": "mona"},
        {**run_row(tmp_path, "ridge", "a", 0, [("fit", 0, 0.5), ("fit", 1, 0.5)]), "method": "linear"},
    ]
    assert reuse_summary(rows)[("ft-long", "a")]["n"] == 1
    table = reuse_markdown(rows, skip={"linear"})  # registered names, whatever the labels
    assert "| ridge |" not in table
    assert "| mona-x | 0.700 (+0.100) | 1 of 1 |" in table  # compared with the label running finetune


def test_cka_table_from_the_runs_that_logged_it(tmp_path):
    def with_cka(row, values):
        """Append CKA-carrying probes [(step, accuracy, cka)] to the row's last stage."""
        with open(row["run_dir"] + "/metrics.jsonl", "a") as f:
            for step, acc, cka in values:
                f.write(json.dumps({"stage": "finetune", "step": step, "event": "knowledge-reuse", "davies_bouldin": 1.0,
                                    "probe_accuracy": acc, "cka_to_pretrained": cka}) + "\n")
        return row

    rows = [
        with_cka(run_row(tmp_path, "finetune", "a", 0, [("finetune", 0, 0.6)]), [(100, 0.6, 1.0), (200, 0.6, 0.5)]),
        with_cka(run_row(tmp_path, "mona", "a", 0, [("finetune", 0, 0.6)]), [(100, 0.6, 1.0), (200, 0.6, 0.8)]),
        with_cka(run_row(tmp_path, "mona", "a", 1, [("finetune", 0, 0.6)]), [(100, 0.6, 1.0), (200, 0.6, 0.6)]),
        run_row(tmp_path, "mona", "a", 2, [("finetune", 0, 0.6), ("finetune", 100, 0.6)]),  # an older run: no CKA
        with_cka(run_row(tmp_path, "scratch", "a", 0, [("finetune", 0, 0.6)]), [(100, 0.6, 0.3), (200, 0.6, "nan")]),
    ]
    summary = cka_summary(rows)
    assert set(summary) == {("finetune", "a"), ("mona", "a")}  # the diverged scratch seed is left out
    assert summary[("mona", "a")] == {"start": 1.0, "end": 0.7, "n": 2}
    table = reuse_markdown(rows)
    assert "Linear CKA" in table
    assert "| mona | 0.700 (-0.300) n=2 | 1 of 1 |" in table and "| finetune | 0.500 (-0.500) n=1 | — |" in table
    assert "Linear CKA" not in reuse_markdown([run_row(tmp_path, "finetune", "b", 0, [("finetune", 0, 0.6), ("finetune", 9, 0.6)])])
