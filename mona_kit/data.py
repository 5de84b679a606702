"""Core data services: tensor datasets, split carving, checked arrays, an on-disk tensor cache
and the loaders (plain ``DataLoader`` or a ``torchdata.nodes`` pipeline).

Dataset plugins use these so every task splits, caps, validates and caches the same way;
the engine calls :func:`make_loader`.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from .errors import ConfigError, DataError

CACHE_ENV = "MONA_KIT_CACHE"


# Datasets ---------------------------------------------------------------------------------------
class TensorDictDataset(Dataset):
    """A map-style dataset over equally long tensors: sample ``i`` is ``{key: tensor[i]}``.

    ``extra`` holds per-sample non-tensor columns (e.g. ``{"text": [...]}``).
    """

    def __init__(self, tensors: Mapping[str, torch.Tensor], extra: Mapping[str, Sequence[Any]] | None = None):
        self.tensors = dict(tensors)
        self.extra = dict(extra or {})
        lengths = {k: len(v) for k, v in {**self.tensors, **self.extra}.items()}
        if len(set(lengths.values())) > 1:
            raise DataError(f"dataset columns differ in length: {lengths}; every column needs one row per sample.")
        self._len = next(iter(lengths.values())) if lengths else 0

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> dict[str, Any]:
        out: dict[str, Any] = {k: v[index] for k, v in self.tensors.items()}
        for k, v in self.extra.items():
            out[k] = v[index]
        return out

    def subset(self, indices: torch.Tensor | Sequence[int]) -> "TensorDictDataset":
        """A new dataset holding only ``indices`` (tensors are indexed, not copied lazily)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        tensors = {k: v[idx] for k, v in self.tensors.items()}
        extra = {k: [v[i] for i in idx.tolist()] for k, v in self.extra.items()}
        return TensorDictDataset(tensors, extra)


def seeded_permutation(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n, generator=g)


def validation_size(n: int, val_fraction: float, min_val: int = 0) -> tuple[int, bool]:
    """How many of ``n`` training samples become validation, and whether that is enough to select on.

    Validation gets ``max(min_val, val_fraction * n)`` samples as long as train keeps at least as many;
    when ``n`` is too small for that (the UCR sets), it gets ``val_fraction * n`` and the second value is
    False: a run should then train for a fixed budget instead of selecting on a handful of samples.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}.")
    if n < 2:
        raise DataError(f"cannot carve a validation split from {n} training sample(s); provide more data.")
    wanted = max(int(min_val), round(n * val_fraction))
    if n - wanted >= wanted:
        return max(1, wanted), True
    return min(n - 1, max(1, round(n * val_fraction))), min_val <= 0


def carve_validation(n: int, val_fraction: float, seed: int, min_val: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``range(n)`` into (train, val) indices with a fixed seed (sizes: :func:`validation_size`)."""
    n_val, _ = validation_size(n, val_fraction, min_val)
    perm = seeded_permutation(n, seed)
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def cap(dataset: TensorDictDataset, limit: int | None, seed: int) -> TensorDictDataset:
    """A seeded random subset of at most ``limit`` samples (None = all), in original order."""
    if limit is None or limit >= len(dataset):
        return dataset
    if limit < 1:
        raise ConfigError(f"a size cap must be >= 1 (or None for all), got {limit}.")
    keep = seeded_permutation(len(dataset), seed)[:limit].sort().values
    return dataset.subset(keep)


