"""``mona-kit hooks``: the hook specs a plugin can implement, with their docs."""

from __future__ import annotations

import inspect
import re

from .. import api, hookspecs
from ..kit import HOOKS

#: ``mona_kit.components.Backbone`` and the like: an internal module's name that mona_kit.api also exports.
_INTERNAL = re.compile(r"\bmona_kit\.[a-z_]+\.([A-Za-z_]\w*)\b")


def public_names(text: str) -> str:
    """``text`` with each internal ``mona_kit.MODULE.NAME`` that mona_kit.api exports as ``mona_kit.api.NAME``
    (plugins import only from mona_kit.api); others are left as they are."""

    def public(match: re.Match[str]) -> str:
        name = match.group(1)
        module = match.group(0).rsplit(".", 1)[0]
        return f"mona_kit.api.{name}" if api._WHERE.get(name) == module else match.group(0)

    return _INTERNAL.sub(public, text)


def configure(parser) -> None:
    pass


def run(args, kit) -> int:
    print("Plugins implement these hooks with @hookimpl and import every name from mona_kit.api "
          "(docs/hooks.md has examples).\n")
    for name in HOOKS:
        fn = getattr(hookspecs, name)
        doc = public_names(inspect.getdoc(fn) or "")
        print(f"{name}{inspect.signature(fn)}")
        for line in doc.splitlines():
            print(f"    {line}")
        print()
    return 0
