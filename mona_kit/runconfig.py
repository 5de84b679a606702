"""The run config: which components, how to train, where to write. Plain data throughout.

A YAML file (or the embedded default) is read by :meth:`RunConfig.from_dict`, which
rejects unknown keys with suggestions; ``key=value`` overrides apply on top
(``train.lr=3e-4``, ``method=orca``, ``method.objective=mmd``).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from .config import SEED_MAX, build_config, config, option, to_dict
from .errors import ConfigError, did_you_mean
from .yamlsafe import YamlSyntaxError, load_yaml_file, load_yaml_text

COMPONENT_KEYS = ("task", "source", "backbone", "embedder", "head", "method")
#: Registry of each component key of a run config (``source`` is a dataset).
_KINDS = {"task": "datasets", "source": "datasets", "backbone": "backbones", "embedder": "embedders",
          "head": "heads", "method": "methods"}


@attrs.frozen(kw_only=True)
class ComponentRef:
    """A registered name plus options for its config class (``auto`` lets the kit choose)."""

    name: str
    options: dict[str, Any] = attrs.field(factory=dict)

    @classmethod
    def parse(cls, value: Any, key: str) -> "ComponentRef":
        if isinstance(value, ComponentRef):
            return value
        if isinstance(value, str):
            return cls(name=value)
        if isinstance(value, Mapping):
            value = dict(value)
            name = value.pop("name", None)
            if not isinstance(name, str):
                raise ConfigError(f"config key {key!r} needs a 'name' (e.g. {key}: {{name: ..., option: value}}).")
            return cls(name=name, options=value)
        raise ConfigError(f"config key {key!r} must be a name or a mapping with 'name', got {value!r}.")

    def to_plain(self) -> Any:
        return {"name": self.name, **self.options} if self.options else self.name


@config
class TrainConfig:
    """The supervised fine-tuning budget shared by every method's training stages."""

    epochs: int = option(3, min=1, help="passes over the training split in each fine-tuning stage")
    max_steps: int | None = option(None, min=1, help="cap on optimiser steps per stage (None = epochs decide)")
    batch_size: int = option(32, min=1, help="training batch size (global, across ranks)")
    eval_batch_size: int = option(128, min=1, help="batch size for validation and test")
    lr: float = option(1e-4, min=0, min_exclusive=True, help="learning rate of the body")
    embedder_lr: float | None = option(None, min=0, min_exclusive=True, help="learning rate of embedder and head (None = lr)")
    weight_decay: float = option(0.0, min=0, help="AdamW weight decay")
    optimizer: str = option("adamw", choices=("adamw", "sgd"), help="optimiser")
    scheduler: str = option("cosine", choices=("cosine", "constant"), help="learning-rate schedule")
    grad_clip: float | None = option(1.0, min=0, min_exclusive=True, help="max gradient norm (None = no clipping)")
    evals_per_epoch: int = option(1, min=1, help="validation passes per epoch (model selection)")
    loader: str = option("torch", choices=("torch", "nodes"), help="plain DataLoader or torchdata.nodes")
    num_workers: int = option(0, min=0, help="data-loading worker processes")
    precision: str = option(
        "fp32", choices=("fp32", "bf16", "fp16"),
        help="fp32; bf16 autocast (CPU and GPU, fp32 master weights); fp16 autocast with a gradient scaler (GPU only)",
    )
    on_nonfinite: str = option("stop", choices=("stop", "skip"), help="a NaN/Inf loss stops the stage or skips the step")
    warmup: float = option(0.0, min=0, max=1, max_exclusive=True, help="fraction of each training stage's steps with a linear learning-rate warm-up")
    patience: int | None = option(
        None, min=1, help="early stopping: end a stage after this many validation passes without improvement (None = off)"
    )
    patience_start: float = option(
        0.0, min=0, max=1, max_exclusive=True,
        help="early stopping: fraction of a stage's steps before it may end one (noisy early validation, e.g. "
        "diffusion-reaction-1d, otherwise stops a run during warm-up)",
    )
    plateau_window: float = option(0.25, min=0, max=1, min_exclusive=True, help="plateau check: the last fraction of a stage's steps that is examined")
    plateau_tolerance: float = option(
        0.02, min=0, help="plateau check: a stage has plateaued when its best validation metric improved by less than this "
        "relative amount over the plateau window, or by no more than the metric's sampling standard error where it declares one "
        "(error rates: binomial; recorded per run as 'noise'; sweeps flag runs that had not plateaued)"
    )
    normalize_inputs: str = option(
        "auto", choices=("auto", "pointwise", "channel", "global", "none"),
        help="standardise inputs with training statistics (auto: pointwise for regression/PDE tasks, none for classification)",
    )
    normalize_targets: str = option(
        "auto", choices=("auto", "pointwise", "channel", "global", "none"),
        help="standardise regression targets with training statistics (auto: one global mean and scale; the loss is "
        "taken in standardised units, predictions and metrics stay in original units)",
    )


