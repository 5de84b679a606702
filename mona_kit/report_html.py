"""``report.html``: a sweep's report as one self-contained page (no network: styles inline, plots as
data URIs). The table with its reference rows and ◇ / ∅k / †k marks, where every number links to the runs
behind it; table.md's generated sections (flagged cells, against fine-tuning, against the specialist);
per-task error plots, learning and knowledge-reuse curves; and for each run its metrics,
plateau record, config and environment, with links to its folder."""

from __future__ import annotations

import base64
import html
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .atomic_io import RERUN_ADVICE, atomic_write_text
from .report import cell_marks, final_plateau
from .summary import as_number

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1400px; color: #222; padding: 0 1em; }
table.results { border-collapse: collapse; font-size: 0.9em; }
table.results th, table.results td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; vertical-align: top; }
table.results th:first-child, table.results td:first-child { text-align: left; }
tr.block td { background: #f3f3f3; font-style: italic; text-align: left; }
td .seeds { display: block; font-size: 0.75em; }
td .seeds a { margin-left: 0.3em; }
.mark { color: #b00; }
img { max-width: 100%; border: 1px solid #eee; }
details { margin: 0.3em 0; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 0.8em; }
.notes, .command { font-size: 0.85em; color: #444; }
.run { border-top: 1px solid #ddd; padding-top: 0.4em; }
.flag { color: #b00; font-weight: bold; }
"""

#: After load, the page counts the images that decoded (a check for headless browsers and people).
SCRIPT = """
window.addEventListener('load', function () {
  var ok = Array.prototype.filter.call(document.images, function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute('data-images-rendered', String(ok.length));
  document.body.setAttribute('data-images-total', String(document.images.length));
});
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _run_id(index: int) -> str:
    return f"run-{index}"


def _href(output: Path, run_dir: str) -> str:
    """A link to a run folder relative to the report (the sweep folder moves as a whole)."""
    path = Path(run_dir)
    try:
        rel = path.resolve().relative_to(Path(output).resolve())
    except ValueError:
        return path.resolve().as_uri()
    return "/".join(quote(part) for part in rel.parts) + "/"


def _image(path: Path | None, alt: str) -> str:
    if path is None or not Path(path).is_file():
        return ""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{data}"><figcaption>{_e(alt)}</figcaption></figure>'


def _table(model: dict[str, Any], ids: dict[str, str]) -> str:
    n = len(model["tasks"])
    out = ['<table class="results"><thead><tr><th>method</th>']
    out += [f"<th>{_e(h)}</th>" for h in model["headers"]]
    out.append("<th>avg. rank</th></tr></thead><tbody>")
    for block in model["blocks"]:
        if block["name"]:
            out.append(f'<tr class="block"><td colspan="{n + 2}">{_e(block["name"])}</td></tr>')
        for row in block["rows"]:
            out.append(f"<tr><td>{_e(row['method'])}</td>")
            for cell in row["cells"]:
                if cell is None:
                    out.append("<td>–</td>")
                    continue
                runs = sorted(cell["runs"], key=lambda r: r["seed"])
                first = ids[runs[0]["run_dir"]]
                number = f'<a href="#{first}">{_e(cell["text"])}</a>'
                number = f"<b>{number}</b>" if cell["best"] else number
                marks = cell_marks(cell)
                seeds = " ".join(
                    f'<a href="#{ids[r["run_dir"]]}" title="{_e(_value(r))}">s{r["seed"]}</a>' for r in runs
                )
                out.append(f'<td>{number}<span class="mark">{_e(marks)}</span><span class="seeds">seeds:{seeds}</span></td>')
            out.append(f"<td>{_e(row['rank'])}</td></tr>")
    out.append("</tbody></table>")
    out.append(f'<p class="notes">{_e(" ".join(model["notes"]))}</p>')
    return "\n".join(out)


def _inline(text: str) -> str:
    """Escape, then render the two inline marks the generated sections use: **bold** and `code`."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", _e(text)))


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def markdown_section(text: str) -> str:
    """HTML for one of table.md's generated sections: a ``## `` heading, paragraphs and one pipe table
    (header, rule, rows); nothing else is expected, so nothing else is parsed."""
    out: list[str] = []
    lines = [line for line in text.splitlines() if line.strip()]
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            out.append(f"<h2>{_inline(line[3:])}</h2>")
        elif line.startswith("|"):
            header, rows = _cells(line), []
            i += 2  # skip the |---| rule
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            out.append('<table class="results"><thead><tr>' + "".join(f"<th>{_inline(h)}</th>" for h in header)
                       + "</tr></thead><tbody>")
            out += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in rows]
            out.append("</tbody></table>")
            continue
        else:
            out.append(f'<p class="notes">{_inline(line)}</p>')
        i += 1
    return "\n".join(out)


def _value(r: dict[str, Any]) -> str:
    metric = r["metric"]
    value = as_number((r.get("test") or {}).get(metric))
    return f"test {metric} = {value:.6g}" if value is not None else f"test {metric}: none"


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return "(not readable)"


def _run_section(output: Path, r: dict[str, Any], run_id: str) -> str:
    run_dir = Path(r["run_dir"])
    href = _href(output, r["run_dir"])
    metric = r["metric"]
    plateau = final_plateau(r) or {}
    flag = ""
    if plateau.get("plateaued") is False:
        flag = ' <span class="flag">not plateaued</span>'
    elif plateau.get("selection") == "fixed-budget":
        flag = " (fixed budget: too small to select on)"
    env = _read(run_dir / "env.json")
    try:
        env = json.dumps(json.loads(env), indent=1)
    except ValueError:
        pass
    lines = [
        f'<div class="run" id="{run_id}"><h3>{_e(r["method_label"])} / {_e(r["task_label"])} / seed {r["seed"]}{flag}</h3>',
        f'<p><a href="{href}">run folder</a> · <a href="{href}results.json">results.json</a> · '
        f'<a href="{href}metrics.jsonl">metrics.jsonl</a> · <a href="{href}config.yaml">config.yaml</a></p>',
        f"<p>{_e(_value(r))}; validation {metric} = {_e((r.get('val') or {}).get(metric))}; "
        f"{as_number(r.get('wall_time_s')) or 0:.0f} s; peak memory {as_number(r.get('peak_memory_mb')) or 0:.0f} MB</p>",
    ]
    if plateau:
        lines.append(f"<details><summary>plateau record</summary><pre>{_e(json.dumps(r.get('plateau'), indent=1))}</pre></details>")
    lines.append(f"<details><summary>config</summary><pre>{_e(_read(run_dir / 'config.yaml'))}</pre></details>")
    lines.append(f"<details><summary>environment</summary><pre>{_e(env)}</pre></details></div>")
    return "\n".join(lines)


def write_html(output: Path, rows: list[dict[str, Any]], model: dict[str, Any], *, title: str, command: str,
               images: dict[str, Path | None], sections: Sequence[str] = ()) -> Path:
    """Write ``OUTPUT/report.html`` from the finished cells' rows, their :func:`mona_kit.report.table_model` and the
    plots already drawn; ``sections``: table.md's generated sections (flagged cells, comparisons),
    shown below the table."""
    output = Path(output)
    ids = {r["run_dir"]: _run_id(i) for i, r in enumerate(rows)}
    figures = "\n".join(_image(path, caption) for caption, path in images.items())
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<p class="command">Produced by <code>{_e(command)}</code> on {_e(time.strftime("%Y-%m-%d %H:%M %Z"))}; '
        f"{len(rows)} finished runs.</p>",
        "<h2>Results</h2>", _table(model, ids),
        *(markdown_section(section) for section in sections if section),
        "<h2>Plots</h2>", figures or "<p>(no plots)</p>",
        "<h2>Runs</h2>",
        *(_run_section(output, r, ids[r["run_dir"]]) for r in rows),
    ]
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
            "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
            f"<title>{_e(title)}</title>"
            f"<style>{STYLE}</style><script>{SCRIPT}</script></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")
    path = output / "report.html"
    atomic_write_text(path, page, advice=RERUN_ADVICE)
    return path
