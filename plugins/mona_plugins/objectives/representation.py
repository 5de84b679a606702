"""Representation objectives on one labelled feature set (role "representation"): MoNA's outer
loss ``align-uniform`` (Wang & Isola 2020) and supervised contrastive ``supcon`` (Khosla et al. 2020).

Both normalise the features onto the unit sphere inside. Positive pairs are samples sharing a
label; to use two augmented views instead, pass the sample index as the label of both views.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F

from mona_kit.api import RepresentationObjective, ShapeError, config, option


def _check(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if z.dim() != 2:
        raise ShapeError(f"representation objectives take features [n, d], got {tuple(z.shape)}; pool tokens first.")
    if y is None or y.dim() != 1 or y.shape[0] != z.shape[0]:
        raise ShapeError(
            f"representation objectives need one integer label per feature row ({z.shape[0]}), "
            f"got {None if y is None else tuple(y.shape)}."
        )
    return y.to(z.device)


@config
class AlignUniformConfig:
    """Options of ``align-uniform``."""

    t: float = option(2.0, min=0, min_exclusive=True, help="temperature of the uniformity kernel exp(-t ||zi - zj||^2)")
    align_weight: float = option(1.0, min=0, help="weight of L_align")
    uniform_weight: float = option(1.0, min=0, help="weight of L_unif")


class AlignUniform(RepresentationObjective):
    """``align_weight * L_align + uniform_weight * L_unif`` on normalised features z.

    ``L_align = mean over same-label pairs i != j of ||z_i - z_j||^2``;
    ``L_unif = log mean_{i != j} exp(-t ||z_i - z_j||^2)``.
    A batch where no label occurs twice has no positive pair: ``L_align`` is 0 then (with a
    warning), and the loss is the uniformity term alone. ``last_terms`` holds the two terms and
    the number of positive pairs of the latest call, for logging.
    """

    def __init__(self, cfg: AlignUniformConfig | None = None):
        super().__init__()
        self.cfg = cfg or AlignUniformConfig()
        self.last_terms: dict[str, float] = {}

    def extra_repr(self) -> str:
        return str(self.cfg)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y = _check(z, y)
        z = F.normalize(z, dim=1)
        n = z.shape[0]
        # ||zi - zj||^2 = 2 - 2 zi.zj on the sphere (clamped against rounding)
        d = (2.0 - 2.0 * z @ z.t()).clamp_min(0.0)
        off = ~torch.eye(n, dtype=torch.bool, device=z.device)
        positive = (y.unsqueeze(0) == y.unsqueeze(1)) & off
        pairs = int(positive.sum())
        if pairs:
            align = d[positive].mean()
        else:
            warnings.warn(
                "align-uniform: no label occurs twice in this batch, so L_align = 0 (uniformity only); "
                "sample batches with several examples per class.",
                stacklevel=2,
            )
            align = z.sum() * 0.0
        if n > 1:
            uniform = torch.logsumexp(-self.cfg.t * d[off], dim=0) - math.log(n * (n - 1))
        else:
            uniform = z.sum() * 0.0
        self.last_terms = {"align": float(align.detach()), "uniform": float(uniform.detach()), "positive_pairs": pairs}
        return self.cfg.align_weight * align + self.cfg.uniform_weight * uniform


@config
class SupConConfig:
    """Options of ``supcon``."""

    temperature: float = option(0.1, min=0, min_exclusive=True, help="softmax temperature tau of the similarity logits")


class SupCon(RepresentationObjective):
    """Supervised contrastive loss (Khosla et al. 2020, the L_out form) on normalised features:
    ``mean over anchors i with a positive of -1/|P(i)| sum_{p in P(i)} log softmax_{a != i}(z_i.z_a / tau)_p``.
    Anchors without a positive are left out; a batch with none gives 0."""

    def __init__(self, cfg: SupConConfig | None = None):
        super().__init__()
        self.cfg = cfg or SupConConfig()

    def extra_repr(self) -> str:
        return str(self.cfg)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y = _check(z, y)
        z = F.normalize(z, dim=1)
        n = z.shape[0]
        eye = torch.eye(n, dtype=torch.bool, device=z.device)
        logits = (z @ z.t() / self.cfg.temperature).masked_fill(eye, float("-inf"))
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        positive = (y.unsqueeze(0) == y.unsqueeze(1)) & ~eye
        count = positive.sum(1)
        has = count > 0
        if not bool(has.any()):
            return z.sum() * 0.0
        per_anchor = -(log_prob.masked_fill(~positive, 0.0)).sum(1)[has] / count[has]
        return per_anchor.mean()


def register_all(register) -> None:
    """Register the representation objectives."""
    register(
        "align-uniform",
        lambda cfg, **_context: AlignUniform(cfg),
        config=AlignUniformConfig,
        role="representation",
        summary="Alignment + uniformity on the sphere (Wang & Isola 2020), t=2; MoNA's outer loss on source features.",
    )
    register(
        "supcon",
        lambda cfg, **_context: SupCon(cfg),
        config=SupConConfig,
        role="representation",
        summary="Supervised contrastive loss (Khosla et al. 2020), temperature 0.1; an alternative outer loss.",
    )
