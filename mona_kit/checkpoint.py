"""Checkpoints: weights as safetensors, everything else as plain data loaded with weights_only.

Every file is written to a temporary name, fsynced and renamed, so a kill at any
moment leaves either the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .atomic_io import atomic_replace, atomic_write_text
from .data import load_torch_file
from .errors import CheckpointError
from .run_records import read_json_record, record_count, record_seconds

#: How to get past a damaged checkpoint file: the run's records cannot rebuild it.
RESTORE = "restore the file from a backup or start a new run with the same config."


def save_weights(path: Path, state: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save_file

    # safetensors refuses shared storage; contiguous clones keep the file self-contained.
    tensors = {k: v.detach().contiguous().clone() for k, v in state.items()}
    atomic_replace(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist; {RESTORE}")
    try:
        return load_file(str(path))
    except Exception as exc:  # SafetensorError for a cut or garbled file, OSError for an unreadable one
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupt or truncated ({type(exc).__name__}); {RESTORE}") from exc


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Plain data (numbers, strings, lists, dicts, tensors): optimiser and RNG states."""
    atomic_replace(path, lambda tmp: torch.save(state, tmp))


def load_state(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist; {RESTORE}")
    try:
        return load_torch_file(path)  # weights_only: a checkpoint can never execute code on load
    except Exception as exc:  # UnpicklingError for a payload, EOFError/RuntimeError for a cut file
        raise CheckpointError(
            f"checkpoint {str(path)!r} cannot be loaded safely ({type(exc).__name__}); it is corrupt, truncated or "
            f"holds objects other than plain data (nothing in it was run); {RESTORE}"
        ) from exc


def rng_state() -> dict[str, Any]:
    import random

    import numpy as np

    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype("int64")), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": repr(random.getstate()),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def check_rng_state(state: Any, path: Path) -> None:
    """Refuse a damaged RNG entry with one line before anything restores it: it is tried on the
    live generators and the current state is put back, so a good entry leaves no trace."""
    saved = rng_state()
    try:
        set_rng_state(state)
    except Exception as exc:  # KeyError, TypeError, ValueError, RuntimeError, SyntaxError: all mean damage
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds a damaged RNG state ({type(exc).__name__}); {RESTORE}"
        ) from exc
    finally:
        set_rng_state(saved)


def check_fits(path: Path, weights: dict[str, torch.Tensor], expected: dict[str, torch.Size], prefix: str = "") -> None:
    """Refuse weights whose names or shapes do not fit the model (``expected``: name -> shape) with one
    line naming the tensor, instead of load_state_dict's multi-line size-mismatch traceback."""
    mine = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
    missing, unexpected = sorted(set(expected) - set(mine)), sorted(set(mine) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not fit this config's model (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}); resume with the config the run was started with."
        )
    for name, shape in expected.items():
        if tuple(mine[name].shape) != tuple(shape):
            raise CheckpointError(
                f"checkpoint {str(path)!r}: tensor {name!r} has shape {list(mine[name].shape)}, this config's model "
                f"needs {list(shape)}; resume with the config the run was started with, or {RESTORE}"
            )


