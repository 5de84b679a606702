"""PNG plots of run directories: learning curves and knowledge-reuse curves, one line per run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .errors import MonaError
from .report_plots import log_if_wide
from .runs import RunDir
from .summary import as_number, read_results


def _label(path: Path, results: dict) -> str:
    return f"{results.get('method', '?')} (seed {results.get('seed', '?')})" if results else Path(path).name


def _series(events, *, key: str, stage: str | None = None, event: str | None = None, split: str | None = None):
    xs, ys = [], []
    for e in events:
        if key not in e or "step" not in e:
            continue
        if stage is not None and e.get("stage") != stage:
            continue
        if event is not None and e.get("event") != event:
            continue
        if split is not None and e.get("split") != split:
            continue
        xs.append(e["step"])
        ys.append(e[key])
    return xs, ys


def final_stage(events) -> str | None:
    """The last stage that trained on the target task, from the stages' own metadata (``trains_task`` in
    their stage-start events); runs recorded before that field: the last stage that validated mid-training."""
    flagged = [e["stage"] for e in events if e.get("event") == "stage-start" and e.get("trains_task")]
    if flagged:
        return flagged[-1]
    validated = [e["stage"] for e in events if e.get("split") == "val" and "step" in e and "stage" in e]
    return validated[-1] if validated else None


def plot_prefix(paths: Sequence[Path]) -> str:
    """File-name prefix naming the runs drawn, so plots of other runs in the same folder are never overwritten."""
    first = Path(paths[0]).resolve().name
    return first if len(paths) == 1 else f"{first}-and-{len(paths) - 1}-more"


def plot_runs(paths: Sequence[Path], out_dir: Path) -> list[Path]:
    """Draw ``<runs>-learning-curves.png`` and ``<runs>-knowledge-reuse.png`` (``<runs>``: :func:`plot_prefix`);
    returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    # Each run's events and results.json (read once: labels and the validation metric come from it),
    # before the folder is made, so a damaged run leaves no empty plot folder behind.
    runs = [(Path(p), RunDir(Path(p)).events(), read_results(Path(p))) for p in paths]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MonaError(f"cannot create plot folder {str(out_dir)!r}: {exc.strerror}; choose a writable --out.") from exc
    labels = {path: _label(path, results) for path, _, results in runs}
    prefix = plot_prefix(paths)
    written = []

    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
    drawn: list[float] = []
    for path, events, results in runs:
        stage = final_stage(events)
        xs, ys = _series([e for e in events if "split" not in e], key="loss", stage=stage)
        if xs:  # a reference method (ridge, 1-NN) takes no steps: no loss curve, no empty legend entry
            ax_loss.plot(xs, ys, label=labels[path], alpha=0.8)
        metric = results.get("metric")
        if metric:
            xs, ys = _series(events, key=metric, stage=stage, split="val")
            fitted = as_number((results.get("val") or {}).get(metric))
            if xs:
                ax_val.plot(xs, ys, marker="o", label=labels[path])
                drawn += [as_number(y) for y in ys]
            elif fitted is not None and results.get("reference"):  # a reference's one value: the line to get under
                ax_val.axhline(fitted, color="black", linestyle="--", linewidth=1.2, label=f"{labels[path]}, fitted")
                drawn.append(fitted)
            ax_val.set_ylabel(f"validation {metric}")
    log_if_wide(ax_val, drawn)  # a PDE run's error falls by decades; a linear axis shows only the first drop
    ax_loss.set(title="training loss (final stage)", xlabel="step", ylabel="loss")
    ax_loss.set_yscale("log")
    ax_val.set(title="validation metric (model selection)", xlabel="step")
    written.append(_save(fig, (ax_loss, ax_val), out_dir / f"{prefix}-learning-curves.png"))

    reuse = [(p, [e for e in ev if e.get("event") == "knowledge-reuse"]) for p, ev, _ in runs]
    if any(r for _, r in reuse):
        with_cka = any("cka_to_pretrained" in e for _, r in reuse for e in r)
        fig, axes = plt.subplots(1, 3 if with_cka else 2, figsize=(16.5 if with_cka else 11, 4))
        for path, events in reuse:
            if not events:
                continue
            stage = events[-1]["stage"]
            for ax, key in zip(axes, ("davies_bouldin", "probe_accuracy", "cka_to_pretrained")):
                xs, ys = _series(events, key=key, stage=stage)
                if xs:
                    ax.plot(xs, ys, marker=".", label=labels[path])
        axes[0].set(title="source classes: Davies–Bouldin (lower = kept)", xlabel="fine-tuning step", ylabel="DB index")
        axes[1].set(title="source linear-probe accuracy (higher = kept)", xlabel="fine-tuning step", ylabel="accuracy")
        if with_cka:
            axes[2].set(title="linear CKA to the pretrained body (1 = kept)", xlabel="fine-tuning step", ylabel="CKA")
        written.append(_save(fig, tuple(axes), out_dir / f"{prefix}-knowledge-reuse.png"))
    return written


def check_out_dir(out_dir: Path) -> None:
    """The plot folder (or the first part of its path that exists) must be a folder, not a file."""
    for folder in (Path(out_dir), *Path(out_dir).parents):
        if folder.exists():
            if not folder.is_dir():
                raise MonaError(f"plot folder {str(out_dir)!r}: {str(folder)!r} is a file, not a folder; choose another --out.")
            return


def _save(fig, axes, path: Path) -> Path:
    """Legends, light grids, tight layout; write the PNG (one line on a write failure) and free the figure."""
    from .report import save_figure

    for ax in axes:
        if ax.get_legend_handles_labels()[0]:  # a panel of reference runs only has no labelled curve
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path)
