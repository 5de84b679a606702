"""Config classes of the backbone adapters (plain data; no heavy imports here)."""

from __future__ import annotations

from mona_kit.api import config, option

PRETRAINED_HELP = "load the pretrained weights (false: random init of the same architecture, the scratch baseline)"


@config
class TextBackboneConfig:
    """Options of a transformers (text) body."""

    pretrained: bool = option(True, help=PRETRAINED_HELP)
    max_tokens: int = option(64, min=1, help="token budget: the longest token sequence the body takes (64 suits a CPU)")


@config
class ImageBackboneConfig:
    """Options of a timm (image) body."""

    pretrained: bool = option(True, help=PRETRAINED_HELP)
    image_size: int | None = option(
        None, min=1, help="input image size of the stem (None: the model's own, e.g. 224 for efficientnet-lite0, 32 for tiny-vit, 64 for tiny-cnn)"
    )
