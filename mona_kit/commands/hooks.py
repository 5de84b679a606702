"""``mona-kit hooks``: the hook specs a plugin can implement, with their docs."""

from __future__ import annotations

import inspect

from .. import hookspecs
from ..kit import HOOKS


def configure(parser) -> None:
    pass


def run(args, kit) -> int:
    for name in HOOKS:
        fn = getattr(hookspecs, name)
        doc = inspect.getdoc(fn) or ""
        print(f"{name}{inspect.signature(fn)}")
        for line in doc.splitlines():
            print(f"    {line}")
        print()
    return 0
