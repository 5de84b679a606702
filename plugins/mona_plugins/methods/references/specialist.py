"""``specialist``: the from-scratch specialist of the task's family, so one table row covers all:

* dense grid tasks (dense1d, dense2d) -> ``fno``;
* classification of categorical sequences (DNA, RNA, protein: one-hot channels) -> ``cnn``;
* other sequence classification (time series) -> ``minirocket``;
* image classification (channels x height x width) -> ``cnn`` in 2-D.

The choice reads the task's spec (and, for a sequence of unknown modality, whether its inputs
are one-hot); ``results["reference"]`` records which one ran.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from mona_kit.api import ConfigError, config, option

from .cnn import CnnConfig, CnnMethod
from .common import ReferenceMethod
from .fno import FnoConfig, FnoMethod
from .minirocket import MiniRocketConfig, MiniRocketMethod

if TYPE_CHECKING:
    from mona_kit.api import Session

#: Modalities whose sequences are categorical (one-hot letters), the CNN's ground.
CATEGORICAL_MODALITIES = ("dna", "rna", "protein")
#: Training samples inspected when the modality does not say.
PEEK = 64


@config
class SpecialistConfig:
    epochs: int | None = option(None, min=1, help="training epochs of fno or cnn (None = train.epochs x epochs_scale); minirocket is fitted")
    epochs_scale: float = option(
        1.0, min=0, min_exclusive=True,
        help="with epochs None: train for this multiple of the task's train.epochs (the specialists are cheap, so a "
        "sweep can train them to their plateau beside slower transfer methods)",
    )
    lr: float = option(1e-3, min=0, min_exclusive=True, help="learning rate of fno or cnn")
    width: int | None = option(None, min=1, help="fno's width or cnn's first-layer channels (None = their defaults)")
    patience: int | None = option(
        None, min=1,
        help="fno's or cnn's early-stopping patience in validation passes (None = train.patience); raise it with "
        "epochs_scale, or a longer cosine schedule is stopped while its learning rate is still high",
    )


def looks_one_hot(dataset) -> bool:
    """Whether the first samples' channels are one-hot at every position."""
    xs = torch.stack([torch.as_tensor(dataset[i]["x"]) for i in range(min(PEEK, len(dataset)))])
    return bool(((xs == 0) | (xs == 1)).all() and (xs.sum(1) == 1).all())


def specialist_epochs(session: Session, cfg: SpecialistConfig) -> int | None:
    """The specialist's epochs: its own, else the task's scaled by ``epochs_scale`` (at least one)."""
    if cfg.epochs is not None or cfg.epochs_scale == 1.0:
        return cfg.epochs
    return max(1, round(session.config.train.epochs * cfg.epochs_scale))


def choose(session: Session, cfg: SpecialistConfig) -> ReferenceMethod:
    spec = session.spec
    epochs = specialist_epochs(session, cfg)
    width = {} if cfg.width is None else {"width": cfg.width}
    channels = {} if cfg.width is None else {"channels": cfg.width}
    if spec.task_type in ("dense1d", "dense2d"):
        return FnoMethod(FnoConfig(epochs=epochs, lr=cfg.lr, patience=cfg.patience, **width))
    if spec.task_type in ("classification", "multilabel") and len(spec.input_shape) == 2:
        if spec.modality in CATEGORICAL_MODALITIES or looks_one_hot(session.task.train):
            return CnnMethod(CnnConfig(epochs=epochs, lr=cfg.lr, patience=cfg.patience, **channels))
        return MiniRocketMethod(MiniRocketConfig())
    if spec.task_type in ("classification", "multilabel") and len(spec.input_shape) == 3:
        return CnnMethod(CnnConfig(epochs=epochs, lr=cfg.lr, patience=cfg.patience, **channels))
    raise ConfigError(
        f"no specialist for task {spec.name!r} ({spec.task_type}, input {tuple(spec.input_shape)}): there is one for "
        f"grid fields (fno), categorical sequences and images (cnn) and time series (minirocket); use linear or knn."
    )


class Specialist(ReferenceMethod):
    model_name = "specialist"

    def __init__(self, cfg: SpecialistConfig):
        self.cfg = cfg
        self._chosen: ReferenceMethod | None = None

    def chosen(self, session: Session) -> ReferenceMethod:
        if self._chosen is None:
            self._chosen = choose(session, self.cfg)
        return self._chosen

    def check(self, session: Session) -> None:
        self.chosen(session).check(session)

    def build_model(self, session: Session, pretrained: bool):
        model = self.chosen(session).build_model(session, pretrained)
        session.results["reference"]["specialist"] = True  # picked for the task, not named by the user
        return model

    def stages(self, session: Session):
        return self.chosen(session).stages(session)
