"""Run a method: build the session, run its stages with checkpoints between them, record results.

Resume: each finished stage leaves ``checkpoints/stage-<i>.safetensors`` and an entry in
``checkpoints/progress.json``; ``run --resume RUN_DIR`` reloads the resolved config,
restores the model after the last finished stage and continues with the next one.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .atomic_io import atomic_write_text
from .checkpoint import (
    StageCheckpoint,
    check_fits,
    check_rng_state,
    load_state,
    load_weights,
    rng_state,
    save_state,
    save_weights,
    set_rng_state,
)
from .config import to_dict
from .distributed import barrier, broadcast_object, init_from_env
from .engine import Session
from .errors import (
    INTERRUPTED_RUN,
    CheckpointError,
    ConfigError,
    NumericalError,
)
from .kit import Kit
from .loggers import check_loggers
from .resume_rules import check_resumable, config_hash, record_overrides, resume_config
from .run_checks import (check_direction, check_finite_model, check_model, check_split_samples, check_stages,
                         components_named)
from .run_memory import peak_gpu_memory_mb, peak_memory_mb, reset_peak_gpu_memory
from .run_records import read_progress
from .run_start import start_run
from .runconfig import RunConfig
from .runs import RunDir, RunLock, run_path, safe_name
from .stages import EvaluateStage


def default_run_name(config: RunConfig) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return safe_name(f"{config.method.name}-{config.task.name}-s{config.seed}-{stamp}")


def resolved_config(session: Session) -> dict[str, Any]:
    """The config with every auto name chosen and every option default written out."""
    cfg = session.config
    plain = cfg.to_plain()
    for key, kind in (("task", "datasets"), ("backbone", "backbones"), ("method", "methods"), ("embedder", "embedders"), ("head", "heads")):
        name = session.resolved_name(key) if key in ("embedder", "head") else getattr(cfg, key).name
        entry = session.kit.registry(kind).get(name)
        options = to_dict(entry.make_config(getattr(cfg, key).options)) or {}
        plain[key] = {"name": name, **options}
    if session.method.uses_source:
        name = session.resolved_name("source")
        entry = session.kit.datasets.get(name)
        plain["source"] = {"name": name, **(to_dict(entry.make_config(cfg.source.options)) or {})}
    return plain


def config_fingerprint(resolved: dict[str, Any]) -> str:
    """Short hash of the resolved config that every checkpoint records (a mismatch refuses the load)."""
    return config_hash(resolved)[:16]


def _prepare(session, resume: bool, run_dir: RunDir | None, override_keys: tuple[str, ...] = ()):
    """Everything that can fail on bad input, before the run directory is created or touched."""
    with components_named(session):
        resolved = resolved_config(session)
    if resume:
        check_resumable(run_dir, resolved, session.kit, override_keys)
    check_split_samples(session)
    check_direction(session)
    session.method.check(session)
    with components_named(session):
        model = session.method.build_model(session, pretrained=session.method.pretrained_body)
        stages = list(session.method.stages(session)) + [EvaluateStage()]
    check_stages(session, stages)
    check_model(session, model)
    return resolved, model, stages


def _open_resumed(run_dir: RunDir, main: bool, stack: contextlib.ExitStack) -> None:
    """Become the run's one writer (rank 0) and clear what a kill left half-done."""
    if main:
        run_dir.acquire()
        stack.callback(run_dir.release)
        run_dir.drop_stale_tmp()


def _restore_finished(run_dir: RunDir, model, done: list[str], main: bool, config: RunConfig, fingerprint: str) -> None:
    """Load the weights the last finished stage left, checked name by name and shape by shape."""
    last = run_dir.checkpoints / f"stage-{len(done) - 1}.safetensors"
    state = load_weights(last)
    check_fits(last, state, {k: v.shape for k, v in model.state_dict().items()})
    model.load_state_dict(state, strict=False)
    if main:  # slots of a finished stage that a kill kept from being cleared
        for i in range(len(done)):
            StageCheckpoint(run_dir.checkpoints, i, config.checkpoint_every, fingerprint).clear()


