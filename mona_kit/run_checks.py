"""What a run checks before its folder is touched: the dataset against its spec, the metric's direction,
one forward pass of the assembled model, and plugin errors while building turned into one line naming
the components. Weights holding NaN/Inf are refused before evaluation."""

from __future__ import annotations

import contextlib
import re

import torch

from .errors import DataError, MonaError, NumericalError, PluginError, ShapeError


def check_direction(session) -> None:
    """The metric's ``higher_is_better`` decides selection; a spec that says otherwise is refused."""
    spec, higher = session.spec, bool(session.metric.higher_is_better)
    if bool(spec.higher_is_better) != higher:
        raise DataError(
            f"dataset {spec.name!r} declares higher_is_better={spec.higher_is_better}, but its metric {spec.metric!r} "
            f"is {'higher' if higher else 'lower'}-is-better; fix the spec to match the metric."
        )


def check_distinct_splits(session) -> None:
    """train, val and test must be three datasets: a val that is train selects on fitted data, a test
    that is val reports the selection split."""
    task = session.task
    splits = {"train": task.train, "val": task.val, "test": task.test}  # extra splits may share (e.g. a probe set)
    names = list(splits)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if splits[a] is splits[b]:
                entry = session.task_entry
                raise DataError(
                    f"dataset {entry.name!r} ({entry.provider}) gives the same object as its {a} and {b} splits; "
                    f"return three distinct datasets (carve val out of train, never reuse test)."
                )


def check_stages(session, stages: list) -> None:
    """A method's ``stages()`` must yield Stage objects (a string or a dict would fail inside the runner)."""
    from .stages import Stage

    bad = next((s for s in stages if not isinstance(s, Stage)), None)
    if bad is not None:
        entry = session.method_entry
        raise PluginError(
            f"method {entry.name!r} ({entry.provider}): stages() yielded {type(bad).__name__} {bad!r:.40}, not a "
            f"mona_kit.api Stage; fix the plugin's stages()."
        )


def check_split_samples(session) -> None:
    """The dataset contract (``mona_kit.testing``) on a few samples of every split, plus every label of a
    classification split held as a tensor: bad data is a one-line error before anything trains."""
    from .testing.data import _check_sample

    check_distinct_splits(session)
    spec = session.spec
    for split, ds in session.task.splits().items():
        n = len(ds)
        if n < 1:
            raise DataError(f"dataset {spec.name!r}: split {split!r} is empty; check the dataset's files and size caps.")
        try:
            for i in sorted({0, n // 2, n - 1}):
                _check_sample(spec, split, i, ds[i], exact=split in ("train", "val", "test"))
        except AssertionError as exc:
            raise DataError(f"{exc}; fix the dataset (or its plugin) to match its spec.") from exc
        labels = getattr(ds, "tensors", {}).get("y") if spec.task_type == "classification" else None
        if torch.is_tensor(labels) and len(labels) and not (labels.min() >= 0 and labels.max() < spec.output_shape[0]):
            bad = labels[(labels < 0) | (labels >= spec.output_shape[0])][0]
            raise DataError(
                f"dataset {spec.name!r}: split {split!r} holds label {int(bad)} outside 0..{spec.output_shape[0] - 1}; "
                f"fix the labels or the spec's output_shape."
            )


def check_model(session, model) -> None:
    """One forward pass of two training samples: an embedder, body and head that do not fit together
    (or a plugin returning the wrong thing) fail here with the components named, not mid-stage."""
    from .components import Backbone, Embedder, Head
    from .model import CrossModalModel

    names = session.component_names()
    assembled = isinstance(model, CrossModalModel)  # else a method's own model (a reference): shapes only
    for part, kind in (("embedder", Embedder), ("body", Backbone), ("head", Head)) if assembled else ():
        if not isinstance(getattr(model, part), kind):
            which = names["backbone" if part == "body" else part]
            raise PluginError(
                f"{part} {which!r} was built as {type(getattr(model, part)).__name__}, not a mona_kit {kind.__name__}; fix its plugin."
            )
    spec = session.spec
    train = session.task.train
    batch = session.to_device(torch.utils.data.default_collate([train[i] for i in range(min(2, len(train)))]))
    if "x" not in batch:
        return
    where = (
        f"embedder {names['embedder']!r} -> body {names['backbone']!r} -> head {names['head']!r}"
        if assembled else f"the model of method {names['method']!r}"
    )
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:  # eval mode and a forked RNG: the check leaves no trace in the run's random stream
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            out = model(batch["x"])
            session.task_loss(out, batch["y"])
    except MonaError:
        raise
    except Exception as exc:
        raise ShapeError(
            f"{where} fails on a batch of task {spec.name!r} ({type(exc).__name__}: {exc}); choose components "
            f"that fit the task's input {tuple(spec.input_shape)} and output {tuple(spec.output_shape)}."
        ) from exc
    finally:
        for m, mode in modes.items():
            m.training = mode
    expected = (len(batch["x"]), *spec.output_shape)
    if tuple(out.shape) != expected:
        raise ShapeError(
            f"{where} gives outputs {list(out.shape)} for task {spec.name!r}, which needs {list(expected)}; "
            f"choose a head for a {spec.task_type} task (see 'mona-kit list heads')."
        )


@contextlib.contextmanager
def components_named(session):
    """A plugin that raises while building (a bug, or a weights file it cannot read) becomes one line
    naming the components involved; ``--debug`` still shows the original traceback."""
    try:
        yield
    except MonaError:
        raise
    except Exception as exc:
        cfg = session.config
        names = ", ".join(f"{k} {getattr(cfg, k).name!r}" for k in ("task", "backbone", "embedder", "head", "method"))
        first = re.sub(r"\x1b\[[0-9;]*m", "", (str(exc).strip().splitlines() or [""])[0]).strip().rstrip(".")  # no colour codes
        raise PluginError(
            f"building the components ({names}) raised {type(exc).__name__}: {first}; check the component's files "
            f"and options, or fix its plugin."
        ) from exc


def check_finite_model(model: torch.nn.Module, source: str) -> None:
    """Refuse to evaluate weights holding NaN/Inf: the metrics would be meaningless numbers."""
    bad = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        total = sum(1 for _ in model.parameters())
        raise NumericalError(
            f"the model to evaluate ({source}) holds NaN or Inf in {len(bad)} of {total} parameter tensors "
            f"(first: {bad[0]!r}); its metrics would be meaningless - start a new run with a lower train.lr "
            f"(or train.grad_clip)."
        )
