"""``cnn``: a small CNN trained from scratch for classification.

Sequences (DNA and other categorical or one-hot sequences) get a 1-D CNN in the spirit of DeepSEA
(Zhou & Troyanskaya 2015): conv-relu-maxpool stacks that detect motifs, a global max pool (a motif
counts wherever it is), dropout and a linear layer. Images (channels x height x width, e.g. MNIST
as a target task) get the same stack in 2-D with 3x3 kernels and 2x2 pooling, LeNet-style.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from mona_kit.api import ConfigError, TrainStage, config, option

from .common import TRAINABLE, ReferenceMethod, ReferenceModel

if TYPE_CHECKING:
    from mona_kit.api import Session


@config
class CnnConfig:
    channels: int = option(64, min=1, help="filters of the first conv layer (doubled in the later ones)")
    kernel: int = option(9, min=1, help="kernel length of every conv layer")
    blocks: int = option(3, min=1, help="conv-relu(-maxpool) blocks")
    pool: int = option(4, min=1, help="max-pool stride between blocks (only while the sequence is long enough)")
    dropout: float = option(0.2, min=0, max=1, max_exclusive=True, help="dropout before the linear layer")
    epochs: int | None = option(None, min=1, help="training epochs (None = train.epochs)")
    lr: float = option(1e-3, min=0, min_exclusive=True, help="learning rate (AdamW, train.scheduler)")
    patience: int | None = option(None, min=1, help="validation passes without a gain before training stops (None = train.patience)")


#: Images use small kernels and halve their size per block (motifs in DNA need long kernels).
IMAGE_KERNEL, IMAGE_POOL = 3, 2


class SequenceCnn(ReferenceModel):
    def __init__(self, spec, cfg: CnnConfig):
        super().__init__(spec.input_shape, spec.output_shape)
        channels, *extent = spec.input_shape
        image = len(extent) == 2
        conv, norm, pool = (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d) if image else (nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d)
        kernel, stride = (IMAGE_KERNEL, IMAGE_POOL) if image else (cfg.kernel, cfg.pool)
        length = min(extent)
        layers: list[nn.Module] = []
        width = channels
        for i in range(cfg.blocks):
            out = cfg.channels * (2 if i else 1)
            layers += [conv(width, out, kernel, padding=kernel // 2), norm(out), nn.ReLU()]
            if i < cfg.blocks - 1 and length // stride >= kernel:
                layers.append(pool(stride))
                length //= stride
            width = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(width, spec.output_shape[0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(2).amax(dim=-1))


def check_sequence_classification(spec, what: str) -> None:
    if spec.task_type not in ("classification", "multilabel") or len(spec.input_shape) not in (2, 3):
        raise ConfigError(
            f"{what} classifies sequences (channels x length) or images (channels x height x width); task "
            f"{spec.name!r} is {spec.task_type} with input {tuple(spec.input_shape)}."
        )


class CnnMethod(ReferenceMethod):
    model_name = "cnn"
    normalized = True

    def __init__(self, cfg: CnnConfig):
        self.cfg = cfg

    def check(self, session: Session) -> None:
        check_sequence_classification(session.spec, "cnn")

    def make_model(self, session: Session) -> SequenceCnn:
        return SequenceCnn(session.spec, self.cfg)

    def stages(self, session: Session):
        return [TrainStage(name="cnn", trainable=TRAINABLE, epochs=self.cfg.epochs, lr=self.cfg.lr, patience=self.cfg.patience,
                           embedder_lr=self.cfg.lr, track_reuse=False)]
