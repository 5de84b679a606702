"""First-party metrics plugin (filled in by its issue)."""

from mona_kit.hookspecs import hookimpl


@hookimpl
def register_metrics(register):
    pass
