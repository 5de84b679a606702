"""Experiment loggers (issue 17, item 2): ``loggers=[tensorboard,mlflow]`` leaves event files and an
MLflow run that TensorBoard's and MLflow's own readers load; a plugin's logger (``register_loggers``)
gets the config, the environment and every event metrics.jsonl gets, as it is written; a failing
logger never fails the run; bad logger names are one line before anything is written."""

from __future__ import annotations

import importlib.util
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


# A logger whose start fails the way a library's would (not a MonaError), after writing into the run folder.
BROKEN = {"on": True}


class StartFailingLogger(RecordingLogger):
    def __init__(self, cfg, run_dir):
        (run_dir / "half-made").mkdir(exist_ok=True)
        if BROKEN["on"]:
            raise OSError(5, "Input/output error", str(run_dir / "half-made"))
        super().__init__(cfg, run_dir)


broken_plugin = types.ModuleType("broken_plugin")
broken_plugin.register_loggers = hookimpl(
    lambda register: register("start-fails", lambda cfg, *, run_dir: StartFailingLogger(cfg, run_dir),
                              config=_config_class(), summary="raises OSError as it starts, for tests")
)


@pytest.fixture
def broken_kit(logger_kit):
    import toy_plugin

    from mona_kit.kit import load_kit

    BROKEN["on"] = True
    return load_kit(builtins=["mona_plugins.methods", "mona_plugins.loggers"], entry_points=False,
                    extra=[toy_plugin, recording_plugin, broken_plugin])


def logger_cases():
    cases = [("[recording, start-fails]", "logger 'start-fails' could not start (OSError: [Errno 5] Input/output error")]
    if importlib.util.find_spec("tensorboard"):
        cases.append(("[{name: tensorboard, dir: AFILE/tb}]", "logger 'tensorboard' could not start"))
    if importlib.util.find_spec("mlflow"):
        cases.append(("[{name: mlflow, tracking_uri: 'bogus://x'}]", "logger 'mlflow' could not start (Unsupported"))
        cases.append(("[{name: mlflow, tracking_uri: 'file:AFILE/mlruns'}]", "logger 'mlflow' could not start"))
    return cases


@pytest.mark.parametrize("value,message", logger_cases())
@pytest.mark.parametrize("existing", ["none", "output-dir", "empty-run-dir"])
def test_a_logger_that_cannot_start_is_one_line_and_leaves_nothing(value, message, existing, broken_kit, tmp_path):
    """What the run wrote before its loggers started (config.yaml, env.json, the lock, logger files) is
    removed again; folders that existed before stay as they were."""
    import re

    afile = tmp_path / "afile"
    afile.write_text("a file where a folder is expected")
    out = tmp_path / "out"
    if existing != "none":
        (out / "other-run").mkdir(parents=True)
        (out / "other-run" / "results.json").write_text("{}")
    if existing == "empty-run-dir":
        (out / "r").mkdir()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(MonaError, match=re.escape(message)) as err:
        run(broken_kit, toy(out, "loggers=" + value.replace("AFILE", str(afile))), progress=False)
    assert "\n" not in str(err.value) and "'loggers' list" in str(err.value)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert afile.read_text() == "a file where a folder is expected"


def test_a_logger_that_cannot_start_on_resume_leaves_the_run_as_it_was(broken_kit, tmp_path, monkeypatch):
    from mona_kit.engine import Session

    BROKEN["on"] = False
    original_log = Session.log

    def dying_log(self, **event):  # an interrupt mid-stage: a run to resume
        original_log(self, **event)
        if event.get("stage") == "finetune" and event.get("step") == 2 and "loss" in event:
            raise KeyboardInterrupt

    monkeypatch.setattr(Session, "log", dying_log)
    with pytest.raises(KeyboardInterrupt):
        run(broken_kit, toy(tmp_path, "loggers=[start-fails]"), progress=False)
    monkeypatch.setattr(Session, "log", original_log)
    path = tmp_path / "r"
    (path / "half-made").rmdir()  # so that the failing start's own folder is new again
    before = {p.relative_to(path): p.read_bytes() for p in path.rglob("*") if p.is_file()}
    BROKEN["on"] = True
    with pytest.raises(MonaError, match="logger 'start-fails' could not start"):
        run(broken_kit, toy(tmp_path, "loggers=[start-fails]"), progress=False, resume=path)
    assert {p.relative_to(path): p.read_bytes() for p in path.rglob("*") if p.is_file()} == before
    assert not (path / "half-made").exists()


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != ".mona-kit-lock"}


@pytest.mark.parametrize("failure", ["refused", "ctrl-c"])
def test_overwrite_with_a_logger_that_cannot_start_keeps_the_old_run(failure, broken_kit, tmp_path, monkeypatch):
    """--overwrite moves the old run aside, and drops it only once the new run has started: a logger that
    refuses (or Ctrl-C while it starts) puts the old run back byte for byte, marker included."""
    from mona_kit.runs import REPLACED

    BROKEN["on"] = False
    run(broken_kit, toy(tmp_path), progress=False)
    path = tmp_path / "r"
    before = _files(path)
    assert (path / "results.json").is_file() and (path / "checkpoints").is_dir()
    BROKEN["on"] = True
    if failure == "ctrl-c":
        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt
        monkeypatch.setattr(StartFailingLogger, "__init__", interrupted)
    with pytest.raises(KeyboardInterrupt if failure == "ctrl-c" else MonaError):
        run(broken_kit, toy(tmp_path, "loggers=[start-fails]", "seed=1"), progress=False, overwrite=True)
    assert _files(path) == before and not (path / REPLACED).exists() and not (path / "half-made").exists()


