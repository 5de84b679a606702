"""ORCA (Shen et al., ICML 2023): align the target embedder to the source proxy, then refine.

Model selection uses the validation split (ORCA's released configs select on test).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mona_kit.api import ALL_GROUPS, ConfigError, Method, TrainStage, config, option


from .align import AlignStage, distance_objective

if TYPE_CHECKING:
    from mona_kit.api import Session


@config
class OrcaConfig:
    objective: str = option("otdd", help="registered distance objective (otdd, otdd-gaussian, mmd, l2, or a plugin's)")
    objective_options: dict = option(factory=dict, help="options for the objective's config")
    align_epochs: int = option(60, min=1, help="embedder alignment epochs, one optimiser step each (ORCA: 60)")
    align_lr: float | None = option(None, min=0, min_exclusive=True, help="alignment LR (None: train.embedder_lr or train.lr, x10 if <= 1e-3, as ORCA)")
    max_source: int = option(5000, min=1, help="source proxy samples used (ORCA caps at 5,000)")
    target_samples: int = option(256, min=1, help="target samples embedded at each alignment step")
    pseudo_label_k: int = option(10, min=1, help="k-means pseudo-label classes for regression and dense targets")


def orca_align_lr(session: Session, explicit: float | None) -> float:
    if explicit is not None:
        return explicit
    base = session.config.train.embedder_lr or session.config.train.lr
    return base * 10 if base <= 1e-3 else base


class Orca(Method):
    uses_source = True

    def __init__(self, cfg: OrcaConfig):
        self.cfg = cfg

    def align_stage(self, session: Session) -> AlignStage:
        c = self.cfg
        return AlignStage(
            objective=c.objective,
            objective_options=dict(c.objective_options),
            epochs=c.align_epochs,
            lr=orca_align_lr(session, c.align_lr),
            max_source=c.max_source,
            target_samples=c.target_samples,
            pseudo_label_k=c.pseudo_label_k,
        )

    def stages(self, session: Session):
        return [self.align_stage(session), TrainStage(name="refine", trainable=ALL_GROUPS)]

    def check(self, session: Session) -> None:
        super().check(session)
        objective = distance_objective(session, self.cfg.objective, dict(self.cfg.objective_options))
        if getattr(objective, "needs_labels", False) and session.spec.task_type != "classification" and self.cfg.pseudo_label_k < 2:
            raise ConfigError(
                f"objective {self.cfg.objective!r} needs target labels, but task {session.spec.name!r} "
                f"({session.spec.task_type}) has none and pseudo-labelling is off; set method.pseudo_label_k >= 2 "
                f"(k-means pseudo-labels) or choose an objective without labels (mmd, l2)."
            )


def register_all(register):
    register(
        "orca",
        Orca,
        config=OrcaConfig,
        summary="ORCA: align the target embedder to source proxy data (OTDD by default), then fine-tune",
    )
