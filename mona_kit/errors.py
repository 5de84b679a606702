"""User-facing errors.

Every error a user can cause (bad name, bad config, bad file, bad plugin) is a
:class:`MonaError`: the CLI prints its one-line message and exits with status 2,
never a traceback (``--debug`` shows one).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MonaError(Exception):
    """An error whose message is the whole story: what is wrong and how to fix it."""

    exit_code = 2

    def __init__(self, message: str):
        # One line: the CLI prints it as-is, so embedded newlines would break that promise.
        super().__init__(" ".join(str(message).split()))


#: The attribute a KeyboardInterrupt that went through a run carries: the folder of the run it left to
#: resume, or None when it came before the run started (set by the runner, read by the CLI's line).
INTERRUPTED_RUN = "mona_kit_run_dir"


class UnknownNameError(MonaError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class ConfigError(MonaError):
    pass


class PluginError(MonaError):
    pass


class DataError(MonaError):
    pass


class ShapeError(MonaError):
    pass


class CheckpointError(MonaError):
    pass


class NumericalError(MonaError):
    pass


def closest(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The registered names a typo most likely meant."""
    # Text only: a non-str name or candidate (a YAML key like 1 or null) would make difflib raise TypeError.
    name = str(name)
    candidates = [str(c) for c in candidates]
    found = difflib.get_close_matches(name, candidates, n=n, cutoff=0.5)
    if not found:
        found = [c for c in candidates if name and (name in c or c in name)][:n]
    return found


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    found = closest(name, candidates)
    return f" Did you mean {', '.join(repr(f) for f in found)}?" if found else ""