def set_rng_state(state: dict[str, Any]) -> None:
    import ast
    import random

    import numpy as np

    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, gauss))
    random.setstate(ast.literal_eval(state["python"]))
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class StageCheckpoint:
    """Mid-stage checkpoints of one stage, in two alternating slots.

    A slot holds the weights (safetensors) and the rest (optimiser, scheduler, RNG,
    step, stage-specific extras). The pointer file names the last complete slot and is
    written last, so a kill at any moment leaves a complete, consistent checkpoint.
    """

    def __init__(self, folder: Path, index: int, every: int = 0, fingerprint: str = "", dist_info=None):
        self.dist_info = dist_info  # under torchrun only rank 0 writes; every rank reads
        self.folder = Path(folder)
        self.index = index
        self.every = every
        self.fingerprint = fingerprint
        self.pointer = self.folder / f"stage-{index}-latest.json"
        #: name -> shape of the model's state dict: the runner sets it so a slot of the wrong shape
        #: is one line at load, not a size-mismatch traceback from load_state_dict.
        self.expected: dict[str, torch.Size] | None = None
        #: seconds the run has cost so far (the runner's clock, resumed attempts included): each
        #: checkpoint records it, so a resumed run's wall time counts the attempts it builds on.
        self.clock: Callable[[], float] | None = None
        self._preloaded: tuple[dict[str, torch.Tensor], dict[str, Any]] | None = None

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0

    def save(self, step: int, weights: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
        import json

        from .distributed import DistInfo, barrier

        info = self.dist_info or DistInfo()
        if not info.is_main:
            barrier(info)
            return
        slot = "a" if (step // max(self.every, 1)) % 2 == 0 else "b"
        save_weights(self.folder / f"stage-{self.index}-{slot}.safetensors", weights, {"step": str(step)})
        save_state(self.folder / f"stage-{self.index}-{slot}.pt", {**state, "step": step, "rng": rng_state()})
        # metrics.jsonl's size now: a resume cuts the log back to it (no step logged twice).
        metrics = self.folder.parent / "metrics.jsonl"
        size = metrics.stat().st_size if metrics.is_file() else 0
        record = {"slot": slot, "step": step, "fingerprint": self.fingerprint, "metrics_bytes": size}
        if self.clock is not None:
            record["elapsed_s"] = round(self.clock(), 3)
        atomic_write_text(self.pointer, json.dumps(record))
        barrier(info)

    def preload(self) -> None:
        """Load and check the checkpoint now (before a resume changes anything); ``load`` hands it over."""
        self._preloaded = self._load()

    def load(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """The last mid-stage checkpoint (weights, state), checked; None when there is none."""
        if self._preloaded is not None:
            found, self._preloaded = self._preloaded, None
            return found
        return self._load()

    def _load(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        pointer = read_json_record(self.pointer)
        if pointer is None:
            return None
        if not isinstance(pointer.get("slot"), str) or pointer["slot"] not in ("a", "b") or not isinstance(pointer.get("step"), int):
            raise CheckpointError(
                f"checkpoint pointer {str(self.pointer)!r} is damaged; delete it to restart stage {self.index} from its start."
            )
        if pointer.get("fingerprint", "") != self.fingerprint:
            raise CheckpointError(
                f"checkpoint {str(self.pointer)!r} was written by a different config ({pointer.get('fingerprint')} "
                f"vs {self.fingerprint}); resume with the run's own config.yaml."
            )
        slot = pointer["slot"]
        weights_file = self.folder / f"stage-{self.index}-{slot}.safetensors"
        weights = load_weights(weights_file)
        if self.expected is not None:
            for prefix in ("model.", "best."):
                if prefix == "model." or any(k.startswith(prefix) for k in weights):
                    check_fits(weights_file, weights, self.expected, prefix)
        state_file = self.folder / f"stage-{self.index}-{slot}.pt"
        state = load_state(state_file)
        if not isinstance(state, dict) or state.get("step") != pointer["step"]:
            raise CheckpointError(f"checkpoint slot {slot} of stage {self.index} does not match its pointer; it is corrupt.")
        check_rng_state(state.get("rng"), state_file)
        return weights, state

    def metrics_bytes(self) -> int | None:
        """The metrics.jsonl size the last mid-stage checkpoint recorded (None: no checkpoint, or one
        written before sizes were recorded)."""
        return record_count(read_json_record(self.pointer), "metrics_bytes")

    def elapsed_s(self) -> float | None:
        """The run's wall time when the last mid-stage checkpoint was written (None: no checkpoint,
        or one written before times were recorded)."""
        try:
            return record_seconds(read_json_record(self.pointer), "elapsed_s")
        except CheckpointError:  # a damaged pointer is reported where it matters, by load
            return None

    def step(self) -> int | None:
        """The step of the last mid-stage checkpoint (None when there is none)."""
        try:
            step = (read_json_record(self.pointer) or {}).get("step")
        except CheckpointError:
            return None
        return step if isinstance(step, int) else None

    def clear(self) -> None:
        """Drop the mid-stage slots once the stage has finished (its end state is kept elsewhere)."""
        for slot in ("a", "b"):
            (self.folder / f"stage-{self.index}-{slot}.safetensors").unlink(missing_ok=True)
            (self.folder / f"stage-{self.index}-{slot}.pt").unlink(missing_ok=True)
        self.pointer.unlink(missing_ok=True)