# Validation -------------------------------------------------------------------------------------
def check_arrays(
    where: str,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    input_shape: Sequence[int] | None = None,
    target_shape: Sequence[int] | None = None,
    num_classes: int | None = None,
    multilabel: bool = False,
) -> None:
    """Raise a one-line :class:`DataError` naming ``where`` (the file) if the arrays are unusable.

    Checks: same sample count, per-sample shapes, floating inputs, finite inputs and targets,
    integer class labels inside ``[0, num_classes)`` (or 0/1 for multilabel targets).
    """
    if len(x) != len(y):
        raise DataError(f"{where}: {len(x)} inputs but {len(y)} targets; the file is truncated or mismatched.")
    if len(x) == 0:
        raise DataError(f"{where}: holds no samples; the file is empty or truncated.")
    if input_shape is not None and tuple(x.shape[1:]) != tuple(input_shape):
        raise DataError(f"{where}: inputs have shape {tuple(x.shape[1:])} per sample, expected {tuple(input_shape)}.")
    if target_shape is not None and tuple(y.shape[1:]) != tuple(target_shape):
        raise DataError(f"{where}: targets have shape {tuple(y.shape[1:])} per sample, expected {tuple(target_shape)}.")
    if not x.is_floating_point():
        raise DataError(f"{where}: inputs have dtype {x.dtype}, expected floating point numbers.")
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).flatten(1).any(1).sum())
        raise DataError(f"{where}: inputs contain NaN or Inf in {bad} sample(s); clean or regenerate the file.")
    if y.is_floating_point() and not torch.isfinite(y).all():
        bad = int((~torch.isfinite(y)).reshape(len(y), -1).any(1).sum())
        raise DataError(f"{where}: targets contain NaN or Inf in {bad} sample(s); clean or regenerate the file.")
    if num_classes is not None and not multilabel:
        if y.is_floating_point() or y.dtype == torch.bool:
            raise DataError(f"{where}: class labels have dtype {y.dtype}, expected integers.")
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= num_classes:
            raise DataError(
                f"{where}: labels span [{lo}, {hi}] but the task declares {num_classes} classes (0..{num_classes - 1})."
            )
    if multilabel:
        if not ((y == 0) | (y == 1)).all():
            raise DataError(f"{where}: multilabel targets must be 0 or 1; found other values.")


# Cache ------------------------------------------------------------------------------------------
#: A relative MONA_KIT_CACHE -> the absolute folder it named when first used.
_RESOLVED_CACHE: dict[str, Path] = {}


