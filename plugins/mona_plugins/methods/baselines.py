"""The simple baselines: train from scratch, linear probe, naive fine-tuning and FPT."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mona_kit.api import ALL_GROUPS, Method, TrainStage, config, option

if TYPE_CHECKING:
    from mona_kit.api import Session

#: FPT (Lu et al. 2021) trains everything but the attention and feed-forward blocks.
FPT_GROUPS = ("embedder", "head", "body.norm", "body.position")


class Finetune(Method):
    """Naive cross-modal fine-tuning: new embedder and head, train everything on the task loss."""

    def stages(self, session: Session):
        return [TrainStage(name="finetune", trainable=ALL_GROUPS)]


class Scratch(Finetune):
    """The same architecture with a randomly initialised body, fully trained."""

    pretrained_body = False


@config
class LinearProbeConfig:
    train_embedder: bool = option(False, help="also train the target embedder (the body stays frozen)")


class LinearProbe(Method):
    """Body (and embedder) frozen; only the head is trained."""

    def __init__(self, cfg: LinearProbeConfig):
        self.cfg = cfg

    def stages(self, session: Session):
        groups = ("head", "embedder") if self.cfg.train_embedder else ("head",)
        return [TrainStage(name="linear-probe", trainable=groups, track_reuse=False)]


class FPT(Method):
    """Frozen pretrained transformer: attention and MLP blocks frozen; embedder, positions,
    LayerNorms and head trained."""

    def stages(self, session: Session):
        return [TrainStage(name="fpt", trainable=FPT_GROUPS)]


def register_all(register):
    register("scratch", lambda: Scratch(), summary="train from scratch: same model, random body, full training",
             uses_pretrained_body=False)  # a control, not transfer: reports leave it out of "best transfer row"
    register(
        "linear-probe",
        LinearProbe,
        config=LinearProbeConfig,
        summary="linear probe: body (and embedder) frozen, train the head only",
    )
    register("finetune", lambda: Finetune(), summary="naive cross-modal fine-tuning of embedder, body and head")
    register(
        "fpt",
        lambda: FPT(),
        summary="FPT (Lu et al. 2021): freeze attention and MLP; train embedder, positions, LayerNorms, head",
        trains=list(FPT_GROUPS),
    )
