"""``mona-kit describe NAME``: summary, metadata, config fields and provider."""

from __future__ import annotations

import json

from ..config import describe_fields


def configure(parser) -> None:
    parser.add_argument("name", help="a registered name (any kind), a prefixed form like hf:/path, or a settings "
                        "section: run, train, diagnostics, profile")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def describe_section(name: str, as_json: bool) -> int:
    """``describe run|train|diagnostics|profile``: settings, not components."""
    from ..settings_doc import TITLES, section_rows

    rows = section_rows(name)
    if as_json:
        print(json.dumps({"name": name, "kind": "settings", "summary": TITLES[name], "config": rows}, indent=2))
        return 0
    print(f"{name}  (settings)")
    print(f"  {TITLES[name]}")
    for f in rows:
        bounds = f" ({f['range']})" if f.get("range") else ""
        kind = f": {f['type']}" if f["type"] else ""
        print(f"    {f['name']}{kind}{bounds} = {f['default']}" + (f"  -- {f['help']}" if f["help"] else ""))
    return 0


def run(args, kit) -> int:
    from ..errors import UnknownNameError
    from ..settings_doc import SECTIONS

    try:
        entries = kit.find(args.name)
    except UnknownNameError as exc:
        if args.name in SECTIONS:  # no component has the name: the settings section it names
            return describe_section(args.name, args.json)
        raise UnknownNameError(f"{exc} Settings: 'mona-kit describe {'|'.join(SECTIONS)}'.") from exc
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": e.name,
                        "kind": e.kind[:-1],
                        "summary": e.summary,
                        "plugin": str(e.provider),
                        "meta": {k: v for k, v in e.meta.items() if isinstance(v, (str, int, float, bool, list, tuple, type(None)))},
                        "config": describe_fields(e.config),
                    }
                    for e in entries
                ],
                indent=2,
            )
        )
        return 0
    for e in entries:
        print(f"{e.name}  ({e.kind[:-1]})")
        if e.summary:
            print(f"  {e.summary}")
        print(f"  provided by: {e.provider}")
        for key, value in sorted(e.meta.items()):
            if isinstance(value, (str, int, float, bool, list, tuple)) and not callable(value):
                print(f"  {key}: {value}")
        fields = describe_fields(e.config)
        if fields:
            print("  config:")
            for f in fields:
                bounds = f" ({f['range']})" if f.get("range") else ""
                print(f"    {f['name']}: {f['type']}{bounds} = {f['default']}" + (f"  -- {f['help']}" if f["help"] else ""))
        else:
            print("  config: (no options)")
    return 0
