"""Run a method: build the session, run its stages with checkpoints between them, record results.

Resume: each finished stage leaves ``checkpoints/stage-<i>.safetensors`` and an entry in
``checkpoints/progress.json``; ``run --resume RUN_DIR`` reloads the resolved config,
restores the model after the last finished stage and continues with the next one.
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import Any

import attrs

from .checkpoint import StageCheckpoint, load_state, load_weights, rng_state, save_state, save_weights, set_rng_state
from .config import to_dict
from .distributed import barrier, broadcast_object, init_from_env
from .engine import Session
from .errors import CheckpointError
from .kit import Kit
from .runconfig import ComponentRef, RunConfig
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


def run(kit: Kit, config: RunConfig, *, overwrite: bool = False, progress: bool = True, resume: Path | None = None) -> Path:
    """Run ``config`` to completion; returns the run directory."""
    info = init_from_env(config.device)
    if resume is not None:
        run_dir = RunDir.open(resume)
    else:
        # Under torchrun every rank must agree on the folder: rank 0's name (its timestamp) wins.
        path = Path(config.output_dir) / broadcast_object(info, config.run_name or default_run_name(config))
        if info.is_main:
            RunDir.create(path, overwrite=overwrite)
        barrier(info)
        run_dir = RunDir(path)
    session = Session(kit, config, run=run_dir, progress=progress)
    main = session.dist.is_main
    resolved = resolved_config(session)
    if resume is None and main:
        run_dir.write_config(resolved)
        run_dir.write_json("env.json", environment_record(kit, config.seed, str(session.device)) | {"world_size": info.world_size})
    elif resume is not None:
        check_resumable(run_dir, resolved, kit)
    fingerprint = config_fingerprint(resolved)
    started = time.time()
    model = session.build_model(pretrained=session.method.pretrained_body)
    stages = list(session.method.stages(session)) + [EvaluateStage()]
    progress_file = run_dir.checkpoints / "progress.json"
    done = json.loads(progress_file.read_text())["done"] if progress_file.is_file() else []
    if done:
        last = run_dir.checkpoints / f"stage-{len(done) - 1}.safetensors"
        state = load_weights(last)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise CheckpointError(
                f"checkpoint {str(last)!r} does not fit this config's model (missing {list(missing)[:3]}, "
                f"unexpected {list(unexpected)[:3]}); resume with the config the run was started with."
            )
        session.results.update(json.loads((run_dir.checkpoints / "results-partial.json").read_text()) if (run_dir.checkpoints / "results-partial.json").is_file() else {})
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
            save_weights(run_dir.checkpoints / f"stage-{i}.safetensors", model.state_dict())
            atomic_write_text(run_dir.checkpoints / "results-partial.json", json.dumps(session.results))
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
