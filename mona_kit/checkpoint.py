"""Checkpoints: weights as safetensors, everything else as plain data loaded with weights_only.

Every file is written to a temporary name, fsynced and renamed, so a kill at any
moment leaves either the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError


def _atomic(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise CheckpointError(f"cannot write checkpoint {str(path)!r}: {exc.strerror}; the previous checkpoint is intact.") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_weights(path: Path, state: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save_file

    # safetensors refuses shared storage; contiguous clones keep the file self-contained.
    tensors = {k: v.detach().contiguous().clone() for k, v in state.items()}
    _atomic(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist.")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt or truncated ({exc}); resume from an earlier one.") from exc


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Plain data (numbers, strings, lists, dicts, tensors): optimiser and RNG states."""
    _atomic(path, lambda tmp: torch.save(state, tmp))


def load_state(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist.")
    try:
        # weights_only: a checkpoint can never execute code on load.
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for a payload, EOFError/RuntimeError for a cut file
        raise CheckpointError(
            f"checkpoint {str(path)!r} cannot be loaded safely ({type(exc).__name__}); it is corrupt, truncated or "
            f"holds objects other than plain data. Resume from an earlier checkpoint."
        ) from exc
