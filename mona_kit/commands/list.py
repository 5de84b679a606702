"""``mona-kit list KIND [GLOB]``."""

from __future__ import annotations

import json

from ..registry import KINDS


def configure(parser) -> None:
    parser.add_argument("kind", choices=KINDS, help="what to list")
    parser.add_argument("pattern", nargs="?", default="*", help="glob filter, e.g. 'seq*'")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.intermixed = True  # the glob may follow the flags too: list methods --json 'mon*'


def run(args, kit) -> int:
    reg = kit.registry(args.kind)
    entries = reg.list(args.pattern)
    prefixes = {p: v for p, v in reg.prefixes().items() if args.pattern == "*" or __import__("fnmatch").fnmatch(p + ":", args.pattern)}
    if args.json:
        rows = [{"name": e.name, "summary": e.summary, "plugin": e.provider.plugin, "role": e.meta.get("role")} for e in entries]
        rows += [{"name": f"{p}:...", "summary": s, "plugin": prov.plugin, "role": None} for p, (prov, s) in prefixes.items()]
        print(json.dumps(rows, indent=2))
        return 0
    names = [e.name for e in entries] + [f"{p}:..." for p in prefixes]
    width = max((len(n) for n in names), default=0)
    for e in entries:
        role = f"[{e.meta['role']}] " if e.meta.get("role") and args.kind == "objectives" else ""
        print(f"{e.name:<{width}}  {role}{e.summary}")
    for p, (_provider, summary) in prefixes.items():
        print(f"{p + ':...':<{width}}  {summary}")
    if not names:
        print(no_match(args.kind, args.pattern))
    return 0


def no_match(kind: str, pattern: str) -> str:
    """The line ``list`` and ``data list`` print when nothing is listed."""
    if pattern != "*":
        return f"(no {kind} match {pattern!r})"
    return "(no plugin commands installed)" if kind == "commands" else f"(no {kind} registered)"
