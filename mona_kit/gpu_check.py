"""One-command GPU check: ``python -m mona_kit.gpu_check`` (a few minutes on one GPU).

It runs every registered method for a few steps with ``device=cuda`` in bf16 and fp16 (on the first
of ``--tasks`` it accepts, or with ``--each-task`` on every one), the
performance benchmarks (``benchmarks/``) on the GPU, and a 2-process NCCL ``torchrun`` of
fine-tuning and MoNA when two GPUs are visible; then writes one JSON summary
(``gpu_check.json`` unless ``--out``). Without CUDA it stops with one line (exit 2).
``--dry`` prints the plan without running anything; ``--device cpu`` runs the method checks on
the CPU (fp16 is skipped there: it needs a GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

#: Tried in this order: the first task a method accepts (specialists refuse the other family).
DEFAULT_TASKS = ("darcy-16", "gunpoint")
#: Small splits: the check is about running on the device (the caps are options every dataset takes).
TASK_CAPS = {"max_train": 32, "max_val": 16, "max_test": 16}


def task_entries(names: Sequence[str]) -> list[dict[str, Any]]:
    return [{"name": name, **TASK_CAPS} for name in names]


TASKS: tuple[dict[str, Any], ...] = tuple(task_entries(DEFAULT_TASKS))
#: Few steps of every stage: the check is about running on the device, not about accuracy.
FAST_OPTIONS: dict[str, dict[str, Any]] = {
    "orca": {"align_epochs": 2, "max_source": 64, "target_samples": 32},
    "mona": {"meta_steps": 3},
    "mona-grad-align": {"meta_steps": 3},
    "recraft": {"head_epochs": 2, "penalty_start_epoch": 1, "head_batch_size": 16, "max_source": 32, "align_epochs": 2,
                "target_samples": 32, "label_epochs": 1, "label_max_samples": 8},
}
#: fp16 starts each stage's loss scaler at 2**16 and skips (halving it) every step that overflows, so
#: under fp16 every stage, not only fine-tuning, gets about 16 steps (see MAX_STEPS).
FP16_OPTIONS: dict[str, dict[str, Any]] = {
    "orca": {"align_epochs": 16},
    "mona": {"warmup_epochs": 8, "meta_steps": 16},
    "mona-grad-align": {"warmup_epochs": 8, "meta_steps": 16},
    "recraft": {"head_epochs": 8, "align_epochs": 16, "label_epochs": 4},
}
BENCHMARKS = ("bench_step.py", "bench_methods.py")


@attrs.frozen
class Check:
    """One planned check: ``kind`` is method, benchmarks or torchrun."""

    kind: str
    name: str
    precision: str = "fp32"
    skip: str | None = None  # why it will not run here


def plan_checks(methods: Sequence[str], *, device: str, gpu_count: int,
                precisions: Sequence[str] = ("bf16", "fp16"), benchmarks: bool = True) -> list[Check]:
    """What the check runs on ``device`` with ``gpu_count`` visible GPUs, in order."""
    checks = []
    for method in methods:
        for precision in precisions:
            skip = "fp16 needs a GPU" if precision == "fp16" and not device.startswith("cuda") else None
            checks.append(Check("method", method, precision, skip))
    if benchmarks:
        checks.append(Check("benchmarks", "benchmarks/", skip=None if device.startswith("cuda") else "GPU benchmarks need a GPU"))
    for method in ("finetune", "mona"):
        skip = None if gpu_count >= 2 and device.startswith("cuda") else f"needs 2 GPUs, {gpu_count} visible"
        checks.append(Check("torchrun", method, "bf16", skip))
    return checks


#: fp16's loss scaler starts at 2**16 and skips (halving it) every step whose gradients overflow: a
#: few steps can all be skipped (both of the two each fine-tuning stage took on an H200 with random
#: weights), so fp16 gets more. A fine-tuning stage takes this many steps: one epoch of the capped split is two.
MAX_STEPS = {"fp16": 16}


def method_config(method: str, task: dict[str, Any], *, device: str, precision: str, backbone: str, out: str):
    from .runconfig import RunConfig

    steps = MAX_STEPS.get(precision, 4)  # as many epochs, so the cap and not the capped split ends the run
    return RunConfig.from_dict({
        "task": task, "backbone": backbone,
        "method": {"name": method, **FAST_OPTIONS.get(method, {}), **(FP16_OPTIONS.get(method, {}) if precision == "fp16" else {})},
        "train": {"epochs": steps, "max_steps": steps, "batch_size": 16, "precision": precision},
        "device": device, "output_dir": out, "run_name": f"{method}-{task['name']}-{precision}",
    })


def run_method(kit, check: Check, *, device: str, backbone: str, out: str,
               tasks: Sequence[dict[str, Any]] = TASKS, each_task: bool = False) -> dict[str, Any]:
    """Run one method on the first of ``tasks`` it accepts (``each_task``: on every one it accepts);
    record the test metric or the error's first line."""
    from .errors import ConfigError
    from .runner import run

    refusals: list[dict[str, str]] = []
    runs: list[dict[str, Any]] = []
    for task in tasks:
        cfg = method_config(check.name, task, device=device, precision=check.precision, backbone=backbone, out=out)
        try:
            run_dir = Path(run(kit, cfg, progress=False))
        except ConfigError as exc:  # a specialist of the other task family refuses before training
            refusals.append({"task": task["name"], "reason": str(exc)})
            continue
        except Exception as exc:  # with each_task, the other tasks still run and this one is named
            if not each_task:
                raise
            runs.append({"task": task["name"], "ok": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]})
            continue
        results = json.loads((run_dir / "results.json").read_text())
        metric = results["metric"]
        record = {"task": task["name"], "metric": metric, "test": results["test"][metric], "ok": True,
                  **training_steps(run_dir)}
        if "peak_gpu_memory_mb" in results:
            record["peak_gpu_memory_mb"] = round(results["peak_gpu_memory_mb"], 1)
        warning = untrained(record)
        if warning:
            record["warning"] = warning
        runs.append(record)
        if not each_task:
            return record
    if not runs:
        return {"ok": False, "error": "; ".join(f"{r['task']}: {r['reason']}" for r in refusals)}
    summary: dict[str, Any] = {"ok": all(r["ok"] for r in runs), "task": ",".join(r["task"] for r in runs), "runs": runs,
                               "refused": refusals}
    failed = [f"{r['task']}: {r['error']}" for r in runs if not r["ok"]]
    if failed:
        summary["error"] = "; ".join(failed)
    warnings = [f"{r['task']}: {r['warning']}" for r in runs if r.get("warning")]
    if warnings:
        summary["warning"] = "; ".join(warnings)
    return summary


