"""TensorBoard: every number an event measures as a scalar at its step; config and environment as text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mona_kit.api import config, logged_scalars, option


@config
class TensorBoardConfig:
    dir: str = option("tensorboard", help="event-file folder, relative to the run directory (or absolute)")
    flush_secs: int = option(10, min=1, help="seconds between flushes to disk")


class TensorBoardLogger:
    def __init__(self, cfg: TensorBoardConfig, run_dir: Path):
        from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: only when a run asks for it

        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / cfg.dir), flush_secs=cfg.flush_secs)
        self.step = 0  # events without a step (a stage's test results) sit at the last step seen

    def log_config(self, config: dict[str, Any], env: dict[str, Any]) -> None:
        import yaml

        self.writer.add_text("config", "```\n" + yaml.safe_dump(config, sort_keys=False) + "```", 0)
        self.writer.add_text("environment", "```\n" + json.dumps(env, indent=1, default=str) + "\n```", 0)

    def log_event(self, event: dict[str, Any]) -> None:
        step = event.get("step")
        if isinstance(step, int) and not isinstance(step, bool):
            self.step = step
        for tag, value in logged_scalars(event):
            self.writer.add_scalar(tag, value, self.step)

    def close(self, status: str) -> None:
        self.writer.add_text("status", status, self.step)
        self.writer.close()


def make_tensorboard(cfg: TensorBoardConfig, *, run_dir: Path) -> TensorBoardLogger:
    return TensorBoardLogger(cfg, run_dir)