def _cut_metrics(run_dir: RunDir, index: int, after_a_stage: bool, done_bytes: int | None) -> None:
    """metrics.jsonl back to the checkpoint the run resumes from: no step is logged twice."""
    mid = StageCheckpoint(run_dir.checkpoints, index)
    if mid.pointer.is_file():
        run_dir.truncate_metrics(mid.metrics_bytes())
    else:
        run_dir.truncate_metrics(done_bytes if after_a_stage else 0)


def _enter_stage(session, stage, index: int, model, source: str, *, resumed: bool, new_overrides: list[str],
                 resolved: dict[str, Any], done_bytes: int | None) -> None:
    """Everything before a stage's first event: its RNG, a check of the checkpoint it resumes from and
    of the weights it evaluates, then (first stage of a resume) the recorded learning-rate change and
    metrics.jsonl cut back to the checkpoint - in this order, so a refused resume changes nothing."""
    run_dir, main = session.run, session.dist.is_main
    start_file = run_dir.checkpoints / f"stage-{index}-start.pt"
    if start_file.is_file():  # resumed inside this stage: the RNG as it was when the stage began
        start = load_state(start_file)
        check_rng_state(start.get("rng") if isinstance(start, dict) else None, start_file)
        set_rng_state(start["rng"])
    elif main:
        save_state(start_file, {"rng": rng_state()})
    if resumed and not new_overrides:
        session.stage_checkpoint.preload()
    if isinstance(stage, EvaluateStage):
        check_finite_model(model, source)
    if resumed and main:
        if new_overrides:
            record_overrides(run_dir, new_overrides, resolved, stage.name, index)
        _cut_metrics(run_dir, index, index > 0, done_bytes)
    barrier(session.dist)


def run(
    kit: Kit, config: RunConfig, *, overwrite: bool = False, progress: bool = True, resume: Path | None = None,
    overrides: list[str] | tuple[str, ...] = (), on_finish=None, checkpoints: str = "final",
) -> Path:
    """Run ``config`` to completion; returns the run directory.

    Bad input (names, configs, data, components, a foreign checkpoint) fails before the run
    directory is created, so a failed start never leaves a half-made run behind. While it runs,
    rank 0 holds the directory's lock: a second writer is refused. ``overrides`` (resume only)
    change a learning rate after a non-finite stop; anything else is refused. ``on_finish(session, model)``
    is called with the trained model once results.json is written (the Python API keeps the model).
    ``checkpoints`` is what a finished run keeps (:data:`CHECKPOINT_RETENTION`); while it runs, everything
    resume needs is kept.
    """
    if checkpoints not in CHECKPOINT_RETENTION:
        raise ConfigError(f"checkpoints={checkpoints!r}: choose one of {', '.join(CHECKPOINT_RETENTION)}.")
    try:
        with contextlib.ExitStack() as stack:
            return _run(kit, config, overwrite, progress, resume, list(overrides), stack, on_finish, checkpoints)
    except KeyboardInterrupt as exc:  # untagged by _name_the_run: no run was started (or its start undone)
        if not hasattr(exc, INTERRUPTED_RUN):
            setattr(exc, INTERRUPTED_RUN, None)
        raise


#: What a successful run keeps in checkpoints/: ``final`` the evaluated model's weights and progress.json
#: (``run --resume`` of the finished run still works), ``all`` every stage's files, ``none`` nothing.
CHECKPOINT_RETENTION = ("final", "all", "none")


def prune_checkpoints(folder: Path, keep: str) -> None:
    """Drop what only an interrupted run needs (earlier stages' weights, RNG states, mid-stage slots)."""
    if keep == "all" or not folder.is_dir():
        return
    if keep == "none":
        shutil.rmtree(folder, ignore_errors=True)
        return
    progress = json.loads((folder / "progress.json").read_text()) if (folder / "progress.json").is_file() else {}
    final = f"stage-{len(progress.get('done', [])) - 1}.safetensors"
    for path in folder.iterdir():
        if path.name not in (final, "progress.json", "results-partial.json") and path.is_file():
            path.unlink()


