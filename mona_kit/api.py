"""mona-kit's one public surface: every name here is kept stable; every other module is internal.

Users and plugin authors alike import from here (``from mona_kit.api import TaskSpec, config, option``);
``mona_kit`` re-exports the Python-API subset (``mona_kit.fit`` ...). docs/python-api.md lists these
names, and a test fails when a first-party plugin imports anything else from ``mona_kit``.

Names load on first use, so ``from mona_kit.api import hookimpl, config`` in a plugin's top-level
module stays as light as the CLI needs (no torch).
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the internal module that defines it. ``testing`` is the contract-check module itself.
_WHERE: dict[str, str] = {
    # The Python API
    "load_kit": "mona_kit.api_fit",
    "create_model": "mona_kit.api_fit",
    "fit": "mona_kit.api_fit",
    "FitResult": "mona_kit.api_fit",
    "seed_scope": "mona_kit.api_fit",
    # Errors
    "MonaError": "mona_kit.errors",
    "ConfigError": "mona_kit.errors",
    "DataError": "mona_kit.errors",
    "ShapeError": "mona_kit.errors",
    "NumericalError": "mona_kit.errors",
    "UnknownNameError": "mona_kit.errors",
    "did_you_mean": "mona_kit.errors",
    # Registration and configs
    "hookimpl": "mona_kit.hookspecs",
    "config": "mona_kit.config",
    "option": "mona_kit.config",
    "SEED_MAX": "mona_kit.config",
    # Component contracts
    "TaskSpec": "mona_kit.components",
    "TaskData": "mona_kit.components",
    "TASK_TYPES": "mona_kit.components",
    "Backbone": "mona_kit.components",
    "SourceEmbedder": "mona_kit.components",
    "BODY_GROUPS": "mona_kit.components",
    "Embedder": "mona_kit.components",
    "Head": "mona_kit.components",
    "Metric": "mona_kit.components",
    "DistanceObjective": "mona_kit.components",
    "RepresentationObjective": "mona_kit.components",
    # Methods and their stages
    "Method": "mona_kit.stages",
    "Session": "mona_kit.engine",
    "Stage": "mona_kit.stages",
    "TrainStage": "mona_kit.stages",
    "ALL_GROUPS": "mona_kit.stages",
    "LoopStage": "mona_kit.stages",
    "Setup": "mona_kit.stages",
    "StepOutput": "mona_kit.stages",
    "cycle": "mona_kit.stages",
    "signed_score": "mona_kit.stages",
    "check_gradients": "mona_kit.nonfinite",
    "nonfinite_error": "mona_kit.nonfinite",
    "precision_for": "mona_kit.precision",
    "rng_state": "mona_kit.checkpoint",
    "set_rng_state": "mona_kit.checkpoint",
    "pool_tokens": "mona_kit.engine",
    "masked_mean": "mona_kit.engine",
    "pseudo_labels": "mona_kit.diagnostics",
    "linear_cka": "mona_kit.diagnostics",
    "linear_probe_accuracy": "mona_kit.diagnostics",
    "davies_bouldin": "mona_kit.diagnostics",
    # Dataset helpers
    "TensorDictDataset": "mona_kit.data",
    "SplitOptions": "mona_kit.splits",
    "assemble_task": "mona_kit.splits",
    "carve_validation": "mona_kit.data",
    "validation_size": "mona_kit.data",
    "cap": "mona_kit.data",
    "seeded_permutation": "mona_kit.data",
    "check_arrays": "mona_kit.data",
    "cache_key": "mona_kit.data",
    "cache_dir": "mona_kit.data",
    "cached_tensors": "mona_kit.data",
    "load_torch_file": "mona_kit.data",
    "file_fingerprint": "mona_kit.data",
    "atomic_write": "mona_kit.data",
    "atomic_write_many": "mona_kit.atomic_io",
    "strings_to_tensors": "mona_kit.data",
    "tensors_to_strings": "mona_kit.data",
    # Experiment loggers (register_loggers)
    "Logger": "mona_kit.loggers",
    "logged_scalars": "mona_kit.loggers",
    "flatten_config": "mona_kit.loggers",
    # Contract checks for plugin tests (check_task_data, check_embedder, ...)
    "testing": "mona_kit.testing",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"mona_kit.api has no public name {name!r}; the public names are mona_kit.api.__all__")
    module = importlib.import_module(where)
    value = module if name == "testing" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
