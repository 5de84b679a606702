"""First-party target embedders (target input -> body input) and task heads (body features -> output).

Embedders: ``seq1d-conv`` (C, L), ``grid2d-patch`` (C, H, W), ``tabular`` (F,) for token bodies,
``cnn-stem`` for CNN bodies. Heads: ``classification``, ``multilabel``, ``regression``,
``dense-1d``, ``dense-2d``. Each registration carries the metadata the core's ``auto`` choice reads.
"""

from __future__ import annotations

from functools import partial

from mona_kit.api import hookimpl

from .configs import CnnStemConfig, DenseHeadConfig, Grid2dConfig, PooledHeadConfig, Seq1dConfig, TabularConfig
from .defaults import EMBEDDER_USES, HEAD_USES
from .grid import CnnStem, Grid2dPatch
from .heads import Dense1dHead, Dense2dHead, PooledHead
from .sequence import Seq1dConv, Tabular


@hookimpl
def register_embedders(register):
    embedders = (
        ("seq1d-conv", Seq1dConv, Seq1dConfig,
         "ORCA 1-D: Conv1d (kernel = stride = smallest divisor of L within the token budget), LayerNorm, positions"),
        ("grid2d-patch", Grid2dPatch, Grid2dConfig,
         "ORCA 2-D: resize, patch Conv2d (from the body's patch projection when it has one), LayerNorm, positions"),
        ("tabular", Tabular, TabularConfig, "feature vector: each feature (or group) a token, LayerNorm, positions"),
        ("cnn-stem", CnnStem, CnnStemConfig, "CNN bodies: resize to the stem map, 3x3 conv + BatchNorm + ReLU"),
    )
    for name, factory, cfg, summary in embedders:
        register(name, factory, role="embedder", config=cfg, summary=summary, default=True, **EMBEDDER_USES[name])
    heads = (
        ("classification", partial(PooledHead, label="head 'classification'"), PooledHeadConfig, "mean-pool tokens + Linear -> class logits"),
        ("multilabel", partial(PooledHead, label="head 'multilabel'"), PooledHeadConfig, "mean-pool tokens + Linear -> label logits (BCE)"),
        ("regression", partial(PooledHead, label="head 'regression'"), PooledHeadConfig, "mean-pool tokens + Linear -> values"),
        ("dense-1d", Dense1dHead, DenseHeadConfig, "each token emits its slice of samples -> [B, C, L]"),
        ("dense-2d", Dense2dHead, DenseHeadConfig, "tokens to the grid, pixel shuffle, resize -> [B, C, H, W]"),
    )
    for name, factory, cfg, summary in heads:
        register(name, factory, role="head", config=cfg, summary=summary, default=True, **HEAD_USES[name])