def _run(kit: Kit, config: RunConfig, overwrite: bool, progress: bool, resume: Path | None, overrides: list[str],
         stack: contextlib.ExitStack, on_finish=None, checkpoints: str = "final") -> Path:
    info = init_from_env(config.device)
    if resume is not None:
        run_dir = RunDir.open(resume, to_write=True)
        # Rank 0's answer for all ranks: a process that finishes the run meanwhile must not split them.
        if broadcast_object(info, is_finished(run_dir) if info.is_main else None):
            return _report_finished(run_dir, overrides, info.is_main)
        _open_resumed(run_dir, info.is_main, stack)
        stack.push(_name_the_run(run_dir.path))  # interrupted anywhere from here, it is as resumable as before
        # Rank 0 decides (it reads records it is about to change); the other ranks take its answer.
        config, new_overrides, override_keys = broadcast_object(
            info, resume_config(run_dir, config, overrides) if info.is_main else None
        )
    else:
        if overrides:
            raise ConfigError("overrides after the fact apply to run --resume only; pass key=value to the run itself.")
        # Under torchrun every rank must agree on the folder: rank 0's name (its timestamp) wins.
        path = run_path(config.output_dir, broadcast_object(info, config.run_name or default_run_name(config)))
        if info.is_main:  # refused before anything is built, nothing written
            RunDir.check_target(path, overwrite=overwrite)
        run_dir, new_overrides, override_keys = None, [], ()
    session = Session(kit, config, run=None, progress=progress)
    reset_peak_gpu_memory(session.device)
    check_loggers(kit, config.loggers)
    resolved, model, stages = _prepare(session, resume is not None, run_dir, override_keys)
    run_dir = start_run(kit, session, resolved, stack, path=path if resume is None else run_dir.path, overwrite=overwrite,
                        resumed=run_dir)
    session.run = run_dir
    if resume is None:
        stack.push(_name_the_run(run_dir.path))
    fingerprint = config_fingerprint(resolved)
    done, partial, done_bytes, done_elapsed_s = read_progress(run_dir)
    clock = _run_clock(session, len(done), resume is not None, bool(new_overrides), done_elapsed_s)
    if len(done) > len(stages):
        raise CheckpointError(
            f"{str(run_dir.checkpoints / 'progress.json')!r} lists {len(done)} finished stages, the method has "
            f"{len(stages)}; start a new run."
        )
    source = "the model as built"
    if done:
        _restore_finished(run_dir, model, done, session.dist.is_main, config, fingerprint)
        session.results.update(partial)
        source = f"checkpoint {str(run_dir.checkpoints / f'stage-{len(done) - 1}.safetensors')!r}"
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    first = len(done)  # the stage this process starts with (done grows below)
    for i, stage in enumerate(stages):
        if i < first:
            continue
        session.stage_checkpoint = StageCheckpoint(run_dir.checkpoints, i, config.checkpoint_every, fingerprint, info)
        session.stage_checkpoint.expected = shapes
        session.stage_checkpoint.clock = clock
        _enter_stage(session, stage, i, model, source, resumed=resume is not None and i == first,
                     new_overrides=new_overrides, resolved=resolved, done_bytes=done_bytes)
        _run_stage(session, stage, i, model, done, fingerprint, clock)
        source = f"as stage {stage.name!r} left it"
    path = _write_results(session, clock)
    if session.dist.is_main:
        prune_checkpoints(run_dir.checkpoints, checkpoints)
    if on_finish is not None:
        on_finish(session, model)
    return path


def is_finished(run_dir: RunDir) -> bool:
    """results.json is the run's last record (written once every stage is done, atomically): with it the
    run finished, as the sweep also reads it (``mona_kit.sweep.run_cell`` skips such a cell)."""
    return (run_dir.path / "results.json").is_file()


def _report_finished(run_dir: RunDir, overrides: list[str], main: bool) -> Path:
    """``run --resume`` of a finished run: nothing to continue, so nothing is written, locked or re-run
    (a retrained run would replace its metrics, and its record of time and memory, with this process's).
    Rank 0 only checks that no live process holds the run (a probe of the lock, which writes nothing)."""
    results = run_dir.path / "results.json"
    if main:  # a live writer may still be finishing it (pruning checkpoints): refused, as for any run
        RunLock(run_dir.path).probe()
    if overrides:
        raise ConfigError(
            f"run {str(run_dir.path)!r} already finished (results in {str(results)!r}); there is nothing to resume, "
            f"so {' '.join(overrides)} changes nothing - start a new run with the new setting."
        )
    if main:
        print(f"run {str(run_dir.path)!r} already finished; its results are in {str(results)!r} (left unchanged).", flush=True)
    return run_dir.path


