"""Contract checks plugin authors run on their components, and on their methods' stages
(``check_resume_bitwise``, ``check_nonfinite_stops``: the resume and fault contract of the training loop)."""

from .data import check_metric, check_samples, check_task_data  # noqa: F401
from .models import check_backbone, check_embedder, check_head  # noqa: F401
from .objectives import check_distance_objective, check_representation_objective  # noqa: F401
from .training import check_nonfinite_stops, check_resume_bitwise, stage_steps  # noqa: F401
