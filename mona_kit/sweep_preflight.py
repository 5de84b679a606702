"""What a sweep checks before it launches cells, beyond each cell's config (mona_kit.sweep_profile):
what a cell's own run would refuse only once started — its device, its precision on that device,
its loggers, and a body that cannot be built (a wrong weights folder, a hub id not in the cache).
Without these checks every cell of a long sweep starts, fails the same way, and leaves its
per-cell config behind."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

from .errors import ConfigError, MonaError
from .runconfig import RunConfig


def _refused(cell, what: str, exc: Exception) -> ConfigError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ConfigError(f"sweep cell {cell.key}: {what}{text}")


def check_devices_and_loggers(cells: Iterable, kit, *, local: bool) -> None:
    """Each distinct device, precision and logger list of the cells, once. ``local``: the cells run
    on this machine, so the device must be here (under a cluster launcher only its name is checked:
    the login node may have no GPU)."""
    from .engine import parse_device, resolve_device
    from .loggers import check_loggers
    from .precision import check_precision

    seen: set[tuple[str, str, str]] = set()
    for cell in cells:
        config = RunConfig.from_dict(cell.config)
        key = (config.device, config.train.precision, json.dumps([[r.name, r.options] for r in config.loggers], default=str))
        if key in seen:
            continue
        seen.add(key)
        try:
            # Under a cluster launcher a named device is checked for its precision (fp16 on a CPU fails on
            # any node); 'auto' is whatever the node has.
            device = resolve_device(config.device) if local else parse_device(config.device)
            if device is not None:
                check_precision(config.train.precision, device)
            check_loggers(kit, config.loggers)
        except MonaError as exc:
            raise _refused(cell, "", exc) from exc


def check_bodies(cells: Iterable, kit) -> None:
    """Build each distinct body of the cells once, pretrained, on the CPU: a weights folder that is not
    there, or a hub id neither cached nor reachable, fails here rather than in every cell. Every method
    counts: a run resolves its ``auto`` embedder and head from the pretrained body, references included."""
    from .engine import build_body

    first: dict[str, tuple[Any, RunConfig]] = {}  # distinct body -> the first cell that loads it
    for cell in cells:
        config = RunConfig.from_dict(cell.config)
        first.setdefault(json.dumps([config.backbone.name, config.backbone.options], sort_keys=True, default=str),
                         (cell, config))
    if not first:
        return
    one = len(first) == 1
    print(f"sweep: loading {'the body' if one else f'the {len(first)} bodies'} of the cells to run once, to check "
          f"{'it loads' if one else 'they load'}", file=sys.stdout, flush=True)
    for cell, config in first.values():
        entry = kit.backbones.get(config.backbone.name)
        what = f"backbone {config.backbone.name!r} cannot be built: "
        try:
            build_body(entry, entry.make_config(config.backbone.options), True, who=f"method {config.method.name!r}")
        except MonaError as exc:
            raise _refused(cell, what, exc) from exc
        except Exception as exc:  # a plugin's own error: one line naming the body, --debug shows the rest
            raise _refused(cell, what + f"{type(exc).__name__}: ", exc) from exc


def preflight(cells: list[Any], kit, *, local: bool) -> None:
    """Both checks, before the first cell of a sweep is launched; ``cells``: those still to run (a
    finished cell's report can be rebuilt on a machine without its GPU or its weights)."""
    check_devices_and_loggers(cells, kit, local=local)
    if local:  # a cluster's nodes may see folders and caches this machine does not
        check_bodies(cells, kit)
