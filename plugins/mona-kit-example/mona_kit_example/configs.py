"""Config classes of the example plugin: plain, frozen data (no torch), so the plugin imports fast."""

from __future__ import annotations

from mona_kit.api import config, option


@config
class ChirpDirectionConfig:
    """Size and difficulty of the generated chirp-direction task."""

    n_train: int = option(600, help="training signals")
    n_val: int = option(150, help="validation signals (model selection)")
    n_test: int = option(150, help="test signals (final report only)")
    length: int = option(256, help="samples per signal")
    channels: int = option(1, help="channels per signal (each a noisy copy of the same sweep)")
    noise: float = option(0.5, help="standard deviation of the added Gaussian noise (signal amplitude is 0.5-1.5)")
    seed: int = option(0, help="data seed: the same seed always gives the same signals, whatever the run seed")


@config
class StftPatchConfig:
    """How a signal becomes a time-frequency image, and how that image becomes tokens."""

    n_fft: int = option(32, help="STFT window length (frequency bins = n_fft // 2 + 1)")
    hop: int | None = option(None, help="STFT hop in samples (None = n_fft // 4)")
    patch: int = option(4, help="patch side in bins x frames; grown along the longer axis until the tokens fit the body")
    log_magnitude: bool = option(True, help="use log(1 + |STFT|) rather than |STFT|")
