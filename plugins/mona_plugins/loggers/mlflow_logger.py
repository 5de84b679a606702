"""MLflow: one MLflow run per mona-kit run, metrics by step, the config as parameters and artifacts.

The default tracking store is a folder in the run directory (``file:RUN_DIR/mlruns``), so nothing
leaves the machine; point ``tracking_uri`` at a server or database to collect runs centrally. MLflow 3
refuses file stores unless ``MLFLOW_ALLOW_FILE_STORE`` is set: this logger sets it for the file
store it is given (the store still works and is what MLflow's own client reads). MLflow 3's usage
telemetry (an id in ~/.config/mlflow, events sent to MLflow's servers) is switched off for the
process unless the user set ``MLFLOW_DISABLE_TELEMETRY`` themselves.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from mona_kit.api import config, flatten_config, logged_scalars, option

#: Where a run keeps its MLflow run id, so a resumed run logs into the same MLflow run.
RUN_ID_FILE = "mlflow-run.json"


@config
class MLflowConfig:
    tracking_uri: str | None = option(None, help="MLflow tracking URI (None = a file store in RUN_DIR/mlruns)")
    experiment: str = option("mona-kit", help="MLflow experiment name")
    batch: int = option(50, min=1, help="metrics sent per request (flushed at each stage end and at close)")


#: MLflow's documented switch (mlflow.environment_variables.MLFLOW_DISABLE_TELEMETRY).
TELEMETRY_ENV = "MLFLOW_DISABLE_TELEMETRY"


def _mlflow_client() -> type:
    """MlflowClient (heavy: imported only when a run asks for it), with MLflow's telemetry off.

    MLflow reads the variable at import and again before each usage event, so it stays set for the
    process (as MLFLOW_ALLOW_FILE_STORE does); a user who set it keeps their own value."""
    os.environ.setdefault(TELEMETRY_ENV, "true")
    from mlflow.tracking import MlflowClient

    return MlflowClient


class MLflowLogger:
    def __init__(self, cfg: MLflowConfig, run_dir: Path):
        run_dir = Path(run_dir)
        uri = cfg.tracking_uri or (run_dir / "mlruns").resolve().as_uri()
        if uri.startswith("file:") or "://" not in uri:
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = _mlflow_client()(tracking_uri=uri)
        self.batch = cfg.batch
        self.pending: list = []
        self.step = 0
        record = run_dir / RUN_ID_FILE
        run_id = json.loads(record.read_text()).get("run_id") if record.is_file() else None
        if run_id is not None:  # a resumed run: the same MLflow run, marked running again
            self.run_id = run_id
            self.client.update_run(run_id, status="RUNNING")
            return
        experiment = self.client.get_experiment_by_name(cfg.experiment)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(cfg.experiment)
        run = self.client.create_run(experiment_id, run_name=run_dir.name, tags={"mona-kit.run_dir": str(run_dir.resolve())})
        self.run_id = run.info.run_id
        record.write_text(json.dumps({"run_id": self.run_id, "tracking_uri": uri}) + "\n")

    def log_config(self, config: dict[str, Any], env: dict[str, Any]) -> None:
        from mlflow.entities import Param

        params = [Param(k, v[:6000]) for k, v in flatten_config(config).items()]
        existing = self.client.get_run(self.run_id).data.params
        params = [p for p in params if p.key not in existing]  # a resume logs the same config: params are write-once
        for i in range(0, len(params), 100):
            self.client.log_batch(self.run_id, params=params[i:i + 100])
        self.client.log_dict(self.run_id, config, "config.json")
        self.client.log_dict(self.run_id, env, "env.json")

    def log_event(self, event: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        step = event.get("step")
        if isinstance(step, int) and not isinstance(step, bool):
            self.step = step
        now = int(time.time() * 1000)
        self.pending += [Metric(tag, value, now, self.step) for tag, value in logged_scalars(event)]
        if len(self.pending) >= self.batch or event.get("event") == "stage-end":
            self.flush()

    def flush(self) -> None:
        if self.pending:
            batch, self.pending = self.pending, []
            self.client.log_batch(self.run_id, metrics=batch)

    def close(self, status: str) -> None:
        self.flush()
        self.client.set_terminated(self.run_id, "FINISHED" if status == "finished" else "FAILED")


def make_mlflow(cfg: MLflowConfig, *, run_dir: Path) -> MLflowLogger:
    return MLflowLogger(cfg, run_dir)
