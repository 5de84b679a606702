"""The hooks a mona-kit plugin implements.

Every registration hook receives a ``register`` callback owned by the core. The
core binds it to the calling plugin, so each entry records which plugin
(distribution, version) provided it, and validates the entry on the spot.

Specs grow by appending arguments, never by renaming them: an implementation may
accept any subset of a spec's arguments (pluggy passes only the ones it names).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import pluggy

PROJECT = "mona_kit"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Registrar(Protocol):
    """The ``register`` callback every registration hook receives (typed, so editors show it)."""

    def __call__(self, name: str, factory: Callable[..., Any], *, config: type | None = None, summary: str = "",
                 replace: bool = False, **meta: Any) -> None: ...


class CommandRegistrar(Protocol):
    """The ``register`` callback of :func:`register_commands`."""

    def __call__(self, name: str, configure: Callable[..., Any], handler: Callable[..., int], *, summary: str = "",
                 replace: bool = False) -> None: ...


@hookspec
def register_backbones(register: Registrar) -> None:
    """Register pretrained bodies.

    ``register(name, factory, *, config=None, summary="", replace=False, **meta)``.
    ``factory(config)`` returns a :class:`mona_kit.components.Backbone`.
    Useful ``meta``: ``modality`` (source modality: ``"text"``, ``"image"``),
    ``weights`` (where the weights come from), ``license``, ``family``.
    """


@hookspec
def register_embedders(register: Registrar) -> None:
    """Register target embedders and task heads.

    ``register(name, factory, *, role="embedder"|"head", config=None, summary="", ...)``.
    An embedder factory is ``factory(config, *, task, body)`` returning a
    :class:`mona_kit.components.Embedder`; a head factory is
    ``factory(config, *, task, body, embedder)`` returning a
    :class:`mona_kit.components.Head`.
    """


@hookspec
def register_objectives(register: Registrar) -> None:
    """Register alignment objectives and task losses.

    ``register(name, factory, *, role=..., config=None, summary="", ...)`` where
    ``role`` is ``"distance"`` (``objective(xs, ys, xt, yt) -> scalar`` between two
    labelled feature sets: ORCA's alignment, the modality gap), ``"representation"``
    (``objective(z, y) -> scalar`` on one labelled feature set: MoNA's outer loss)
    or ``"task-loss"`` (``loss(prediction, target) -> scalar``).
    """


@hookspec
def register_datasets(register: Registrar) -> None:
    """Register target tasks and source proxy datasets.

    ``register(name, factory, *, config=None, summary="", ...)``;
    ``factory(config)`` returns a :class:`mona_kit.components.TaskData`.
    """


@hookspec
def register_methods(register: Registrar) -> None:
    """Register transfer methods.

    ``register(name, factory, *, config=None, summary="", ...)``;
    ``factory(config)`` returns a :class:`mona_kit.stages.Method`.
    """


@hookspec
def register_metrics(register: Registrar) -> None:
    """Register evaluation metrics.

    ``register(name, factory, *, config=None, summary="")``;
    ``factory(config)`` returns a :class:`mona_kit.components.Metric`, whose ``higher_is_better``
    attribute is the one place the metric's direction lives.
    """


@hookspec
def register_commands(register: CommandRegistrar) -> None:
    """Register extra CLI verbs.

    ``register(name, configure, handler, *, summary="")``: ``configure(parser)`` adds
    arguments to an ``argparse`` sub-parser, ``handler(args, kit) -> int`` runs the verb.
    """


@hookspec
def register_loggers(register):
    """Register experiment loggers (TensorBoard, MLflow, ...), chosen by a run's ``loggers`` list.

    ``register(name, factory, *, config=None, summary="", requires=())``; ``factory(config, *, run_dir)``
    (``factory(*, run_dir)`` without a config class) returns a :class:`mona_kit.api.Logger`;
    ``requires`` names import packages the logger needs (checked before the run directory is made). On the main rank, a run opens its loggers once its
    directory exists, hands them its config and environment, then every event as it is written to
    ``metrics.jsonl``, and closes them when it ends. Import heavy packages inside the factory.
    """
