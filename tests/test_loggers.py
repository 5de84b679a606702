"""Experiment loggers (issue 17, item 2): ``loggers=[tensorboard,mlflow]`` leaves event files and an
MLflow run that TensorBoard's and MLflow's own readers load; a plugin's logger (``register_loggers``)
gets the config, the environment and every event metrics.jsonl gets, as it is written; a failing
logger never fails the run; bad logger names are one line before anything is written."""

from __future__ import annotations

import json
import types

import pytest

import mona_kit.cli as cli
from mona_kit.errors import MonaError
from mona_kit.hookspecs import hookimpl
from mona_kit.runconfig import RunConfig, apply_overrides
from mona_kit.runner import run
from mona_kit.runs import RunDir

SEEN: dict[str, list] = {"config": [], "events": [], "closed": []}


class RecordingLogger:
    def __init__(self, cfg, run_dir):
        self.fail = cfg.fail
        SEEN["run_dir"] = run_dir

    def log_config(self, config, env):
        SEEN["config"].append((config, env))

    def log_event(self, event):
        if self.fail:
            raise RuntimeError("dashboard unreachable")
        # As it is produced: the event is already the last line of metrics.jsonl when the logger sees it.
        SEEN["events"].append((dict(event), RunDir(SEEN["run_dir"]).events()[-1]))

    def close(self, status):
        SEEN["closed"].append(status)


def _config_class():
    from mona_kit.config import config, option

    @config
    class RecordingConfig:
        fail: bool = option(False, help="raise on every event")

    return RecordingConfig


recording_plugin = types.ModuleType("recording_plugin")
recording_plugin.register_loggers = hookimpl(
    lambda register: register("recording", lambda cfg, *, run_dir: RecordingLogger(cfg, run_dir),
                              config=_config_class(), summary="keeps what it is given, for tests")
)


@pytest.fixture
def logger_kit():
    import toy_plugin

    from mona_kit.kit import load_kit

    SEEN.update(config=[], events=[], closed=[])
    return load_kit(builtins=["mona_plugins.methods", "mona_plugins.loggers"], entry_points=False,
                    extra=[toy_plugin, recording_plugin])


def toy(tmp_path, *overrides: str) -> RunConfig:
    plain = {"task": {"name": "toy-seq", "n_train": 48}, "backbone": "toy-body", "source": "toy-text",
             "method": "finetune", "train": {"epochs": 2, "batch_size": 16}, "output_dir": str(tmp_path), "run_name": "r"}
    return RunConfig.from_dict(apply_overrides(plain, overrides))


def test_a_plugin_logger_gets_config_env_and_every_event_as_it_is_written(logger_kit, tmp_path):
    path = run(logger_kit, toy(tmp_path, "loggers=[recording]"), progress=False)
    (config, env), = SEEN["config"]
    assert config == RunDir(path).read_config() and env == json.loads((path / "env.json").read_text())
    assert [e for e, _ in SEEN["events"]] == RunDir(path).events()
    assert all(event == last for event, last in SEEN["events"])
    assert SEEN["closed"] == ["finished"]


def test_a_failing_logger_is_switched_off_and_the_run_finishes(logger_kit, tmp_path, capsys):
    path = run(logger_kit, toy(tmp_path, "loggers=[{name: recording, fail: true}]"), progress=False)
    assert (path / "results.json").is_file()
    err = capsys.readouterr().err
    assert err.count("logger 'recording' failed (RuntimeError: dashboard unreachable)") == 1
    assert SEEN["closed"] == []  # switched off at its first failure, not called again


@pytest.mark.parametrize("value,message", [
    ("[tensorbord]", "tensorbord"),
    ("[recording,recording]", "names 'recording' twice"),
    ("[{name: recording, fial: true}]", "fial"),
    ("7", "must be a list of logger names"),
])
def test_bad_loggers_fail_before_the_run_directory_exists(value, message, logger_kit, tmp_path):
    with pytest.raises(MonaError, match=message):
        run(logger_kit, toy(tmp_path, f"loggers={value}"), progress=False)
    assert not (tmp_path / "r").exists()


