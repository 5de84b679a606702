"""First-party metrics: the error forms NAS-Bench-360 and PDEBench report (lower is better)."""

from mona_kit.api import hookimpl


@hookimpl
def register_metrics(register):
    from . import definitions

    definitions.register_all(register)
