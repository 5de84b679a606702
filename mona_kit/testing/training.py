"""The resume and fault contract every method's stages meet, for plugin authors' tests.

A new method gets it by running its smallest config through the two checks::

    from mona_kit.testing import check_nonfinite_stops, check_resume_bitwise

    def test_my_method_resumes(tmp_path):
        kit = load_kit(...)
        check_resume_bitwise(kit, {"task": ..., "backbone": ..., "method": "my-method"}, tmp_path)
        check_nonfinite_stops(kit, {...}, tmp_path)

Both run the method in-process. ``check_resume_bitwise`` kills a run inside every stage (right
after a training step of each stage that trains, at the start of each one that does not),
resumes it and requires the same validation and test metrics, bit for bit, as an uninterrupted
run. ``check_nonfinite_stops`` makes one loss of every training stage NaN and requires the one-line
``NumericalError`` naming the stage and the step, with no results written, whose suggested
``run --resume ... KEY=VALUE`` then finishes the run.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = ["check_nonfinite_stops", "check_resume_bitwise", "stage_steps"]


class _Killed(BaseException):
    """Stands in for SIGKILL: unwinds through every ``except Exception``."""


def _config(config: Mapping[str, Any], workdir: Path, name: str, **extra: Any):
    from ..runconfig import RunConfig

    plain = {**config, "output_dir": str(workdir), "run_name": name, "checkpoint_every": 2, **extra}
    return RunConfig.from_dict(plain)


def _events(run_dir: Path) -> list[dict[str, Any]]:
    from ..runs import RunDir

    return RunDir(run_dir).events()


def _is_step(event: dict[str, Any], stage: str) -> bool:
    """A training step's event: what the loop logs once per optimiser step."""
    return event.get("stage") == stage and "step" in event and "event" not in event and "split" not in event


def stage_steps(run_dir: Path) -> dict[str, int]:
    """Every stage of a finished run, in order, with the training steps it logged (0: it does not train)."""
    events = _events(run_dir)
    stages = [e["stage"] for e in events if e.get("event") == "stage-start"]
    return {s: sum(1 for e in events if _is_step(e, s)) for s in stages}


@contextlib.contextmanager
def _dying(stage: str, step: int | None) -> Iterator[None]:
    """Kill the run right after ``stage`` logs training step ``step`` (None: as the stage starts)."""
    from ..engine import Session

    original = Session.log

    def log(self, **event: Any) -> None:
        original(self, **event)
        if step is None and event.get("stage") == stage and event.get("event") == "stage-start":
            raise _Killed()
        if step is not None and _is_step(event, stage) and event["step"] == step:
            raise _Killed()

    setattr(Session, "log", log)  # noqa: B010 - patched for the duration of one run
    try:
        yield
    finally:
        setattr(Session, "log", original)  # noqa: B010


def _metrics(path: Path) -> tuple[Any, Any]:
    from ..summary import read_results

    results = read_results(path)
    return results.get("val"), results.get("test")


def check_resume_bitwise(kit, config: Mapping[str, Any], workdir: Path, *, kill_after: int = 3) -> dict[str, int]:
    """Kill ``config``'s run inside each of its stages and resume it; the metrics must be bitwise equal.

    Training stages die right after their ``kill_after``-th step (their last, if they have fewer)
    and must log ``resumed`` from their last mid-stage checkpoint (``checkpoint_every`` is 2);
    other stages die as they start. The resumed process starts from another global RNG state, so
    nothing may depend on the process. Returns the stages with their step counts.
    """
    from ..runner import run

    workdir = Path(workdir)
    reference = run(kit, _config(config, workdir, "reference"), progress=False)
    expected = _metrics(reference)
    stages = stage_steps(reference)
    for stage, steps in stages.items():
        step = min(kill_after, steps) if steps else None
        name = f"killed-{stage}"
        with _dying(stage, step):
            try:
                run(kit, _config(config, workdir, name), progress=False)
            except _Killed:
                pass
            else:
                raise AssertionError(f"stage {stage!r}: the run was not killed (at step {step})")
        run_dir = workdir / name
        assert not (run_dir / "results.json").exists(), f"stage {stage!r}: a killed run wrote results.json"
        torch.manual_seed(1234567)  # resuming must not depend on the state of the process
        resumed = run(kit, _config(config, workdir, name), progress=False, resume=run_dir)
        got = _metrics(resumed)
        assert got == expected, f"stage {stage!r} killed at step {step}: resumed to {got}, uninterrupted gave {expected}"
        if step is not None and step >= 2:
            mark = {"stage": stage, "step": step - step % 2, "event": "resumed"}
            assert mark in _events(run_dir), f"stage {stage!r} did not resume from its step-{mark['step']} checkpoint"
    return stages


def check_nonfinite_stops(kit, config: Mapping[str, Any], workdir: Path, *, at_step: int = 2) -> list[str]:
    """A NaN loss at step ``at_step`` of each training stage stops the run with one line naming the
    stage and step (``train.on_nonfinite=stop``, the default); nothing is evaluated or written as
    results. Returns the stages checked."""
    from .. import loop
    from ..errors import NumericalError
    from ..runner import run

    workdir = Path(workdir)
    stages = stage_steps(run(kit, _config(config, workdir, "nonfinite-reference"), progress=False))
    checked = []
    for stage, steps in stages.items():
        if steps < at_step:
            continue
        original = loop._loss_of

        def poisoned(stage_obj, session, model, batch, step, _stage=stage, _original=original):
            out = _original(stage_obj, session, model, batch, step)
            if stage_obj.name != _stage or step != at_step:
                return out
            loss, values = out if isinstance(out, tuple) else (out, None)
            loss = loss * math.nan
            return (loss, values) if values is not None else loss

        loop._loss_of = poisoned
        name = f"nonfinite-{stage}"
        try:
            run(kit, _config(config, workdir, name), progress=False)
        except NumericalError as exc:
            message = str(exc)
            assert "\n" not in message, f"stage {stage!r}: the non-finite stop is not one line: {message}"
            assert message.startswith(f"stage {stage!r}: ") and f"is nan at step {at_step} " in message, message
        else:
            raise AssertionError(f"stage {stage!r}: a NaN loss at step {at_step} did not stop the run")
        finally:
            loop._loss_of = original
        assert not (workdir / name / "results.json").exists(), f"stage {stage!r}: results written after a NaN stop"
        # The message's own retry command is accepted and finishes the run.
        found = re.search(r"--resume \S+ ((?:train|method)\.[a-z_]+)=VALUE", message)
        assert found, f"stage {stage!r}: the stop message names no resume command: {message}"
        run(kit, _config(config, workdir, name), progress=False, resume=workdir / name, overrides=[f"{found[1]}=1e-5"])
        assert (workdir / name / "results.json").is_file(), f"stage {stage!r}: the suggested resume did not finish"
        checked.append(stage)
    return checked
