"""``mona-kit plugins``: every loaded plugin with its version and contributions."""

from __future__ import annotations

import json


def configure(parser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args, kit) -> int:
    rows = [
        {
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "builtin": info.builtin,
            "components": kit.contributions(info.name),
        }
        for info in kit.plugins.values()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        origin = "built-in" if row["builtin"] else "entry point"
        print(f"{row['name']}  {row['distribution']} {row['version']} ({origin})")
        for kind, names in row["components"].items():
            print(f"  {kind}: {', '.join(names)}")
    return 0
