"""Experiment loggers: a run's config, environment and events, mirrored to TensorBoard, MLflow or any
logger a plugin registers (``register_loggers``), chosen by the run config's ``loggers`` list.

``metrics.jsonl`` stays the run's record (resume, reports, plots read it); loggers get each event
as :meth:`mona_kit.runs.RunDir.log` writes it. A logger that fails is reported once on stderr and
dropped: losing a dashboard must not lose the run.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .errors import ConfigError, MonaError

#: Event keys that place a value (which stage, step, split) rather than measure something.
PLACE_KEYS = frozenset({"stage", "step", "epoch", "event", "split", "index"})


@runtime_checkable
class Logger(Protocol):
    """What a registered logger's factory returns."""

    def log_config(self, config: dict[str, Any], env: dict[str, Any]) -> None:
        """The run's resolved config and environment record (``env.json``), once, at the start."""

    def log_event(self, event: dict[str, Any]) -> None:
        """One event, as written to ``metrics.jsonl`` (``stage``, ``step``, ``split``, values)."""

    def close(self, status: str) -> None:
        """The run ended: ``"finished"`` or ``"failed"`` (an error or an interrupt)."""


def logged_scalars(event: dict[str, Any]) -> Iterator[tuple[str, float]]:
    """``(tag, value)`` for every number an event measures: ``STAGE/SPLIT-or-EVENT/KEY``
    (``finetune/train/loss``, ``finetune/val/relative-l2``, ``finetune/knowledge-reuse/probe_accuracy``)."""
    stage = str(event.get("stage", "run"))
    group = str(event.get("split") or event.get("event") or "train")
    for key, value in event.items():
        if key in PLACE_KEYS or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            yield f"{stage}/{group}/{key}", float(value)


def flatten_config(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"train": {"lr": 1e-4}}`` -> ``{"train.lr": "0.0001"}`` (hyper-parameter tables take flat text)."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten_config(value, name + "."))
        else:
            out[name] = str(value)
    return out


def check_loggers(kit, refs: Iterable) -> None:
    """Every named logger is registered and its options fit (before the run directory is made)."""
    seen = set()
    for ref in refs:
        if ref.name in seen:
            raise ConfigError(f"config key 'loggers' names {ref.name!r} twice; list each logger once.")
        seen.add(ref.name)
        entry = kit.loggers.get(ref.name)
        entry.make_config(ref.options)
        missing = [m for m in entry.meta.get("requires", ()) if importlib.util.find_spec(m) is None]
        if missing:
            raise ConfigError(
                f"logger {ref.name!r} needs {', '.join(missing)} installed: pip install 'mona-kit[loggers]' "
                f"(or pip install {' '.join(missing)})."
            )


class Loggers:
    """The run's open loggers; each call goes to every one that has not failed."""

    def __init__(self, loggers: list[tuple[str, Logger]]):
        self.loggers = loggers

    def _each(self, what: str, *args: Any) -> None:
        for name, logger in list(self.loggers):
            try:
                getattr(logger, what)(*args)
            except Exception as exc:  # a dashboard's failure is reported, never the run's
                print(f"mona-kit: logger {name!r} failed ({type(exc).__name__}: {exc}); it is switched off for "
                      f"this run (metrics.jsonl has every event).", file=sys.stderr)
                self.loggers.remove((name, logger))

    def log_config(self, config: dict[str, Any], env: dict[str, Any]) -> None:
        self._each("log_config", config, env)

    def log_event(self, event: dict[str, Any]) -> None:
        self._each("log_event", event)

    def close(self, status: str) -> None:
        self._each("close", status)
        self.loggers = []


def open_loggers(kit, refs: Iterable, run_dir: Path) -> Loggers:
    """Build the loggers a run names (checked by :func:`check_loggers` before the run directory was made).
    One that cannot start (a bad tracking_uri or folder) closes those opened before it and is a one-line
    ConfigError; the runner then removes what the run wrote (``mona_kit.run_start.undo_start``)."""
    opened = []
    for ref in refs:
        entry = kit.loggers.get(ref.name)
        try:
            opened.append((ref.name, entry.build(ref.options, run_dir=Path(run_dir))))
        except Exception as exc:
            Loggers(opened).close("failed")
            if isinstance(exc, MonaError):
                raise
            # A bad tracking_uri or dir surfaces as whatever the logger's library raises: one line naming it.
            raise ConfigError(
                f"logger {ref.name!r} could not start ({type(exc).__name__}: {_first_line(exc)}); fix its options "
                f"in the config's 'loggers' list (see 'mona-kit describe {ref.name}') or leave it out."
            ) from exc
    return Loggers(opened)


def _first_line(exc: BaseException, limit: int = 300) -> str:
    line = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "no message")
    return line if len(line) <= limit else line[: limit - 3] + "..."