@config
class DiagnosticsConfig:
    """Knowledge-reuse tracking: how well the body still separates source classes."""

    reuse_every: int = option(0, min=0, help="steps between knowledge-reuse measurements (0 = off)")
    reuse_samples: int = option(300, min=2, help="source proxy samples per split used for the measurement")


@config
class RunConfig:
    task: ComponentRef = option(help="target task (a registered dataset)")
    backbone: ComponentRef = option(help="pretrained body")
    method: ComponentRef = option(help="transfer method")
    embedder: ComponentRef = option(ComponentRef(name="auto"), help="target embedder (auto: chosen by task and body)")
    head: ComponentRef = option(ComponentRef(name="auto"), help="task head (auto: chosen by task type)")
    source: ComponentRef = option(ComponentRef(name="auto"), help="source proxy data (auto: the proxy the backbone's registration names, meta source_proxy)")
    train: TrainConfig = option(factory=TrainConfig)
    diagnostics: DiagnosticsConfig = option(factory=DiagnosticsConfig)
    seed: int = option(0, min=0, max=SEED_MAX, help="random seed")
    deterministic: bool = option(True, help="deterministic algorithms (bitwise-repeatable on CPU)")
    device: str = option("auto", help="auto, cpu, cuda or cuda:N")
    threads: int | None = option(None, min=1, max=1024, help="torch CPU threads (None = torch's default)")
    output_dir: str = option("runs", help="parent folder of run directories (~ is expanded)")
    run_name: str | None = option(None, help="run directory name (None = method-task-seed-timestamp)")
    checkpoint_every: int = option(100, min=1, help="steps between checkpoints inside a stage")
    loggers: tuple[ComponentRef, ...] = option(
        (), help="experiment loggers that mirror the run's events (registered names, e.g. [tensorboard, mlflow])"
    )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunConfig":
        if not isinstance(data, Mapping):
            raise ConfigError(f"a run config is a mapping of key: value, got {type(data).__name__}.")
        fields = {f.name for f in attrs.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in fields:
                raise ConfigError(
                    f"unknown config key {key!r}.{did_you_mean(str(key), fields)} Valid keys: {', '.join(sorted(fields))}."
                )
            if key in COMPONENT_KEYS:
                kwargs[key] = ComponentRef.parse(value, key)
            elif key == "train":
                kwargs[key] = build_config(TrainConfig, value or {}, where="config section 'train'")
            elif key == "diagnostics":
                kwargs[key] = build_config(DiagnosticsConfig, value or {}, where="config section 'diagnostics'")
            elif key == "loggers":
                kwargs[key] = _parse_loggers(value)
            else:
                kwargs[key] = value
        scalars = {k: v for k, v in kwargs.items() if k not in COMPONENT_KEYS and k not in ("train", "diagnostics", "loggers")}
        for key in ("task", "backbone", "method"):
            if key not in kwargs:
                raise ConfigError(f"the run config needs {key!r}; add e.g. '{key}: NAME' (see 'mona-kit list').")
        checked = build_config(_Scalars, scalars, where="run config")
        # output_dir=~/runs from a quoted YAML value or an override would otherwise make a folder named '~'.
        checked = attrs.evolve(checked, output_dir=os.path.expanduser(checked.output_dir))
        if os.environ.get("WORLD_SIZE", "1").strip() not in ("", "0", "1"):  # under torchrun: before any folder is made
            from .distributed import check_global_batch

            check_global_batch(kwargs.get("train", TrainConfig()).batch_size)
        return cls(**{**kwargs, **attrs.asdict(checked)})

    def to_plain(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in attrs.fields(type(self)):
            value = getattr(self, f.name)
            if f.name == "loggers":
                if value:  # left out when empty: runs recorded before loggers existed resume unchanged
                    out[f.name] = [ref.to_plain() for ref in value]
                continue
            out[f.name] = value.to_plain() if isinstance(value, ComponentRef) else to_dict(value)
        return out


def _parse_loggers(value: Any) -> tuple[ComponentRef, ...]:
    """``loggers: [tensorboard, {name: mlflow, experiment: x}]`` (a single name is a list of one)."""
    if value is None:
        return ()
    if isinstance(value, (str, Mapping)):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(f"config key 'loggers' must be a list of logger names (e.g. loggers=[tensorboard,mlflow]), got {value!r}.")
    return tuple(ComponentRef.parse(item, "loggers") for item in value)


def _scalar_config() -> type:
    """RunConfig's scalar keys as a config class of their own (the same types, defaults and ranges,
    defined once on RunConfig), so build_config validates them like a component's options."""
    attrs.resolve_types(RunConfig)
    scalars = [f for f in attrs.fields(RunConfig) if f.name not in (*COMPONENT_KEYS, "train", "diagnostics", "loggers")]
    fields = {f.name: attrs.field(default=f.default, validator=f.validator, metadata=f.metadata, type=f.type) for f in scalars}
    return attrs.make_class("_Scalars", fields, frozen=True, kw_only=True)


_Scalars = _scalar_config()


def parse_overrides(items: Iterable[str], *, example: str = "train.lr=3e-4",
                    allow_repeats: bool = False) -> list[tuple[list[str], Any]]:
    """``key=value`` items as (key path, YAML value). A key given twice is an error unless
    ``allow_repeats`` (a resume replays every recorded change, so its keys may repeat): on a command
    line the second one would silently win."""
    out = []
    seen: dict[str, str] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not key=value (e.g. {example}).")
        if key in seen and not allow_repeats:
            raise ConfigError(f"{key} is given twice ({seen[key]}, {item}); keep the one you mean.")
        seen[key] = item
        try:
            value = load_yaml_text(raw, what=f"override {key!r}") if raw != "" else ""
        except YamlSyntaxError:  # not YAML (e.g. a path with a colon): take the text as it is
            value = raw
        out.append((key.split("."), value))
    return out


def _component_name(head: str, value: Any) -> str:
    """The name in ``backbone=NAME``; YAML reads ``timm:`` as a mapping and ``{name: x}`` as one too."""
    if isinstance(value, str):
        return value
    prefix = next(iter(value)) if isinstance(value, dict) and len(value) == 1 else None
    if isinstance(prefix, str) and ":" not in prefix and value[prefix] is None:  # hf: or timm: with no id
        raise ConfigError(f"override {head}={prefix}: lacks the id after the colon; write {head}={prefix}:ID.")
    raise ConfigError(
        f"override {head}= takes a registered name (list them with 'mona-kit list {_KINDS[head]}'), got {value!r}; "
        f"set its options one by one as {head}.OPTION=value."
    )


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str], *, allow_repeats: bool = False) -> dict[str, Any]:
    """``a.b=value`` overrides on a plain config dict. ``method=orca`` replaces a component's name."""
    data = copy.deepcopy(dict(data))
    for path, value in parse_overrides(overrides, allow_repeats=allow_repeats):
        head = path[0]
        if head in COMPONENT_KEYS:
            ref = ComponentRef.parse(data.get(head, "auto"), head)
            if len(path) == 1:
                value = _component_name(head, value)
                # A new component's options would not fit: start from none.
                ref = ComponentRef(name=value, options={} if value != ref.name else ref.options)
            elif len(path) == 2:
                ref = ComponentRef(name=ref.name, options={**ref.options, path[1]: value})
            else:
                raise ConfigError(f"override {'.'.join(path)!r} is too deep; use {head}.OPTION=value.")
            data[head] = ref.to_plain()
        elif len(path) == 1:
            data[head] = value
        elif len(path) == 2 and head in ("train", "diagnostics"):
            section = dict(data.get(head) or {})
            section[path[1]] = value
            data[head] = section
        else:
            raise ConfigError(f"override {'.'.join(path)!r}: only train.X, diagnostics.X and COMPONENT.X nest.")
    return data


def read_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file() and not path.is_dir():
        raise ConfigError(f"config file {str(path)!r} does not exist; check the path (or run 'mona-kit run' with no file for the default).")
    # Bounded: size, depth, aliases, duplicate keys, binary and non-UTF-8 files are one-line errors.
    data = load_yaml_file(path, what="config file")
    if data is None:
        raise ConfigError(f"config file {str(path)!r} is empty; it needs at least task, backbone and method.")
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of key: value.")
    return data


def check_components(run_config: RunConfig, kit) -> None:
    """Every named component (task, source, backbone, embedder, head, method) against its registry,
    with its options (``auto`` components are chosen at build time): a typo fails before anything runs."""
    for key in COMPONENT_KEYS:
        ref = getattr(run_config, key)
        if ref.name == "auto":
            continue
        kit.registry(_KINDS[key]).get(ref.name).make_config(ref.options)
