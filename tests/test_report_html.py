"""report.html (issue 17, item 3): one self-contained page per sweep, opened in headless Chromium:
the table with its reference block and marks renders, every number links to a run section that
exists, and every plot (embedded as a data URI) decodes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mona_kit.report import write_report
from mona_kit.sweep import collect
from mona_kit.sweep_profile import Cell

METRIC = "relative-l2"


def _cell(out: Path, method: str, task: str, seed: int, value: float, *, plateaued: bool = True) -> None:
    run = out / "cells" / method / task / f"seed{seed}"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"task": task, "method": {"name": method}, "seed": seed}))
    (run / "env.json").write_text(json.dumps({"python": "3.11", "cpu_threads": 1, "versions": {"torch": "2.14.1"}}))
    events = []
    for step in (10, 20, 30):
        events.append({"stage": "finetune", "step": step, "epoch": 0, "loss": 1.0 / step})
        events.append({"stage": "finetune", "step": step, "split": "val", METRIC: value + 1.0 / step})
        events.append({"stage": "finetune", "step": step, "event": "knowledge-reuse", "davies_bouldin": 2.0 + step / 100,
                       "probe_accuracy": 0.9 - step / 100})
    (run / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    results = {"method": method, "task": task, "seed": seed, "metric": METRIC, "higher_is_better": False,
               "val": {METRIC: value}, "test": {METRIC: value}, "wall_time_s": 5.0, "peak_memory_mb": 300.0}
    if method != "linear":
        results["plateau"] = {"finetune": {"plateaued": plateaued, "selection": "best-validation"}}
    (run / "results.json").write_text(json.dumps(results))


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no headless Chromium on this machine (Debian: apt-get install chromium; .ci/run installs it)")


def _collect(out: Path) -> list[dict]:
    """The report's rows, as a sweep collects them: every cell made above is a cell of the profile."""
    cells = [Cell(p.parent.parent.name, p.parent.name, int(p.name[4:]), yaml.safe_load((p / "config.yaml").read_text()))
             for p in sorted(out.glob("cells/*/*/seed*"))]
    return collect(out, cells)


def test_report_html_renders_in_headless_chromium(tmp_path):
    browser = _chromium()
    out = tmp_path / "sweep"
    for seed in (0, 1):
        _cell(out, "linear", "darcy-16", seed, 0.5)
        _cell(out, "finetune", "darcy-16", seed, 0.4 + seed / 100)
        _cell(out, "mona", "darcy-16", seed, 0.6, plateaued=seed == 0)  # loses to linear; one seed still improving
        _cell(out, "finetune", "burgers-1d", seed, 0.3)
    rows = _collect(out)
    written = write_report(out, rows, title="t: 8 cells", command="mona-kit sweep p.yaml", references={"linear"})
    page = out / "report.html"
    assert page in written
    text = page.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), "the report must not reach the network"

    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=180,
    ).stdout
    assert "<table" in dom, "Chromium printed no DOM"
    images = re.search(r'data-images-rendered="(\d+)"[^>]*data-images-total="(\d+)"', dom)
    assert images, "the page's load handler did not run"
    assert images.group(1) == images.group(2) == "3"  # errors, learning curves, knowledge reuse: all decoded
    table = dom[dom.index('<table class="results"'):dom.index("</table>")]
    assert re.findall(r"<td>(linear|finetune|mona)</td>", table) == ["linear", "finetune", "mona"]
    assert ">reference</td>" in table and ">transfer</td>" in table
    assert "◇ †1" in table  # mona: does not beat the linear reference, one seed not plateaued
    targets = set(re.findall(r'href="#(run-\d+)"', table))
    ids = set(re.findall(r'id="(run-\d+)"', dom))
    assert len(targets) == len(rows) and targets <= ids  # every run is linked from its number, and exists
    assert "not plateaued" in dom and "cpu_threads" in dom  # plateau flag, environment record
    for link in re.findall(r'href="(cells/[^"#]+)"', dom):
        assert (out / link).exists(), link


def test_report_html_shows_the_generated_sections(tmp_path):
    from mona_kit.report_html import markdown_section

    out = tmp_path / "sweep"
    for seed in (0, 1):
        _cell(out, "linear", "darcy-16", seed, 0.5)
        _cell(out, "finetune", "darcy-16", seed, 0.4 + seed / 100)
        _cell(out, "mona", "darcy-16", seed, 0.6, plateaued=seed == 0)
    write_report(out, _collect(out), title="t", command="mona-kit sweep p.yaml", references={"linear"})
    text = (out / "report.html").read_text()
    for heading in ("Flagged cells", "Against fine-tuning"):  # table.md's sections, on the page too
        assert f"<h2>{heading}</h2>" in text
    assert "<td><b>1.48× (0/2)</b></td>" in text  # 0.6 / 0.405: mona's mean over finetune's, both seeds worse, sets apart
    html = markdown_section("## A `b`\n\nSome **c** <x>.\n\n| h | i |\n|---|---|\n| **1** | `2` |")
    assert html.splitlines() == ["<h2>A <code>b</code></h2>", '<p class="notes">Some <b>c</b> &lt;x&gt;.</p>',
                                 '<table class="results"><thead><tr><th>h</th><th>i</th></tr></thead><tbody>',
                                 "<tr><td><b>1</b></td><td><code>2</code></td></tr>", "</tbody></table>"]
