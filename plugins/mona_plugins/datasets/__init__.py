"""First-party datasets plugin (filled in by its issue)."""

from mona_kit.hookspecs import hookimpl


@hookimpl
def register_datasets(register):
    pass
