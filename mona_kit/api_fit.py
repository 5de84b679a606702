"""The Python API's calls: ``load_kit``, ``create_model`` and ``fit`` (public through :mod:`mona_kit.api`).

Each call checks its input the way the CLI does (the same :class:`~mona_kit.errors.MonaError`
subclasses with the same one-line messages) and leaves the process as it found it: seeding and
torch's deterministic mode are scoped to the call (:func:`seed_scope`).
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import nn

from .components import TaskSpec
from .config import SEED_MAX, build_config, config, option
from .errors import ConfigError
from .kit import Kit
from .kit import load_kit as _load_kit
from .runconfig import COMPONENT_KEYS, ComponentRef, RunConfig

__all__ = ["FitResult", "create_model", "fit", "load_kit", "seed_scope"]

_DEFAULT_KIT: Kit | None = None


def load_kit(*, entry_points: bool = True, extra: Iterable[object] = ()) -> Kit:
    """A fresh kit: every first-party plugin, installed third-party ones (``entry_points``) and ``extra``
    plugin modules. ``kit.datasets.names()``, ``kit.backbones.get(name)``... list and describe components."""
    _check_type("load_kit", "entry_points", entry_points, bool, "True or False")
    from .kit import _extra_plugins

    plugins = _extra_plugins(extra)  # names, None and a bare object are refused there
    for plugin in plugins:
        if not _implements_hooks(plugin):  # pluggy would register it and nothing would say it adds nothing
            raise ConfigError(
                f"load_kit's extra= takes plugin modules or objects with @hookimpl functions (extra=[my_plugin]); "
                f"{type(plugin).__name__} {plugin!r} implements no mona-kit hook."
            )
    return _load_kit(entry_points=entry_points, extra=plugins)


def _implements_hooks(plugin: object) -> bool:
    """Whether ``plugin`` has a function marked with :data:`mona_kit.api.hookimpl` (as pluggy looks for them)."""
    from .hookspecs import PROJECT

    for name in dir(plugin):
        try:
            value = getattr(plugin, name)
        except Exception:  # a property that raises is no hook
            continue
        if callable(value) and getattr(value, f"{PROJECT}_impl", None) is not None:
            return True
    return False


def _check_type(who: str, key: str, value: Any, types: type | tuple[type, ...], expected: str) -> None:
    """Refuse a wrongly typed argument up front (``overwrite="no"`` would otherwise read as true)."""
    if not isinstance(value, types):
        raise ConfigError(f"{who}'s {key}= takes {expected}, got {type(value).__name__} {value!r}.")


def _check_task(who: str, task: Any) -> None:
    if isinstance(task, (bytes, bytearray, memoryview)):
        raise ConfigError(f"{who}'s task {task!r} is bytes; a task name is a str (e.g. task='gunpoint').")


def _kit(kit: Kit | None, who: str) -> Kit:
    global _DEFAULT_KIT
    if kit is not None:
        if not isinstance(kit, Kit):
            raise ConfigError(
                f"{who}'s kit= takes a Kit from mona_kit.api.load_kit() (or None for the default), got {type(kit).__name__} {kit!r}."
            )
        return kit
    if _DEFAULT_KIT is None:
        _DEFAULT_KIT = load_kit()
    return _DEFAULT_KIT


def seed_scope() -> "SeedScope":
    """Put back, on exit, what a run changes process-wide: torch's deterministic-algorithms setting,
    its CPU thread count and the Python, NumPy, torch (and CUDA) random states. The object may be
    entered again (and nested): each entry saves the state it puts back."""
    return SeedScope()


class SeedScope(contextlib.ContextDecorator):
    """The context manager :func:`seed_scope` returns (a class, not a generator: reusable; also a decorator)."""

    def __init__(self) -> None:
        self._saved: list[tuple[bool, bool, int, dict[str, Any]]] = []

    def __enter__(self) -> None:
        from .checkpoint import rng_state

        self._saved.append((torch.are_deterministic_algorithms_enabled(),
                            torch.is_deterministic_algorithms_warn_only_enabled(), torch.get_num_threads(), rng_state()))

    def __exit__(self, *exc: object) -> bool:
        from .checkpoint import set_rng_state

        deterministic, warn_only, threads, state = self._saved.pop()
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        set_rng_state(state)
        return False


# create_model ---------------------------------------------------------------------------------
@config
class ModelOptions:
    """The keyword options of :func:`create_model`."""

    seed: int = option(0, min=0, max=SEED_MAX, help="seed of the new embedder's and head's initial weights")
    pretrained: bool = option(True, help="the backbone's pretrained weights (False: randomly initialised)")
    normalize_inputs: str = option(
        "auto", choices=("auto", "pointwise", "channel", "global", "none"),
        help="as train.normalize_inputs: statistics of a registered task's training split (a TaskSpec has none)",
    )
    normalize_targets: str = option(
        "auto", choices=("auto", "pointwise", "channel", "global", "none"), help="as train.normalize_targets",
    )


def create_model(backbone: Any, task: str | Mapping | TaskSpec, embedder: Any = "auto", head: Any = "auto", *,
                 kit: Kit | None = None, **options: Any) -> nn.Module:
    """embedder -> pretrained ``backbone`` -> head for ``task`` (a registered dataset name, or a
    :class:`TaskSpec`), untrained, on the CPU. ``backbone``, ``task``, ``embedder`` and ``head`` are
    names or ``{"name": ..., option: value}`` mappings as in a run config; ``options``: ``seed``,
    ``pretrained``, ``normalize_inputs``, ``normalize_targets``."""
    from .engine import assemble_model, build_body, build_task
    from .normalize import Normalization

    kit = _kit(kit, "create_model")
    _check_task("create_model", task)
    opts = build_config(ModelOptions, options, where="create_model")
    body_ref = ComponentRef.parse(backbone, "backbone")
    refs = {key: ComponentRef.parse(value, key) for key, value in (("embedder", embedder), ("head", head))}
    data = None
    if isinstance(task, TaskSpec):
        spec = task
    else:
        task_ref = ComponentRef.parse(task, "task")
        entry = kit.datasets.get(task_ref.name)
        data = build_task(entry, entry.make_config(task_ref.options))
        spec = data.spec
    body_entry = kit.backbones.get(body_ref.name)
    body_cfg = body_entry.make_config(body_ref.options)
    with seed_scope():
        body = build_body(body_entry, body_cfg, opts.pretrained, who="create_model(pretrained=False)")
        torch.manual_seed(opts.seed)  # as Session.build_model: the same seed, the same new weights
        model = assemble_model(kit, spec, body, refs["embedder"], refs["head"])
    if data is not None:
        Normalization.fit_task(data.train, spec.task_type, opts.normalize_inputs, opts.normalize_targets).attach(
            model.embedder, model.head
        )
    return model


# fit ------------------------------------------------------------------------------------------
@attrs.frozen(kw_only=True)
class FitResult:
    """What :func:`fit` returns: the run's metrics, the trained model and where the run lives."""

    method: str
    task: str
    metric: str  #: the task's metric (a key of ``val`` and ``test``)
    higher_is_better: bool
    val: dict[str, float]  #: validation metrics (what model selection saw)
    test: dict[str, float]  #: test metrics (never used for selection)
    model: nn.Module  #: the trained model, as evaluated
    run_dir: Path | None  #: the run directory; None for a run that kept no files
    results: dict[str, Any] = attrs.field(repr=False)  #: everything results.json holds


