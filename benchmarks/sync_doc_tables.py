"""Copy a sweep report's tables into README.md and docs/results.md, between marker comments.

    python benchmarks/sync_doc_tables.py            # rewrite the pages' marked blocks from table.md
    python benchmarks/sync_doc_tables.py --check    # exit 1 (and name the block) if any differs

Each block sits between ``<!-- sync: RESULTS:PART -->`` and ``<!-- /sync: RESULTS:PART -->``; it is
replaced by PART of ``benchmarks/results/RESULTS/table.md`` (made by ``mona-kit sweep PROFILE
--report-only``): ``table`` (the count of finished cells, the results table and its caption),
``flags`` (the table of marked cells, seed by seed), ``against-finetune`` (each transfer row against
fine-tuning), ``against-specialist`` (the best transfer row against the specialist), ``reuse`` (the
knowledge-reuse probe table) or ``cka`` (the CKA table and its caption); each of the three generated
sections comes with its caption. Hand-copying them had let the README lag the committed cells. A
``table.md`` that is not a sweep report, such as ``benchmarks/results/perf/table.md`` (made by
``benchmarks/perf_table.py`` from a committed benchmark run), is quoted whole as block ``NAME:whole``.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "docs" / "results.md"]
# A blank line pads the body on either side, so Markdown renders the table apart from the comments. The
# body may be empty (a new block's markers on adjacent lines), which the pattern once skipped without a word.
BLOCK = re.compile(r"<!-- sync: (?P<name>[\w:-]+) -->\n(?:\n?(?P<body>.*?)\n)??\n?<!-- /sync: (?P=name) -->", re.S)
MARKER = re.compile(r"<!-- /?sync: (?P<name>[\w:-]+) -->")


def _lines_from(lines: list[str], start: int) -> list[str]:
    """The paragraph or table that begins at ``start``: every line up to the next blank one."""
    end = start
    while end < len(lines) and lines[end].strip():
        end += 1
    return lines[start:end]


def _find(lines: list[str], prefix: str, start: int = 0) -> int | None:
    """Index of the first line from ``start`` on that starts with ``prefix`` (None when none does)."""
    return next((i for i in range(start, len(lines)) if lines[i].startswith(prefix)), None)


def _index(lines: list[str], prefix: str, source: Path, start: int = 0) -> int:
    """As :func:`_find`, for a line the report always has."""
    i = _find(lines, prefix, start)
    if i is None:
        raise SystemExit(f"{source}: no line starting with {prefix!r}; re-make it with `mona-kit sweep PROFILE --report-only`")
    return i


def blocks_from_report(table_md: Path) -> dict[str, str]:
    """The page blocks a report's ``table.md`` provides, by block name."""
    lines = table_md.read_text().splitlines()
    name = table_md.parent.name
    top = _index(lines, "| method |", table_md)
    caption = _index(lines, "Test-split", table_md)
    title = next((line.lstrip("#").strip() for line in lines[:top] if line.startswith("#")), None)
    counted = [f"**{title}**", ""] if title else []  # "main-cpu: 88 of the profile's 234 cells"
    blocks = {f"{name}:table": "\n".join([*counted, *lines[top:caption + 1]])}
    for heading, part in (("## Flagged cells", "flags"), ("## Against fine-tuning", "against-finetune"),
                          ("## Against the specialist", "against-specialist")):
        at = _find(lines, heading)
        if at is not None:  # the caption paragraph, then its table
            caption_lines = _lines_from(lines, at + 2)
            blocks[f"{name}:{part}"] = "\n".join([*caption_lines, "", *_lines_from(lines, at + 3 + len(caption_lines))])
    reuse = _find(lines, "## Knowledge reuse")
    if reuse is not None:
        blocks[f"{name}:reuse"] = "\n".join(_lines_from(lines, _index(lines, "| method |", table_md, reuse)))
    cka = _find(lines, "Linear CKA")
    if cka is not None:
        blocks[f"{name}:cka"] = "\n".join([*lines[cka:cka + 1], "", *_lines_from(lines, cka + 2)])
    return blocks


def _check_markers(page_text: str) -> None:
    """Every marker must open or close a block that BLOCK matches, and no block may hold another marker:
    a stray or repeated opening would otherwise be skipped without a word, or swallow the prose between
    it and a later closing when the block is rewritten."""
    ends: set[int] = set()
    for block in BLOCK.finditer(page_text):
        ends |= {block.start(), block.end()}
        inner = MARKER.search(page_text, block.start() + 1, block.end() - 1)
        if inner:
            raise SystemExit(f"block {block['name']!r}: another sync marker ({inner.group()}) inside it; "
                             f"each block needs its own closing line before the next opens")
    for marker in MARKER.finditer(page_text):
        if marker.start() not in ends and marker.end() not in ends:
            kind = "closing" if marker.group().startswith("<!-- /") else "opening"
            raise SystemExit(f"block {marker['name']!r}: {kind} marker without its pair; "
                             f"write '<!-- sync: NAME -->' and '<!-- /sync: NAME -->' on lines of their own")


def synced(page_text: str, results: Path) -> tuple[str, list[str]]:
    """A page's text with every sync block replaced from ``results/RESULTS/table.md``, and the blocks that changed."""
    changed: list[str] = []
    reports: dict[Path, dict[str, str]] = {}  # each table.md read once, however many blocks quote it

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        table_md = results / name.split(":")[0] / "table.md"
        if not table_md.is_file():
            raise SystemExit(f"block {name!r}: {table_md} does not exist")
        if table_md not in reports:
            text = table_md.read_text().strip()
            # A table.md that is not a sweep report (benchmarks/perf_table.py's) is quoted whole.
            reports[table_md] = blocks_from_report(table_md) if "| method |" in text else {f"{table_md.parent.name}:whole": text}
        blocks = reports[table_md]
        if name not in blocks:
            raise SystemExit(f"block {name!r}: {table_md} has no such part (it has {', '.join(blocks)})")
        if blocks[name] != (match["body"] or ""):
            changed.append(name)
        return f"<!-- sync: {name} -->\n\n{blocks[name]}\n\n<!-- /sync: {name} -->"

    _check_markers(page_text)
    return BLOCK.sub(replace, page_text), changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report blocks that differ (exit 1)")
    args = parser.parse_args(argv)
    stale, rewritten = [], []
    for page in PAGES:
        before = page.read_text()
        text, changed = synced(before, ROOT / "benchmarks" / "results")
        stale += [f"{page.relative_to(ROOT)} {name}" for name in changed]
        if text != before and not args.check:  # also when only the blank-line padding was missing
            page.write_text(text)
            rewritten.append(str(page.relative_to(ROOT)))
    if args.check:
        for block in stale:
            print(f"{block} differs from its table.md; run python benchmarks/sync_doc_tables.py")
        return 1 if stale else 0
    print(f"updated: {', '.join(stale or rewritten)}" if rewritten else "already in sync")
    return 0


if __name__ == "__main__":
    sys.exit(main())
