"""The results tables quoted in README.md and docs/results.md are the committed report's, not a stale copy
(benchmarks/sync_doc_tables.py keeps them in step)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import sync_doc_tables  # noqa: E402

REPORT = """### demo: 2 of the profile's 4 cells

| method | t (nrmse ↓) | avg. rank |
|---|---|---|
| mean | 1.0 ± 0 | – |

Test-split metric, mean ± sample std over seeds.

## Flagged cells

Every marked cell of the table, seed by seed.

| task | method | marks | test metric per seed | `linear` | `mean` | still improving at the end |
|---|---|---|---|---|---|---|
| t | fpt | ◇ †1 | s0 0.4 | 0.3 | 1 | s0 2.5 % |

## Against fine-tuning

Each row against finetune.

| method | t ↓ |
|---|---|
| fpt | **1.90× (0/1)** |

## Against the specialist

The best transfer row per task.

| task | best transfer row | its test metric | specialist row | its test metric | ratio | within 1.5× |
|---|---|---|---|---|---|---|
| t | finetune | 0.21 ± 0.01 (n=2) | specialist | 0.1 | 2.10× | no |

## Knowledge reuse

Source linear-probe accuracy.

| method | t | tasks above finetune |
|---|---|---|
| finetune | 0.7 (+0.1) | — |

Linear CKA of the body's source features to the pretrained body's.

| method | t | tasks above finetune |
|---|---|---|
| finetune | 0.9 (-0.1) n=1 | — |


Produced by: `mona-kit sweep demo.yaml`
"""


@pytest.mark.parametrize("page", sync_doc_tables.PAGES, ids=lambda p: p.name)
def test_committed_pages_quote_the_committed_report(page: Path) -> None:
    text = page.read_text()
    assert "<!-- sync: " in text, f"{page} quotes no report table"
    _, stale = sync_doc_tables.synced(text, ROOT / "benchmarks" / "results")
    assert stale == [], f"{page}: {stale} lag table.md; run python benchmarks/sync_doc_tables.py"


def test_blocks_are_cut_from_the_report(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "table.md").write_text(REPORT)
    blocks = sync_doc_tables.blocks_from_report(tmp_path / "demo" / "table.md")
    assert blocks["demo:table"].splitlines()[:3] == ["**demo: 2 of the profile's 4 cells**", "",
                                                     "| method | t (nrmse ↓) | avg. rank |"]
    assert blocks["demo:table"].endswith("Test-split metric, mean ± sample std over seeds.")
    assert blocks["demo:flags"].splitlines()[2].startswith("| task | method | marks |")
    assert blocks["demo:flags"].splitlines()[-1] == "| t | fpt | ◇ †1 | s0 0.4 | 0.3 | 1 | s0 2.5 % |"
    assert blocks["demo:against-finetune"].splitlines() == ["Each row against finetune.", "", "| method | t ↓ |", "|---|---|",
                                                            "| fpt | **1.90× (0/1)** |"]
    assert blocks["demo:against-specialist"].startswith("The best transfer row per task.\n\n| task |")
    assert blocks["demo:against-specialist"].endswith("| t | finetune | 0.21 ± 0.01 (n=2) | specialist | 0.1 | 2.10× | no |")
    assert blocks["demo:reuse"].splitlines()[-1] == "| finetune | 0.7 (+0.1) | — |"
    assert blocks["demo:cka"].startswith("Linear CKA")
    assert blocks["demo:cka"].splitlines()[-1] == "| finetune | 0.9 (-0.1) n=1 | — |"


def test_a_stale_block_is_replaced_and_named(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "table.md").write_text(REPORT)
    page = "intro\n\n<!-- sync: demo:cka -->\nold table\n<!-- /sync: demo:cka -->\n\nafter\n"
    text, stale = sync_doc_tables.synced(page, tmp_path)
    assert stale == ["demo:cka"]
    assert "old table" not in text and "| finetune | 0.9 (-0.1) n=1 | — |\n\n<!-- /sync: demo:cka -->" in text
    assert text.startswith("intro\n\n<!-- sync: demo:cka -->\n\nLinear CKA") and text.endswith("\n\nafter\n")
    assert sync_doc_tables.synced(text, tmp_path) == (text, [])


def test_a_block_naming_a_missing_part_says_which(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "table.md").write_text(REPORT.split("## Knowledge reuse")[0])
    with pytest.raises(SystemExit, match="'demo:cka'.*has no such part"):
        sync_doc_tables.synced("<!-- sync: demo:cka -->\n\n<!-- /sync: demo:cka -->", tmp_path)
    with pytest.raises(SystemExit, match="'other:table'.*does not exist"):
        sync_doc_tables.synced("<!-- sync: other:table -->\n\n<!-- /sync: other:table -->", tmp_path)


def test_a_table_md_that_is_no_sweep_report_is_quoted_whole(tmp_path: Path) -> None:
    (tmp_path / "perf").mkdir()
    (tmp_path / "perf" / "table.md").write_text("Measured on X.\n\n| benchmark | measured | target |\n|---|---|---|\n| a | 1× | met |\n")
    text, stale = sync_doc_tables.synced("<!-- sync: perf:whole -->\nold\n<!-- /sync: perf:whole -->\n", tmp_path)
    assert stale == ["perf:whole"]
    assert text == ("<!-- sync: perf:whole -->\n\nMeasured on X.\n\n| benchmark | measured | target |\n|---|---|---|\n"
                    "| a | 1× | met |\n\n<!-- /sync: perf:whole -->\n")
    with pytest.raises(SystemExit, match="'perf:table'.*has no such part"):
        sync_doc_tables.synced("<!-- sync: perf:table -->\n\n<!-- /sync: perf:table -->", tmp_path)


def test_an_empty_block_is_filled_and_an_unclosed_one_named(tmp_path: Path) -> None:
    """Markers on adjacent lines (a new block) matched nothing, so sync left the block empty without a word."""
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "table.md").write_text(REPORT)
    text, stale = sync_doc_tables.synced("a\n<!-- sync: demo:cka -->\n<!-- /sync: demo:cka -->\nb\n", tmp_path)
    assert stale == ["demo:cka"]
    assert text.startswith("a\n<!-- sync: demo:cka -->\n\nLinear CKA") and text.endswith("n=1 | — |\n\n<!-- /sync: demo:cka -->\nb\n")
    with pytest.raises(SystemExit, match="'demo:cka': opening marker without its pair"):
        sync_doc_tables.synced("<!-- sync: demo:cka -->\n\nold\n", tmp_path)


def test_a_stray_or_repeated_marker_is_refused_before_prose_is_lost(tmp_path: Path) -> None:
    """A name closed elsewhere or opened twice once passed unnoticed, and the rewrite ate the prose between."""
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "table.md").write_text(REPORT)
    block = "<!-- sync: demo:cka -->\n\nold\n\n<!-- /sync: demo:cka -->\n"
    with pytest.raises(SystemExit, match="'demo:cka': opening marker without its pair"):
        sync_doc_tables.synced(block + "prose\n<!-- sync: demo:cka -->\n", tmp_path)
    with pytest.raises(SystemExit, match="'demo:cka': another sync marker"):
        sync_doc_tables.synced("<!-- sync: demo:cka -->\n\nold\n\nPROSE\n\n" + block, tmp_path)
    with pytest.raises(SystemExit, match="'demo:cka': closing marker without its pair"):
        sync_doc_tables.synced(block + "prose\n<!-- /sync: demo:cka -->\n", tmp_path)
    assert sync_doc_tables.synced(block + "\n" + block, tmp_path)[1] == ["demo:cka", "demo:cka"]  # two blocks, one name
