"""First-party methods plugin (filled in by its issue)."""

from mona_kit.hookspecs import hookimpl


@hookimpl
def register_methods(register):
    pass
