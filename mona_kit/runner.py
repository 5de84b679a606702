"""Run a method: build the session, run its stages with checkpoints between them, record results.

Resume: each finished stage leaves ``checkpoints/stage-<i>.safetensors`` and an entry in
``checkpoints/progress.json``; ``run --resume RUN_DIR`` reloads the resolved config,
restores the model after the last finished stage and continues with the next one.
"""

from __future__ import annotations

import contextlib
import json
import re
import resource
import time
from pathlib import Path
from typing import Any

import torch

from .checkpoint import StageCheckpoint, load_state, load_weights, rng_state, save_state, save_weights, set_rng_state
from .config import to_dict
from .distributed import barrier, broadcast_object, init_from_env
from .engine import Session
from .errors import CheckpointError, DataError, MonaError, PluginError, ShapeError
from .kit import Kit
from .runconfig import RunConfig
from .runs import RunDir, atomic_write_text, environment_record
from .stages import EvaluateStage


def default_run_name(config: RunConfig) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{config.method.name}-{config.task.name}-s{config.seed}-{stamp}"


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
    import hashlib

    return hashlib.sha256(json.dumps(resolved, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _diff(a: Any, b: Any, path: str = "") -> str | None:
    """The first field where two plain configs differ, as 'path: a != b'."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = _diff(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    return None if a == b else f"{path}: {a!r} (checkpoint) != {b!r} (now)"


def check_resumable(run_dir: RunDir, resolved: dict[str, Any], kit: Kit) -> None:
    """Refuse to resume with other component versions or a config that resolves differently."""
    saved_env = run_dir.read_json("env.json") or {}
    for name, info in (saved_env.get("plugins") or {}).items():
        now = kit.plugins.get(name)
        if now is None or now.version != info.get("version"):
            have = now.version if now else "not loaded"
            raise CheckpointError(
                f"run {str(run_dir.path)!r} was made with plugin {name} {info.get('version')}, now {have}; "
                f"install that version to resume, or start a new run."
            )
    diff = _diff(run_dir.read_config(), resolved)
    if diff:
        raise CheckpointError(
            f"run {str(run_dir.path)!r} cannot resume: its config resolves differently now ({diff}); "
            f"components changed their defaults - start a new run."
        )


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _check_split_samples(session) -> None:
    """The dataset contract (``mona_kit.testing``) on a few samples of every split, plus every label of a
    classification split held as a tensor: bad data is a one-line error before anything trains."""
    from .testing.data import _check_sample

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


def _check_model(session, model) -> None:
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
def _components_named(session):
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


def _prepare(session, resume: bool, run_dir: RunDir | None):
    """Everything that can fail on bad input, before the run directory is created or touched."""
    with _components_named(session):
        resolved = resolved_config(session)
    if resume:
        check_resumable(run_dir, resolved, session.kit)
    _check_split_samples(session)
    session.method.check(session)
    with _components_named(session):
        model = session.method.build_model(session, pretrained=session.method.pretrained_body)
        stages = list(session.method.stages(session)) + [EvaluateStage()]
    _check_model(session, model)
    return resolved, model, stages


def _read_progress(run_dir: RunDir) -> tuple[list[str], dict[str, Any]]:
    from .runs import read_json_record

    progress = read_json_record(run_dir.checkpoints / "progress.json") or {"done": []}
    done = progress.get("done")
    if not isinstance(done, list):
        raise CheckpointError(f"{str(run_dir.checkpoints / 'progress.json')!r} is damaged; restore it or start a new run.")
    return done, read_json_record(run_dir.checkpoints / "results-partial.json") or {}


def run(kit: Kit, config: RunConfig, *, overwrite: bool = False, progress: bool = True, resume: Path | None = None) -> Path:
    """Run ``config`` to completion; returns the run directory.

    Bad input (names, configs, data, components, a foreign checkpoint) fails before the run
    directory is created, so a failed start never leaves a half-made run behind.
    """
    info = init_from_env(config.device)
    if resume is not None:
        run_dir = RunDir.open(resume)
        if info.is_main:  # a kill -9 mid-write leaves a temporary file that no rename will ever claim
            for stale in list(run_dir.path.glob(".*.tmp")) + list(run_dir.checkpoints.glob(".*.tmp")):
                stale.unlink(missing_ok=True)
    else:
        # Under torchrun every rank must agree on the folder: rank 0's name (its timestamp) wins.
        run_dir = RunDir(Path(config.output_dir) / broadcast_object(info, config.run_name or default_run_name(config)))
        if run_dir.path.exists() and not overwrite:
            RunDir.create(run_dir.path, overwrite=False)  # refuses an existing run with the one-line error
    session = Session(kit, config, run=None, progress=progress)
    main = session.dist.is_main
    resolved, model, stages = _prepare(session, resume is not None, run_dir)
    if resume is None:
        if main:
            RunDir.create(run_dir.path, overwrite=overwrite)
            run_dir.write_config(resolved)
            run_dir.write_json("env.json", environment_record(kit, config.seed, str(session.device)) | {"world_size": info.world_size})
        barrier(info)
    session.run = run_dir
    fingerprint = config_fingerprint(resolved)
    started = time.time()
    progress_file = run_dir.checkpoints / "progress.json"
    done, partial = _read_progress(run_dir)
    if len(done) > len(stages):
        raise CheckpointError(f"{str(progress_file)!r} lists {len(done)} finished stages, the method has {len(stages)}; start a new run.")
    if done:
        last = run_dir.checkpoints / f"stage-{len(done) - 1}.safetensors"
        state = load_weights(last)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise CheckpointError(
                f"checkpoint {str(last)!r} does not fit this config's model (missing {list(missing)[:3]}, "
                f"unexpected {list(unexpected)[:3]}); resume with the config the run was started with."
            )
        session.results.update(partial)
        if main:  # slots of a finished stage that a kill kept from being cleared
            for i in range(len(done)):
                StageCheckpoint(run_dir.checkpoints, i, config.checkpoint_every, fingerprint).clear()
    for i, stage in enumerate(stages):
        if i < len(done):
            continue
        start_file = run_dir.checkpoints / f"stage-{i}-start.pt"
        if start_file.is_file():  # resumed inside this stage: the RNG as it was when the stage began
            set_rng_state(load_state(start_file)["rng"])
        elif main:
            save_state(start_file, {"rng": rng_state()})
        barrier(info)
        session.stage_checkpoint = StageCheckpoint(run_dir.checkpoints, i, config.checkpoint_every, fingerprint, info)
        session.log(stage=stage.name, event="stage-start", index=i)
        t0 = time.time()
        stage.run(session, model)
        session.stage_checkpoint = None
        session.log(stage=stage.name, event="stage-end", index=i, seconds=time.time() - t0)
        done.append(stage.name)
        if main:
            # Everything the next stage starts from (weights, results, its RNG) is on disk before
            # progress.json says this stage is done: a kill between two writes resumes exactly.
            save_weights(run_dir.checkpoints / f"stage-{i}.safetensors", model.state_dict())
            atomic_write_text(run_dir.checkpoints / "results-partial.json", json.dumps(session.results))
            save_state(run_dir.checkpoints / f"stage-{i + 1}-start.pt", {"rng": rng_state()})
            atomic_write_text(progress_file, json.dumps({"done": done}))
            StageCheckpoint(run_dir.checkpoints, i, config.checkpoint_every, fingerprint).clear()
        barrier(info)
    results = {
        "method": session.method_entry.name,
        "task": session.spec.name,
        "metric": session.spec.metric,
        "higher_is_better": session.spec.higher_is_better,
        "components": session.component_names(),
        "seed": config.seed,
        **session.results,
        "wall_time_s": time.time() - started,
        "peak_memory_mb": peak_memory_mb(),
    }
    if main:
        run_dir.write_json("results.json", results)
    barrier(info)
    return run_dir.path