#: Events the training loop logs for a step whose update it did not apply.
SKIP_EVENTS = ("skipped-fp16-overflow", "skipped-nonfinite-loss", "skipped-nonfinite-gradient")


def training_steps(run_dir: Path) -> dict[str, Any]:
    """The optimiser steps a run logged, in all and per stage, and how many were skipped (fp16 overflow,
    non-finite loss or gradient). A step's own line has a step and an epoch; a validation pass's also
    has a split. Stages count apart: each has its own loss scaler, and one can skip every step while
    another trains."""
    stages: dict[str, dict[str, int]] = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        is_skip = rec.get("event") in SKIP_EVENTS
        is_step = "event" not in rec and "split" not in rec and "step" in rec and "epoch" in rec
        if is_skip or is_step:
            counts = stages.setdefault(str(rec.get("stage")), {"steps": 0, "skipped": 0})
            counts["skipped" if is_skip else "steps"] += 1
    return {"steps": sum(c["steps"] for c in stages.values()), "skipped_steps": sum(c["skipped"] for c in stages.values()),
            "stages": stages}


def untrained(record: dict[str, Any]) -> str | None:
    """Which training stages of a run skipped every optimiser step (so changed nothing), or None;
    a reference takes no steps and is never flagged."""
    idle = [f"{name} ({c['steps']} of {c['steps']})" for name, c in record.get("stages", {}).items()
            if c["steps"] and c["steps"] == c["skipped"]]
    if not idle:
        return None
    return (f"every optimiser step skipped (fp16 overflow or a non-finite loss or gradient) in stage {', '.join(idle)}: "
            "that stage trained nothing")


