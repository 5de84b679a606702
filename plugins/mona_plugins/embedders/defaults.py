"""Which embedder and head suit a task: one table, registered as metadata.

The core's ``auto`` choice reads these facts from the metadata (``input_ranks``, ``body_families``,
``task_types``); nothing else decides it.
"""

from __future__ import annotations

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
