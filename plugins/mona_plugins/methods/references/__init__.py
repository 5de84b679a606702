"""Reference methods: what a transfer method must beat to be worth its pretrained body.

``mean``, ``linear`` and ``knn`` are fitted in closed form; ``fno``, ``cnn`` and ``minirocket``
are from-scratch specialists of a task family, and ``specialist`` picks the one that fits the
task. Each brings its own model (``Method.build_model``), reads the same splits and writes the
same run directory as every method; all carry ``reference=True`` in their metadata so tables
can show them in their own block.
"""

from __future__ import annotations


def register_all(register) -> None:
    from .cnn import CnnConfig, CnnMethod
    from .fno import FnoConfig, FnoMethod
    from .knn import Knn
    from .linear import Linear, LinearConfig
    from .mean import Mean
    from .minirocket import MiniRocketConfig, MiniRocketMethod
    from .specialist import Specialist, SpecialistConfig

    ref = {"reference": True, "uses_pretrained_body": False}
    register("mean", lambda: Mean(), summary="reference: predict the training mean (or majority class / label frequencies)", **ref)
    register(
        "linear", Linear, config=LinearConfig,
        summary="reference: ridge (regression, dense) or logistic (classification) regression on the flattened input, strength chosen on val",
        **ref,
    )
    register("knn", lambda: Knn(), summary="reference: 1-nearest neighbour on the flattened input (Euclidean)", **ref)
    register("fno", FnoMethod, config=FnoConfig, summary="reference: small Fourier Neural Operator from scratch (dense 1-D/2-D grids)", **ref)
    register("cnn", CnnMethod, config=CnnConfig, summary="reference: small CNN from scratch (DNA and other sequence classification, 1-D; images, 2-D)", **ref)
    register(
        "minirocket", MiniRocketMethod, config=MiniRocketConfig,
        summary="reference: MiniRocket features + ridge classifier, alpha by leave-one-out (time-series classification)",
        **ref,
    )
    register(
        "specialist", Specialist, config=SpecialistConfig,
        summary="reference: the task family's from-scratch specialist (fno for grids, cnn for DNA-like sequences and images, minirocket for time series)",
        **ref,
    )