def _config_dict(method: Any, task: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """Run-config keys as ``fit`` takes them: plain keys, plus dotted ones (``"train.lr"``)."""
    data: dict[str, Any] = {"method": method, "task": task}
    data.update({k: v for k, v in config.items() if "." not in k})
    for key, value in config.items():
        if "." not in key:
            continue
        head, _, tail = key.partition(".")
        if "." in tail or not tail:
            raise ConfigError(f"config key {key!r} is too deep; use {head}.OPTION.")
        if head in COMPONENT_KEYS:
            ref = ComponentRef.parse(data.get(head, "auto"), head)
            data[head] = {"name": ref.name, **ref.options, tail: value}
        elif head in ("train", "diagnostics"):
            section = data.get(head) or {}
            if not isinstance(section, Mapping):
                raise ConfigError(f"config key {head!r} must be a mapping of option: value, got {section!r}.")
            data[head] = {**section, tail: value}
        else:
            raise ConfigError(f"config key {key!r}: only train.X, diagnostics.X and COMPONENT.X nest.")
    return data


def _private_kit(kit: Kit, data) -> Kit:
    """A copy of ``kit`` whose datasets also hold the user's task (the caller's kit is untouched)."""
    from . import __version__
    from .registry import NAME_PATTERN, Entry, Provider

    name = data.spec.name
    if not NAME_PATTERN.match(name):
        raise ConfigError(f"name={name!r}: a task name is lower-kebab-case (like 'my-data'); pass another name=.")
    if name in kit.datasets:
        raise ConfigError(f"name={name!r} is a registered dataset; pass another name= for your own data.")
    private = copy.copy(kit)
    private.registries = dict(kit.registries)
    datasets = copy.copy(kit.datasets)
    datasets._entries = dict(datasets._entries)
    private.registries["datasets"] = datasets
    datasets.add(Entry(
        name=name, kind="datasets", factory=lambda: data, summary="your own datasets, given to fit",
        provider=Provider(plugin="python-api", distribution="mona-kit", version=__version__),
    ))
    for kind, key in (("metrics", data.spec.metric), ("objectives", data.spec.loss)):
        private.registry(kind).get(key)  # an unknown metric or loss fails before anything is written
    return private


def fit(method: Any, task: Any, *, run_dir: str | Path | None = None, overwrite: bool = False,
        progress: bool = False, kit: Kit | None = None, checkpoints: str = "final", **config: Any) -> FitResult:
    """Run ``method`` on ``task`` and return its metrics and trained model.

    ``task`` is a registered dataset (a name or ``{"name": ..., option: value}``) or your own splits:
    ``(train, val, test)`` torch Datasets (or a mapping with those keys) yielding ``(x, y)`` pairs. For your
    own splits the task spec is inferred from the first training sample; state what it cannot tell with
    ``task_type``, ``metric``, ``loss``, ``num_classes``, ``higher_is_better``, ``modality``, ``name``.
    Every other keyword is a run-config key (``backbone="tiny-bert"``, ``seed=0``, ``train={"epochs": 2}``,
    or dotted as ``**{"train.lr": 3e-4}``). ``run_dir=None`` (with no ``output_dir``/``run_name``) runs in
    a temporary directory removed afterwards: nothing is kept; give a path to keep the run. ``checkpoints``
    is what a kept run leaves in ``checkpoints/``: ``final`` (the trained weights), ``all`` or ``none``.
    """
    from .api_data import SPEC_FACTS, is_datasets, user_task
    from .runner import run
    from .summary import read_results

    # Argument types first: nothing below may write before a wrong one is refused.
    kit = _kit(kit, "fit")
    _check_task("fit", task)
    _check_type("fit", "overwrite", overwrite, bool, "True or False")
    _check_type("fit", "progress", progress, bool, "True or False")
    _check_type("fit", "checkpoints", checkpoints, str, "'final', 'all' or 'none'")
    if run_dir is not None:
        _check_type("fit", "run_dir", run_dir, (str, os.PathLike), "a folder path (str or pathlib.Path) or None")
        path = Path(os.fsdecode(run_dir)).expanduser()
        # "/", "." and "" have no folder name, which the runner would read as "name the run for me".
        if path.name in ("", ".", ".."):
            raise ConfigError(
                f"run_dir must name a folder for this run (like 'runs/my-run'), got {os.fsdecode(run_dir)!r}; "
                f"'/', '.', '..' and '' name no folder of their own."
            )
    facts = {k: config.pop(k) for k in SPEC_FACTS if k in config}
    if is_datasets(task):
        _check_labelled(task)
        data = user_task(task, **facts)
        kit = _private_kit(kit, data)
        task = data.spec.name
    elif facts:
        raise ConfigError(
            f"{', '.join(f'{k}=' for k in facts)} describe your own datasets; registered task {task!r} has its own spec."
        )
    if run_dir is not None:
        if "output_dir" in config or "run_name" in config:
            raise ConfigError("fit takes run_dir= or output_dir=/run_name=, not both.")
        config = {**config, "output_dir": str(path.parent), "run_name": path.name}
    keep = run_dir is not None or "output_dir" in config or "run_name" in config
    run_config = RunConfig.from_dict(_config_dict(method, task, config))
    if keep and run_config.run_name is not None:
        _check_run_dir(run_config, overwrite, "run_dir=" if run_dir is not None else "run_name= or output_dir=")
    with contextlib.ExitStack() as stack:
        if not keep:
            tmp = tempfile.mkdtemp(prefix="mona-kit-fit-")
            stack.callback(shutil.rmtree, tmp, ignore_errors=True)
            run_config = attrs.evolve(run_config, output_dir=tmp, run_name="run")
        stack.enter_context(seed_scope())
        trained: dict[str, nn.Module] = {}
        path = run(kit, run_config, overwrite=overwrite, progress=progress, checkpoints=checkpoints,
                   on_finish=lambda session, model: trained.setdefault("model", model))
        results = read_results(path)
    return FitResult(
        method=results["method"], task=results["task"], metric=results["metric"],
        higher_is_better=results["higher_is_better"], val=results.get("val", {}), test=results.get("test", {}),
        model=trained["model"], run_dir=Path(path) if keep else None, results=results,
    )


def _check_labelled(task: Any) -> None:
    """Each split's first sample holds a label: ``TensorDataset(x)`` yields ``(x,)``, which the sample check
    would only call 'a tuple'. Anything else wrong with the splits is left to :func:`~mona_kit.api_data.user_task`."""
    from collections.abc import Sequence

    from .api_data import _splits
    from .components import TaskData
    from .errors import DataError

    if isinstance(task, TaskData):
        return
    for split, ds in _splits(task).items():
        if not (hasattr(ds, "__getitem__") and hasattr(ds, "__len__")) or len(ds) < 1:
            continue
        sample = ds[0]
        if isinstance(sample, Sequence) and not isinstance(sample, (str, bytes, bytearray)) and len(sample) < 2:
            raise DataError(
                f"fit's {split} sample 0 is a {type(sample).__name__} of {len(sample)} item(s): the label is missing; each "
                f"sample is an (x, y) pair (e.g. TensorDataset(x, y), not TensorDataset(x)) or {{'x': ..., 'y': ...}}."
            )


def _check_run_dir(run_config: RunConfig, overwrite: bool, named_by: str) -> None:
    """The runner's own check of the run's folder, first, so that a refusal names ``fit``'s arguments
    (``overwrite=True``, ``named_by``) rather than the CLI's flags. Under torchrun rank 0 alone checks (the runner's)."""
    from .distributed import world_size_from_env
    from .runs import RunDir, run_path

    if world_size_from_env() == 1:
        RunDir.check_target(run_path(run_config.output_dir, run_config.run_name), overwrite=overwrite, api=named_by)
