"""The sweep's main table as LaTeX (``table.tex``), for pasting into a paper: booktabs rules, the
reference block apart, the best mean per task in bold, the ◇ / ∅k / †k marks as superscripts and a
caption that says what they mean. Built from :func:`mona_kit.report.table_model`, so it always shows
the same numbers as ``table.md``."""

from __future__ import annotations

import re
from typing import Any

# LaTeX's special characters in text mode, and the Unicode a label or cell may carry.
_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
            "±": r"$\pm$", "–": "--", "—": "---", "↓": r"$\downarrow$", "↑": r"$\uparrow$", "×": r"$\times$"}
_ESCAPE_RE = re.compile("|".join(re.escape(c) for c in _ESCAPES))


def latex_escape(text: str) -> str:
    """``text`` safe to place in a LaTeX tabular cell."""
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], text)


def _marks(cell: dict[str, Any]) -> str:
    parts = []
    if cell.get("loses"):
        parts.append(r"\diamond")
    if cell.get("unlearned"):
        parts.append(rf"\emptyset{cell['unlearned']}")
    if cell.get("not_plateaued"):
        parts.append(rf"\dagger{cell['not_plateaued']}")
    return f"$^{{{' '.join(parts)}}}$" if parts else ""


def _cell(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return "--"
    text = latex_escape(cell["text"])
    return (rf"\textbf{{{text}}}" if cell["best"] else text) + _marks(cell)


def _caption(model: dict[str, Any], title: str) -> str:
    parts = [f"{title}: test" if title else "Test",
             r"metric, mean $\pm$ sample std over seeds, model selected on the validation split; best mean per task in bold."]
    if model["baseline"]:
        parts.append(rf"$\diamond$: does not beat the \texttt{{{latex_escape(model['baseline'])}}} reference.")
    if model["floor"]:
        parts.append(rf"$\emptyset k$: $k$ seeds no better than the \texttt{{{latex_escape(model['floor'])}}} reference.")
    parts.append(r"$\dagger k$: $k$ seeds still improving when their budget ended (not plateaued).")
    if model.get("fixed_budget"):
        parts.append(f"{model['fixed_budget']} cells train on a set too small to select on: their runs keep the end "
                     "of a fixed budget instead of the best validation step.")
    # `code` in a method's note becomes typewriter text rather than LaTeX quote marks.
    parts += [re.sub(r"`([^`]*)`", r"\\texttt{\1}", latex_escape(note)) for note in model.get("method_notes", ())]
    return " ".join(parts)


def latex_table(model: dict[str, Any], *, title: str = "") -> str:
    """A ``table*`` environment (needs ``\\usepackage{booktabs,graphicx}``) from a :func:`table_model`:
    task names over their metric in the header, scaled to the text width (a sweep has many columns)."""
    n = len(model["tasks"])
    lines = [r"% Made by mona-kit from the same cells as table.md; needs \usepackage{booktabs,graphicx}.",
             r"\begin{table*}[t]", r"\centering",
             rf"\caption{{{_caption(model, latex_escape(title))}}}",
             r"\resizebox{\textwidth}{!}{%",
             r"\begin{tabular}{l" + "c" * n + "c}", r"\toprule",
             "method & " + " & ".join(latex_escape(t) for t in model["tasks"]) + r" & avg.\ rank \\",
             " & " + " & ".join(latex_escape(m) for m in model["metrics"]) + r" & \\",
             r"\midrule"]
    for i, block in enumerate(model["blocks"]):
        if i:
            lines.append(r"\midrule")
        if block["name"]:
            lines.append(rf"\multicolumn{{{n + 2}}}{{l}}{{\textit{{{latex_escape(block['name'])}}}}} \\")
        for row in block["rows"]:
            cells = [latex_escape(row["method"]), *(_cell(c) for c in row["cells"]), latex_escape(row["rank"])]
            lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}", r"\end{table*}", ""]
    return "\n".join(lines)
