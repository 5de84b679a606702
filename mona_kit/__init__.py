"""mona-kit: cross-modality transfer (MoNA, ORCA, PaRe, FPT and baselines) as plugins."""

from .errors import MonaError
from .hookspecs import hookimpl

__all__ = ["MonaError", "hookimpl", "__version__"]
__version__ = "0.1.0"
