"""mona-kit: cross-modality transfer (MoNA, ORCA, PaRe, FPT and baselines) as plugins.

The Python API (docs/python-api.md): ``load_kit()``, ``create_model(backbone, task, ...)`` and
``fit(method, task, **config)`` returning a ``FitResult``; errors are ``MonaError``.
"""

from .errors import MonaError
from .hookspecs import hookimpl

__all__ = ["FitResult", "MonaError", "TaskSpec", "__version__", "create_model", "fit", "hookimpl", "load_kit"]
__version__ = "0.1.0"

#: Public names imported on first use, so ``import mona_kit`` (and the CLI) stays light.
_LAZY = {
    "FitResult": "mona_kit.api",
    "create_model": "mona_kit.api",
    "fit": "mona_kit.api",
    "load_kit": "mona_kit.api",
    "TaskSpec": "mona_kit.components",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mona_kit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
