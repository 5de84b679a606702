"""Contract checks plugin authors run on their components."""

from .data import check_metric, check_samples, check_task_data  # noqa: F401
from .models import check_backbone, check_embedder, check_head  # noqa: F401
from .objectives import check_distance_objective, check_representation_objective  # noqa: F401
