"""Config classes of the embedders and heads."""

from __future__ import annotations

from mona_kit.api import config, option

BUDGET_HELP = "token budget (None: the body's max_tokens)"
POSITIONS_HELP = "add a trainable copy of the body's learned position embeddings (when it has them)"


@config
class Seq1dConfig:
    max_tokens: int | None = option(None, min=1, help=BUDGET_HELP)
    positions: bool = option(True, help=POSITIONS_HELP)


@config
class Grid2dConfig:
    max_tokens: int | None = option(None, min=1, help=BUDGET_HELP)
    size: int | None = option(None, min=1, help="resize inputs to size x size first (None: keep, rounded to whole patches)")
    patch: int | None = option(
        None, min=1, help="patch size (None: the body's pretrained patch, else the smallest whose grid fits the budget)"
    )
    positions: bool = option(True, help=POSITIONS_HELP)
    init: str = option(
        "pretrained", choices=("pretrained", "random"),
        help="pretrained: start from the body's patch projection tiled over input channels (when it has one)",
    )


@config
class CnnStemConfig:
    activation: str = option("relu", choices=("relu", "none"), help="activation after the stem's conv + BatchNorm")


@config
class TabularConfig:
    max_tokens: int | None = option(None, min=1, help=BUDGET_HELP)
    positions: bool = option(True, help=POSITIONS_HELP)


@config
class PooledHeadConfig:
    dropout: float = option(0.0, min=0, max=1, max_exclusive=True, help="dropout on the mean-pooled features")


@config
class DenseHeadConfig:
    refine: bool = option(False, help="add a 3-tap convolution after upsampling (a light decoder)")
