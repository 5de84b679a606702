"""First-party objectives plugin (filled in by its issue)."""

from mona_kit.hookspecs import hookimpl


@hookimpl
def register_objectives(register):
    pass