def test_overwrite_drops_the_old_run_once_the_new_one_started(logger_kit, tmp_path):
    from mona_kit.runs import REPLACED

    run(logger_kit, toy(tmp_path), progress=False)
    (tmp_path / "r" / "old-notes.txt").write_text("from the replaced run")
    run(logger_kit, toy(tmp_path, "seed=1", "loggers=[recording]"), progress=False, overwrite=True)
    path = tmp_path / "r"
    assert not (path / REPLACED).exists() and not (path / "old-notes.txt").exists()
    assert RunDir(path).read_config()["seed"] == 1 and (path / "results.json").is_file()


def test_a_replaced_run_left_by_a_killed_start_goes_with_the_next_overwrite(logger_kit, tmp_path):
    """kill -9 between moving the old run aside and the start: the next --overwrite drops it (the user
    asked to replace it), and the new run's records are its own."""
    from mona_kit.runs import REPLACED

    run(logger_kit, toy(tmp_path), progress=False)
    path = tmp_path / "r"
    (path / REPLACED).mkdir()
    (path / REPLACED / "results.json").write_text("{}")
    run(logger_kit, toy(tmp_path, "seed=2"), progress=False, overwrite=True)
    assert not (path / REPLACED).exists() and RunDir(path).read_config()["seed"] == 2


def test_overwrite_that_cannot_move_the_old_run_aside_leaves_it_whole(logger_kit, tmp_path, monkeypatch):
    """A rename refused half-way (a busy mount, a permission): one line, and the old run as it was."""
    import os

    from mona_kit.runs import REPLACED

    run(logger_kit, toy(tmp_path), progress=False)
    path = tmp_path / "r"
    before = _files(path)
    real_replace = os.replace

    def refuse_results(src, dst):
        if str(src).endswith("results.json"):
            raise PermissionError(13, "Permission denied", str(src))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", refuse_results)
    with pytest.raises(MonaError, match="cannot write run directory .*Permission denied"):
        run(logger_kit, toy(tmp_path, "seed=1"), progress=False, overwrite=True)
    monkeypatch.setattr(os, "replace", real_replace)
    assert _files(path) == before and not (path / REPLACED).exists()


@pytest.mark.parametrize("failure", ["disk-full", "ctrl-c"])
def test_overwrite_that_fails_writing_the_new_config_keeps_the_old_run(failure, logger_kit, tmp_path, monkeypatch):
    """Not only the loggers: anything between moving the old run aside and the start (config.yaml and
    env.json on a full disk, Ctrl-C) puts it back."""
    from mona_kit.runs import REPLACED

    run(logger_kit, toy(tmp_path), progress=False)
    path = tmp_path / "r"
    before = _files(path)

    def fails(self, plain):
        (self.path / "config.yaml").write_text("half")
        if failure == "ctrl-c":
            raise KeyboardInterrupt
        raise MonaError(f"cannot write {str(self.path / 'config.yaml')!r}: No space left on device")

    monkeypatch.setattr(RunDir, "write_config", fails)
    with pytest.raises(KeyboardInterrupt if failure == "ctrl-c" else MonaError):
        run(logger_kit, toy(tmp_path, "seed=1"), progress=False, overwrite=True)
    assert _files(path) == before and not (path / REPLACED).exists()


def test_a_run_left_aside_by_a_kill_is_never_dropped_without_overwrite(logger_kit, tmp_path):
    """A kill -9 while an --overwrite run started leaves the old run in REPLACED: a run without
    --overwrite is refused (the folder has content), and a resume keeps it."""
    from mona_kit.runs import MARKER, REPLACED

    path = tmp_path / "r"
    path.mkdir()
    (path / MARKER).write_text('{"made_by": "mona-kit"}\n')
    (path / REPLACED).mkdir()
    (path / REPLACED / "results.json").write_text("{}")
    with pytest.raises(MonaError, match="already exists; pass --overwrite"):
        run(logger_kit, toy(tmp_path), progress=False)
    assert (path / REPLACED / "results.json").is_file()
    run(logger_kit, toy(tmp_path, "seed=3"), progress=False, overwrite=True)
    (path / "results.json").unlink()  # a run to resume (results.json is its last record) that holds a REPLACED
    (path / REPLACED).mkdir()
    (path / REPLACED / "notes.txt").write_text("old")
    run(logger_kit, toy(tmp_path, "seed=3"), progress=False, resume=path)
    assert (path / REPLACED / "notes.txt").read_text() == "old" and (path / "results.json").is_file()


def test_mlflow_telemetry_is_off(tmp_path):
    """MLflow 3 writes an installation id to ~/.config/mlflow and sends usage events unless told not to;
    the logger's promise is that nothing leaves the machine. Fresh process: MLflow checks at import,
    and only outside CI/pytest (so those variables are left out here)."""
    import os
    import subprocess
    import sys

    pytest.importorskip("mlflow")
    code = (
        "import os, sys\n"
        "from mona_plugins.loggers.mlflow_logger import MLflowConfig, MLflowLogger\n"
        "logger = MLflowLogger(MLflowConfig(), sys.argv[1]); logger.close('finished')\n"
        "from mlflow.telemetry import get_telemetry_client\n"
        "assert get_telemetry_client() is None, 'telemetry is on'\n"
    )
    keep = ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "config"), DO_NOT_TRACK="false")
    (tmp_path / "run").mkdir()
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (tmp_path / "config" / "mlflow").exists() and not (tmp_path / "home" / ".config").exists()