def run_benchmarks(root: Path, out: Path) -> dict[str, Any]:
    """The performance benchmarks with ``MONA_KIT_BENCH_DEVICE=cuda``; their JSON lands beside the summary."""
    files = [str(root / "benchmarks" / f) for f in BENCHMARKS if (root / "benchmarks" / f).is_file()]
    if not files:
        return {"ok": False, "error": f"no benchmarks/ under {root} (run from a source checkout)"}
    target = out.with_suffix(".benchmarks.json")
    cmd = [sys.executable, "-m", "pytest", *files, "--benchmark-only", "-p", "no:cacheprovider", "-q",
           f"--benchmark-json={target}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root, env={**os.environ, "MONA_KIT_BENCH_DEVICE": "cuda"})
    info: dict[str, Any] = {"ok": proc.returncode == 0, "json": str(target)}
    if target.is_file():
        data = json.loads(target.read_text())
        info["results"] = {b["name"]: b.get("extra_info", {}) for b in data.get("benchmarks", [])}
    if proc.returncode != 0:
        info["error"] = (proc.stdout + proc.stderr).strip().splitlines()[-1:]
    return info


def run_torchrun(check: Check, *, backbone: str, out: str, task: dict[str, Any] = TASKS[0]) -> dict[str, Any]:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        return {"ok": False, "error": "torchrun not found next to this Python"}
    cfg = method_config(check.name, task, device="cuda", precision=check.precision, backbone=backbone, out=out)
    path = Path(out) / f"torchrun-{check.name}.yaml"
    path.write_text(json.dumps({**cfg.to_plain(), "run_name": f"torchrun-{check.name}"}))  # JSON is YAML
    cmd = [torchrun, "--nproc-per-node", "2", "-m", "mona_kit", "run", str(path), "--no-progress", "--no-plots"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    info: dict[str, Any] = {"ok": proc.returncode == 0}
    if proc.returncode != 0:
        info["error"] = (proc.stdout + proc.stderr).strip().splitlines()[-1:]
    else:
        env = json.loads((Path(out) / f"torchrun-{check.name}" / "env.json").read_text())
        info["world_size"] = env.get("world_size")
    return info


def environment() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"torch": torch.__version__, "python": platform.python_version(), "cuda": torch.version.cuda}
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["bf16_supported"] = torch.cuda.is_bf16_supported()
    return info


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mona_kit.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu for a CPU rehearsal")
    parser.add_argument("--out", default="gpu_check.json", help="the JSON summary to write")
    parser.add_argument("--backbone", default="minilm-l6", help="body of the method checks")
    parser.add_argument("--methods", default="", help="comma-separated methods (default: every registered one)")
    parser.add_argument("--tasks", default=",".join(DEFAULT_TASKS),
                        help="comma-separated tasks, tried in order: each method runs on the first it accepts")
    parser.add_argument("--each-task", action="store_true", help="run each method on every one of --tasks it accepts")
    parser.add_argument("--precisions", default="bf16,fp16", help="comma-separated train.precision values")
    parser.add_argument("--no-benchmarks", action="store_true", help="skip the performance benchmarks")
    parser.add_argument("--dry", action="store_true", help="print the plan as JSON and run nothing")
    args = parser.parse_args(argv)
    import torch

    gpu_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if args.device.startswith("cuda") and gpu_count == 0:
        print("gpu_check: no CUDA GPU is visible (torch.cuda.is_available() is False); run it on a machine with a GPU, "
              "or pass --device cpu --dry to see the plan.", file=sys.stderr)
        return 2
    from .errors import MonaError
    from .kit import load_kit

    try:
        kit = load_kit()
        registered = [e.name for e in kit.methods]
        methods = [m for m in args.methods.split(",") if m] or registered
        unknown = sorted(set(methods) - set(registered))
        if unknown:
            raise MonaError(f"gpu_check: unknown method(s) {unknown}; registered: {', '.join(registered)}.")
        task_names = list(dict.fromkeys(t for t in args.tasks.split(",") if t))  # a repeat would reuse a run directory
        unknown_tasks = [t for t in task_names if t not in kit.datasets]
        if not task_names or unknown_tasks:
            raise MonaError(f"gpu_check: --tasks takes registered datasets (mona-kit list datasets); got {unknown_tasks or 'none'}.")
        tasks = task_entries(task_names)
        precisions = [p for p in args.precisions.split(",") if p]
        bad = sorted(set(precisions) - {"fp32", "bf16", "fp16"})
        if bad:
            raise MonaError(f"gpu_check: --precisions takes fp32, bf16, fp16; got {bad}.")
    except MonaError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    checks = plan_checks(methods, device=args.device, gpu_count=gpu_count, precisions=precisions,
                         benchmarks=not args.no_benchmarks)
    settings = {"tasks": task_names, "each_task": args.each_task, "backbone": args.backbone}
    if args.dry:
        print(json.dumps([attrs.asdict(c) | ({"tasks": task_names, "each_task": args.each_task} if c.kind == "method" else {})
                          for c in checks], indent=1))
        return 0
    out = Path(args.out).expanduser().resolve()
    root = Path(__file__).resolve().parent.parent
    summary: dict[str, Any] = {"device": args.device, **settings, "environment": environment(), "checks": []}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mona-gpu-check-") as tmp:
        for check in checks:
            record: dict[str, Any] = attrs.asdict(check)
            if check.skip is None:
                t0 = time.perf_counter()
                try:
                    if check.kind == "method":
                        record |= run_method(kit, check, device=args.device, backbone=args.backbone, out=tmp,
                                             tasks=tasks, each_task=args.each_task)
                    elif check.kind == "benchmarks":
                        record |= run_benchmarks(root, out)
                    else:
                        record |= run_torchrun(check, backbone=args.backbone, out=tmp, task=tasks[0])
                except Exception as exc:  # one failing check must not hide the others
                    record |= {"ok": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0],
                               "where": traceback.format_exc().strip().splitlines()[-3:]}
                record["wall_s"] = round(time.perf_counter() - t0, 2)
                status = "ok" if record.get("ok") else f"FAILED ({record.get('error')})"
                if record.get("ok") and record.get("warning"):
                    status += f", but {record['warning']}"
            else:
                status = f"skipped ({check.skip})"
            print(f"{check.kind:10s} {check.name:16s} {check.precision:5s} {status}", flush=True)
            summary["checks"].append(record)
    ran = [c for c in summary["checks"] if c["skip"] is None]
    summary["passed"] = all(c.get("ok") for c in ran)
    summary["warnings"] = sum(bool(c.get("warning")) for c in ran)  # ran without error, trained nothing
    summary["wall_s"] = round(time.perf_counter() - start, 1)
    out.write_text(json.dumps(summary, indent=1))
    warned = f" ({summary['warnings']} of them trained nothing: see 'warning')" if summary["warnings"] else ""
    print(f"gpu_check: {sum(bool(c.get('ok')) for c in ran)}/{len(ran)} checks passed{warned} in {summary['wall_s']} s; summary in {out}")
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
