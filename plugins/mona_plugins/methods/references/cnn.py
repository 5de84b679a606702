"""``cnn``: a small 1-D CNN trained from scratch for sequence classification (DNA and other
categorical or one-hot sequences), in the spirit of DeepSEA (Zhou & Troyanskaya 2015):
conv-relu-maxpool stacks that detect motifs, a global max pool (a motif counts wherever it is),
dropout and a linear layer.
"""

from __future__ import annotations

import torch
from torch import nn

from mona_kit.config import config, option
from mona_kit.errors import ConfigError
from mona_kit.stages import TrainStage

from .common import TRAINABLE, ReferenceMethod, ReferenceModel


@config
class CnnConfig:
    channels: int = option(64, help="filters of the first conv layer (doubled in the later ones)")
    kernel: int = option(9, help="kernel length of every conv layer")
    blocks: int = option(3, help="conv-relu(-maxpool) blocks")
    pool: int = option(4, help="max-pool stride between blocks (only while the sequence is long enough)")
    dropout: float = option(0.2, help="dropout before the linear layer")
    epochs: int | None = option(None, help="training epochs (None = train.epochs)")
    lr: float = option(1e-3, help="learning rate (AdamW, train.scheduler)")


class SequenceCnn(ReferenceModel):
    def __init__(self, spec, cfg: CnnConfig):
        super().__init__(spec.input_shape, spec.output_shape)
        channels, length = spec.input_shape
        layers: list[nn.Module] = []
        width = channels
        for i in range(cfg.blocks):
            out = cfg.channels * (2 if i else 1)
            layers += [nn.Conv1d(width, out, cfg.kernel, padding=cfg.kernel // 2), nn.BatchNorm1d(out), nn.ReLU()]
            if i < cfg.blocks - 1 and length // cfg.pool >= cfg.kernel:
                layers.append(nn.MaxPool1d(cfg.pool))
                length //= cfg.pool
            width = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(width, spec.output_shape[0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).amax(dim=-1))


def check_sequence_classification(spec, what: str) -> None:
    if spec.task_type not in ("classification", "multilabel") or len(spec.input_shape) != 2:
        raise ConfigError(
            f"{what} classifies sequences (input channels x length); task {spec.name!r} is {spec.task_type} "
            f"with input {tuple(spec.input_shape)}."
        )


class CnnMethod(ReferenceMethod):
    model_name = "cnn"
    normalized = True

    def __init__(self, cfg: CnnConfig):
        self.cfg = cfg

    def check(self, session) -> None:
        check_sequence_classification(session.spec, "cnn")

    def make_model(self, session) -> SequenceCnn:
        return SequenceCnn(session.spec, self.cfg)

    def stages(self, session):
        return [TrainStage(name="cnn", trainable=TRAINABLE, epochs=self.cfg.epochs, lr=self.cfg.lr,
                           embedder_lr=self.cfg.lr, track_reuse=False)]
