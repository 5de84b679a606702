"""Which embedder and head suit a task: one table, used for registry metadata and by the helpers below.

The core's ``auto`` choice reads the same facts from metadata (``input_ranks``, ``body_families``,
``task_types``), so the two can never disagree.
"""

from __future__ import annotations

from mona_kit.api import ConfigError

#: embedder -> the task input ranks and body families it handles.
EMBEDDER_USES = {
    "seq1d-conv": {"input_ranks": (2,), "body_families": ("transformer",)},
    "grid2d-patch": {"input_ranks": (3,), "body_families": ("transformer",)},
    "tabular": {"input_ranks": (1,), "body_families": ("transformer",)},
    "cnn-stem": {"input_ranks": (2, 3), "body_families": ("cnn",)},
}

#: head -> the task types it handles.
HEAD_USES = {
    "classification": {"task_types": ("classification",)},
    "multilabel": {"task_types": ("multilabel",)},
    "regression": {"task_types": ("regression",)},
    "dense-1d": {"task_types": ("dense1d",)},
    "dense-2d": {"task_types": ("dense2d",)},
}


def default_embedder(task, body) -> str:
    """The embedder for a task's input rank and the body's family."""
    rank = len(task.input_shape)
    for name, uses in EMBEDDER_USES.items():
        if rank in uses["input_ranks"] and body.family in uses["body_families"]:
            return name
    raise ConfigError(
        f"no first-party embedder takes rank-{rank} inputs into a {body.family} body (task {task.name!r}); "
        f"name one in the config (embedder: NAME)."
    )


def default_head(task) -> str:
    """The head for a task type."""
    for name, uses in HEAD_USES.items():
        if task.task_type in uses["task_types"]:
            return name
    raise ConfigError(f"no first-party head handles task type {task.task_type!r}; name one (head: NAME).")