def _name_the_run(path: Path) -> Callable[..., bool]:
    """An exit callback: an interrupt from here on leaves a run to resume, so it carries the folder's
    name for the CLI's line (``mona_kit.cli``); one before it carries None (:func:`run`)."""
    def name(exc_type, exc, tb) -> bool:
        if isinstance(exc, KeyboardInterrupt) and not hasattr(exc, INTERRUPTED_RUN):
            setattr(exc, INTERRUPTED_RUN, path)
        return False
    return name


def _run_clock(session, first: int, resumed: bool, restarts_stage: bool, done_elapsed_s: float | None) -> Callable[[], float]:
    """Seconds the run has cost: this process's time plus, on a resume, the time recorded with the
    checkpoint it continues from -- the first unfinished stage's mid-stage slot, or the end of the last
    finished stage when there is none or when a learning-rate override restarts the stage (work done
    after that checkpoint and lost is re-done, and counted, here). Records from before times were kept
    count from 0. Rank 0's reading (it is about to change the records) goes to the other ranks."""
    before = 0.0
    if resumed and session.dist.is_main:
        mid = None if restarts_stage else StageCheckpoint(session.run.checkpoints, first).elapsed_s()
        before = next((s for s in (mid, done_elapsed_s) if s is not None), 0.0)
    before = broadcast_object(session.dist, before)
    started = time.time()
    return lambda: before + time.time() - started


def _run_stage(session, stage, index: int, model, done: list[str], fingerprint: str, clock: Callable[[], float]) -> None:
    """One stage, then (rank 0) everything the next one starts from, progress.json last."""
    run_dir, config = session.run, session.config
    session.log(stage=stage.name, event="stage-start", index=index, trains_task=bool(getattr(stage, "trains_task", False)))
    t0 = time.time()
    try:
        stage.run(session, model)
    except NumericalError:  # recorded so that resume may accept a lowered learning rate
        session.log(stage=stage.name, event="stopped-nonfinite", index=index)
        raise
    session.stage_checkpoint = None
    session.log(stage=stage.name, event="stage-end", index=index, seconds=time.time() - t0)
    done.append(stage.name)
    if session.dist.is_main:
        # Everything the next stage starts from (weights, results, its RNG) is on disk before
        # progress.json says this stage is done: a kill between two writes resumes exactly.
        ckpt = run_dir.checkpoints
        save_weights(ckpt / f"stage-{index}.safetensors", model.state_dict())
        atomic_write_text(ckpt / "results-partial.json", json.dumps(session.results))
        save_state(ckpt / f"stage-{index + 1}-start.pt", {"rng": rng_state()})
        atomic_write_text(ckpt / "progress.json", json.dumps(
            {"done": done, "metrics_bytes": run_dir.metrics_bytes(), "elapsed_s": round(clock(), 3)}
        ))
        StageCheckpoint(ckpt, index, config.checkpoint_every, fingerprint).clear()
    barrier(session.dist)


def _write_results(session, clock: Callable[[], float]) -> Path:
    results = {
        "method": session.method_entry.name,
        "task": session.spec.name,
        "metric": session.spec.metric,
        "higher_is_better": session.metric.higher_is_better,
        "components": session.component_names(),
        "seed": session.config.seed,
        **session.results,
        "wall_time_s": clock(),  # resumed attempts included (see _run_clock)
        "peak_memory_mb": peak_memory_mb(),
    }
    gpu_mb = peak_gpu_memory_mb(session.device)
    if gpu_mb is not None:
        results["peak_gpu_memory_mb"] = gpu_mb
    if session.dist.is_main:
        session.run.write_json("results.json", results)
    barrier(session.dist)
    return session.run.path
