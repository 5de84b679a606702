"""MoNA (Ma, Li, Cai, Kang, ICML 2024): warm up, meta-learn the target embedder so that
fine-tuning keeps the body's source knowledge, then fine-tune from the pretrained body.

No official code exists; every choice the paper leaves open is an option below with the
default of ``../shared/METHODS.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mona_kit.api import ALL_GROUPS, BODY_GROUPS, ConfigError, Method, Stage, TrainStage, config, did_you_mean, option

from .align import AlignStage
from .orca import orca_align_lr
from .meta_align import MetaAlignStage, representation_objective

if TYPE_CHECKING:
    from mona_kit.api import Session


#: What ``inner_params`` may name: every body sorts its parameters into the fixed BODY_GROUPS vocabulary.
INNER_PARAMS = ("all", *BODY_GROUPS)
INNER_PARAMS_EXAMPLE = "method.inner_params=[attention,mlp]"


def check_inner_params(groups) -> None:
    """The names alone, when the config is built (no body needed): a typo fails before anything runs."""
    if not isinstance(groups, (list, tuple)) or not groups:
        got = list(groups) if isinstance(groups, (list, tuple)) else groups
        raise ConfigError(
            f"option 'inner_params' must name at least one body group, got {got!r}; give e.g. {INNER_PARAMS_EXAMPLE} or [all]."
        )
    unknown = [g for g in groups if not isinstance(g, str) or g not in INNER_PARAMS]
    if unknown:
        raise ConfigError(
            f"option 'inner_params' names unknown body group(s) {unknown}.{did_you_mean(str(unknown[0]), INNER_PARAMS)} "
            f"Valid: 'all' or any of {', '.join(BODY_GROUPS)}; e.g. {INNER_PARAMS_EXAMPLE}."
        )


def check_inner_params_on_body(groups, body, backbone: str) -> None:
    """Against the run's body (in ``Mona.check``, before any stage): a backbone may leave a group out, and
    an inner loop over no parameters at all has nothing to differentiate."""
    found = body.param_groups()
    present = sorted(g for g, names in found.items() if names)
    if "all" in groups:
        missing, selected = [], present
    else:
        missing = [g for g in groups if g not in found]
        selected = [g for g in groups if found.get(g)]
    if missing or not selected:
        what = f"names body group(s) {missing} that backbone {backbone!r} does not have" if missing else (
            f"selects no parameters of backbone {backbone!r}")
        raise ConfigError(
            f"method.inner_params={list(groups)} {what}; its non-empty groups are {', '.join(present) or 'none'}: "
            f"choose among them (e.g. method.inner_params=[{present[0] if present else 'all'}]) or [all]."
        )


@config
class MonaConfig:
    warmup: str = option("task", choices=("task", "align", "none"), help="warm-up of embedder/head: task loss with the body frozen, ORCA-style alignment, or none")
    warmup_epochs: int = option(1, min=0, help="warm-up epochs (task) or alignment epochs (align)")
    meta_steps: int = option(40, min=1, help="stage-1 meta steps (one target and one source batch each)")
    inner_steps: int = option(1, min=1, help="K: simulated fine-tuning steps in the inner loop")
    inner_lr: float | None = option(None, min=0, min_exclusive=True, help="alpha: inner LR (None = 10 x train.lr)")
    lam: float = option(0.5, min=0, help="lambda: weight of the source-knowledge loss (paper: 0.3-0.5)")
    objective: str = option("align-uniform", help="registered representation objective for the outer loss")
    objective_options: dict = option(factory=dict, help="options for the outer objective (e.g. {t: 2})")
    inner_params: tuple[str, ...] = option(("all",), help=f"body groups adapted in the inner loop ('all' or some of {', '.join(BODY_GROUPS)}; e.g. [attention, mlp])")
    source_batch_size: int = option(16, min=1, help="labelled source proxy samples per meta step")
    source_tokens: int | None = option(None, min=1, help="source tokens kept per sample in stage 1 (None: as many as the target embedder emits, so both passes cost alike)")
    meta_lr: float | None = option(None, min=0, min_exclusive=True, help="LR of embedder and head in stage 1 (None = train.embedder_lr or 10 x train.lr)")
    second_order: bool = option(True, help="keep the second-order term (False gives the embedder no outer gradient)")
    positives: str = option("label", choices=("label",), help="positive pairs for the alignment term: same source label")

    def __attrs_post_init__(self) -> None:
        check_inner_params(self.inner_params)


class Mona(Method):
    uses_source = True
    first_order_surrogate = False

    def __init__(self, cfg: MonaConfig):
        self.cfg = cfg

    def warmup_stage(self, session: Session):
        c = self.cfg
        if c.warmup == "task":
            return TrainStage(name="warmup", trainable=("embedder", "head"), epochs=c.warmup_epochs, select_best=False, track_reuse=False)
        if c.warmup == "align":  # ORCA's alignment with ORCA's LR rule, as the warm-up
            return AlignStage(name="warmup", epochs=max(1, c.warmup_epochs), lr=orca_align_lr(session, None))
        return None

    def meta_stage(self, session: Session) -> MetaAlignStage:
        c = self.cfg
        train = session.config.train
        return MetaAlignStage(
            steps=c.meta_steps,
            inner_steps=c.inner_steps,
            inner_lr=c.inner_lr if c.inner_lr is not None else 10 * train.lr,
            lam=c.lam,
            objective=c.objective,
            objective_options=dict(c.objective_options),
            inner_params=tuple(c.inner_params),
            source_batch_size=c.source_batch_size,
            source_tokens=c.source_tokens,
            meta_lr=c.meta_lr if c.meta_lr is not None else (train.embedder_lr or 10 * train.lr),
            second_order=c.second_order,
            first_order_surrogate=self.first_order_surrogate,
        )

    def check(self, session: Session) -> None:
        super().check(session)
        representation_objective(session, self.cfg.objective, dict(self.cfg.objective_options))
        check_inner_params_on_body(self.cfg.inner_params, session.pretrained_body, session.backbone_entry.name)

    def stages(self, session: Session):
        warm = self.warmup_stage(session)
        stages = [warm] if warm is not None else []
        stages.append(self.meta_stage(session))
        stages.append(ResetBody())
        stages.append(TrainStage(name="finetune", trainable=ALL_GROUPS))
        return stages


class MonaGradAlign(Mona):
    """Cheaper first-order surrogate: L_task - lambda * alpha * <grad L_src, grad L_task>."""

    first_order_surrogate = True


class ResetBody(Stage):
    """Stage 2 starts from the pretrained body, not from whatever stage 1 touched."""

    name = "reset-body"

    def run(self, session: Session, model) -> None:
        session.reset_body(model)


# Said under every table that shows these rows: MoNA's authors published no code.
RECONSTRUCTION = ("mona-kit's reconstruction of MoNA from the paper (no public MoNA code exists); "
                  "every open choice is an option (`mona-kit describe mona`)")
FIRST_ORDER = ("mona-kit's own first-order variant of its MoNA reconstruction (no public MoNA code exists); "
               "every open choice is an option (`mona-kit describe mona-grad-align`)")


def register_all(register):
    register(
        "mona",
        Mona,
        config=MonaConfig,
        summary="MoNA: warm-up, meta-learn the target embedder to keep source knowledge (second-order), then fine-tune",
        provenance=RECONSTRUCTION,
    )
    register(
        "mona-grad-align",
        MonaGradAlign,
        config=MonaConfig,
        summary="MoNA's first-order surrogate: align target and source-knowledge gradients, then fine-tune",
        provenance=FIRST_ORDER,
    )
