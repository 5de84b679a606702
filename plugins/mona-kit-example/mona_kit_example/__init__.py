"""mona-kit-example: a third-party plugin that adds an audio-like modality to mona-kit.

It registers one dataset (``chirp-direction``: is a noisy 1-D signal an up-chirp, a
down-chirp or a constant tone?) and one embedder (``stft-patch``: STFT magnitude ->
patches of the time-frequency image -> tokens of the body's width).

Importing this module must stay cheap: mona-kit imports every installed plugin on each
command. So only the hook implementations and the (plain attrs) config classes live
here; torch code is imported inside the factories.
"""

from __future__ import annotations

from mona_kit.api import hookimpl

from .configs import ChirpDirectionConfig, StftPatchConfig

__version__ = "0.1.0"


def make_chirp_direction(config: ChirpDirectionConfig):
    """Dataset factory: ``factory(config) -> TaskData``."""
    from .chirps import chirp_direction_task

    return chirp_direction_task(config)


def make_stft_patch(config: StftPatchConfig, *, task, body):
    """Embedder factory: ``factory(config, *, task, body) -> Embedder``."""
    from .stft_patch import StftPatchEmbedder

    return StftPatchEmbedder(config, task=task, body=body)


@hookimpl
def register_datasets(register):
    register(
        "chirp-direction",
        make_chirp_direction,
        config=ChirpDirectionConfig,
        summary="synthetic audio: noisy up-chirps vs down-chirps vs constant tones (3 classes, generated from a seed)",
        modality="audio",
        license="Apache-2.0 (generated)",
        offline=True,  # generated from a seed: `mona-kit data list` shows it as offline, not "needs root"
    )


@hookimpl
def register_embedders(register):
    # Not default=True: for (C, L) inputs on a transformer the first-party 1-D embedder stays the
    # automatic choice; users opt in with `embedder=stft-patch`.
    register(
        "stft-patch",
        make_stft_patch,
        config=StftPatchConfig,
        summary="STFT magnitude of a (C, L) signal, cut into time-frequency patches -> tokens, LayerNorm",
        input_ranks=(2,),
        body_families=("transformer",),
    )