def cache_dir() -> Path:
    """``$MONA_KIT_CACHE`` or ``~/.cache/mona-kit``, absolute, created on first use; a folder that cannot
    be made (a file, /proc, no permission) is a one-line ConfigError naming the variable."""
    raw = os.environ.get(CACHE_ENV, "")
    if raw:
        # Resolved once per value: a later chdir (a plugin, a notebook) must not move the cache away.
        root = _RESOLVED_CACHE.setdefault(raw, Path(os.path.abspath(os.path.expanduser(raw))))
        named = f"{CACHE_ENV}={raw!r}"
    else:
        root = Path.home() / ".cache" / "mona-kit"
        named = f"the default cache folder ({CACHE_ENV} is unset)"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = "it is a file, not a folder" if root.exists() and not root.is_dir() else (exc.strerror or type(exc).__name__)
        raise ConfigError(
            f"cannot use {named} as the cache folder {str(root)!r}: {why}; set {CACHE_ENV} to a writable folder."
        ) from exc
    return root


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Write through a temporary file in the same folder, fsync, then rename: readers never see half
    a file (the run directory's writer, :func:`mona_kit.atomic_io.atomic_replace`, under its cache name)."""
    from .atomic_io import atomic_replace

    atomic_replace(path, write)


def file_fingerprint(paths: Iterable[str | Path]) -> list[list[Any]]:
    """(path, size, mtime) of each file: a cache key that changes when a source file changes."""
    out = []
    for p in paths:
        st = os.stat(p)
        out.append([str(Path(p).resolve()), st.st_size, st.st_mtime_ns])
    return out


def cache_key(*parts: Any) -> str:
    """A short stable hash of JSON-able parts (names, options, file fingerprints)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def load_torch_file(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` onto the CPU: plain data only, so loading never runs code.
    A damaged file can open with another pickle protocol's header; torch then warns before it fails,
    which is left out here, since every caller turns the failure into its own one-line error."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
        return torch.load(path, map_location="cpu", weights_only=True)


def cached_tensors(
    key: str, build: Callable[[], dict[str, torch.Tensor]], *, namespace: str = "tensors", enabled: bool = True
) -> dict[str, torch.Tensor]:
    """Return ``build()``'s plain tensors, stored once under the cache dir and reloaded after.

    ``build`` validates its input before returning, so a bad file raises and nothing is cached.
    Files are read back with :func:`load_torch_file` (``torch.load(weights_only=True)``).
    """
    if not enabled:
        return build()
    path = cache_dir() / namespace / f"{key}.pt"
    if path.is_file():
        try:
            data = load_torch_file(path)
            if isinstance(data, dict) and all(torch.is_tensor(v) for v in data.values()):
                return data
        except Exception:  # a corrupt cache entry is rebuilt, never trusted
            pass
    data = build()
    bad = [k for k, v in data.items() if not torch.is_tensor(v)]
    if bad:
        raise TypeError(f"cached_tensors({key!r}): build() returned non-tensors for {bad}")
    data = {k: v.contiguous() for k, v in data.items()}
    atomic_write(path, lambda tmp: torch.save(data, tmp))
    return data


def strings_to_tensors(texts: Sequence[str]) -> dict[str, torch.Tensor]:
    """UTF-8 bytes plus offsets, so text can live in the tensor cache."""
    encoded = [t.encode("utf-8") for t in texts]
    offsets = torch.zeros(len(encoded) + 1, dtype=torch.long)
    offsets[1:] = torch.tensor([len(b) for b in encoded], dtype=torch.long).cumsum(0)
    data = torch.frombuffer(bytearray(b"".join(encoded)), dtype=torch.uint8) if encoded else torch.zeros(0, dtype=torch.uint8)
    return {"text_bytes": data.clone(), "text_offsets": offsets}


def tensors_to_strings(data: torch.Tensor, offsets: torch.Tensor) -> list[str]:
    raw = bytes(data.numpy())
    off = offsets.tolist()
    return [raw[off[i] : off[i + 1]].decode("utf-8") for i in range(len(off) - 1)]


# Loaders ----------------------------------------------------------------------------------------
def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors; strings become a list."""
    return default_collate(samples)


def _fetch_batch(dataset: Dataset, indices: list[int]) -> dict[str, Any]:
    getitems = getattr(dataset, "__getitems__", None)
    samples = getitems(indices) if getitems is not None else [dataset[i] for i in indices]
    return collate(samples)


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    kind: str = "torch",
    num_workers: int = 0,
    drop_last: bool = False,
    prefetch: int = 2,
):
    """Batches of ``dict[str, Tensor]`` from a map-style dataset.

    ``kind="torch"``: a plain ``DataLoader`` with a seeded generator. ``kind="nodes"``: a
    torchdata 0.11 pipeline ``SamplerWrapper -> Batcher -> Mapper/ParallelMapper(collate) ->
    Prefetcher -> Loader``; the returned ``Loader`` has ``state_dict()``/``load_state_dict()``
    for mid-epoch resume. Same seed, same order, for both kinds.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}.")
    from torch.utils.data import RandomSampler, SequentialSampler

    # The sampler owns its generator, so torch and nodes loaders give the same order for a seed.
    generator = torch.Generator().manual_seed(int(seed))
    sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    if kind == "torch":
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            generator=torch.Generator().manual_seed(int(seed) + 1),  # worker seeds
            num_workers=num_workers,
            collate_fn=collate,
            drop_last=drop_last,
            persistent_workers=False,
        )
    if kind != "nodes":
        raise ConfigError(f"loader must be 'torch' or 'nodes', got {kind!r}.")
    from functools import partial

    from torchdata import nodes

    node = nodes.SamplerWrapper(sampler)
    node = nodes.Batcher(node, batch_size=batch_size, drop_last=drop_last)
    fetch = partial(_fetch_batch, dataset)
    if num_workers > 0:
        node = nodes.ParallelMapper(node, map_fn=fetch, num_workers=num_workers, method="thread", in_order=True)
    else:
        node = nodes.Mapper(node, map_fn=fetch)
    node = nodes.Prefetcher(node, prefetch_factor=prefetch)
    return nodes.Loader(node)