def test_tensorboard_and_mlflow_leave_files_their_own_readers_load(logger_kit, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    path = run(logger_kit, toy(tmp_path, "loggers=[tensorboard,mlflow]"), progress=False)
    events = RunDir(path).events()
    losses = [(e["step"], e["loss"]) for e in events if e.get("stage") == "finetune" and "loss" in e and "split" not in e]
    val = [(e["step"], e["toy-error"]) for e in events if e.get("split") == "val" and e.get("stage") == "finetune"]
    assert losses and val

    acc = EventAccumulator(str(path / "tensorboard"), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    board = [(s.step, s.value) for s in acc.Scalars("finetune/train/loss")]
    assert [s for s, _ in board] == [s for s, _ in losses]
    assert [v for _, v in board] == pytest.approx([v for _, v in losses], rel=1e-6)
    assert [s.step for s in acc.Scalars("finetune/val/toy-error")] == [s for s, _ in val]
    tested = [e for e in events if e.get("split") == "test"]
    assert tested and f"{tested[-1]['stage']}/test/toy-error" in acc.Tags()["scalars"]
    assert {"config/text_summary", "environment/text_summary"} <= set(acc.Tags()["tensors"])

    record = json.loads((path / "mlflow-run.json").read_text())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=record["tracking_uri"])
    mlrun = client.get_run(record["run_id"])
    assert mlrun.info.status == "FINISHED" and mlrun.info.run_name == "r"
    history = sorted((m.step, m.value) for m in client.get_metric_history(record["run_id"], "finetune/train/loss"))
    assert [s for s, _ in history] == [s for s, _ in losses]
    assert [v for _, v in history] == pytest.approx([v for _, v in losses], rel=1e-6)
    results = json.loads((path / "results.json").read_text())
    assert mlrun.data.metrics[f"{tested[-1]['stage']}/test/toy-error"] == pytest.approx(results["test"]["toy-error"])
    assert mlrun.data.params["train.batch_size"] == "16" and mlrun.data.params["method.name"] == "finetune"
    assert {a.path for a in client.list_artifacts(record["run_id"])} >= {"config.json", "env.json"}


def test_an_unknown_logger_on_the_command_line_is_one_line_and_exit_2(tmp_path, capsys):
    code = cli.main(["run", "task=gunpoint", "backbone=tiny-bert", "method=finetune", f"output_dir={tmp_path}",
                     "loggers=[tensorbord]", "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tensorbord" in err[0] and "tensorboard" in err[0]  # did you mean
    assert not any(tmp_path.iterdir())


def test_a_resumed_run_logs_into_the_same_mlflow_run(tmp_path, monkeypatch):
    """The MLflow run id is kept in the run folder: a second logger there (a resume) continues that run."""
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient
    from mona_plugins.loggers.mlflow_logger import MLflowConfig, MLflowLogger

    first = MLflowLogger(MLflowConfig(), tmp_path)
    first.log_event({"stage": "finetune", "step": 1, "loss": 0.5})
    first.close("failed")  # killed mid-stage
    again = MLflowLogger(MLflowConfig(), tmp_path)
    assert again.run_id == first.run_id
    again.log_config({"train": {"lr": 0.1}}, {})
    again.log_config({"train": {"lr": 0.1}}, {})  # a second resume logs the same params again: accepted
    again.log_event({"stage": "finetune", "step": 2, "loss": 0.25})
    again.close("finished")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=json.loads((tmp_path / "mlflow-run.json").read_text())["tracking_uri"])
    assert client.get_run(first.run_id).info.status == "FINISHED"
    assert sorted((m.step, m.value) for m in client.get_metric_history(first.run_id, "finetune/train/loss")) == [(1, 0.5), (2, 0.25)]
    assert len(client.search_runs([client.get_experiment_by_name("mona-kit").experiment_id])) == 1
