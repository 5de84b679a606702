"""Interrupted runs resume to the same final metrics as uninterrupted ones."""

import json

import pytest
import torch

from mona_kit.runconfig import RunConfig
from mona_kit.runner import run


class Killed(Exception):
    pass


def config(tmp_path, method, name, precision="fp32"):
    opts = {"name": method}
    if method == "mona":
        opts.update(objective="toy-align-uniform", meta_steps=6)
    return RunConfig.from_dict({
        "task": {"name": "toy-seq", "n_train": 48}, "backbone": "toy-body", "source": "toy-text", "method": opts,
        "train": {"epochs": 2, "batch_size": 16, "precision": precision}, "output_dir": str(tmp_path), "run_name": name, "checkpoint_every": 2,
    })


@pytest.mark.parametrize("method,kill_stage,kill_after", [
    ("finetune", "finetune", 3), ("mona", "meta-align", 3), ("mona", "finetune", 5), ("pare", "pare", 3),
])
def test_resume_matches_uninterrupted(toy_kit, tmp_path, monkeypatch, method, kill_stage, kill_after):
    check_resume(toy_kit, tmp_path, monkeypatch, method, kill_stage, kill_after, "fp32")


@pytest.mark.parametrize("method,kill_stage,kill_after", [("finetune", "finetune", 3), ("mona", "meta-align", 3)])
def test_resume_matches_uninterrupted_in_bf16(toy_kit, tmp_path, monkeypatch, method, kill_stage, kill_after):
    check_resume(toy_kit, tmp_path, monkeypatch, method, kill_stage, kill_after, "bf16")


def check_resume(toy_kit, tmp_path, monkeypatch, method, kill_stage, kill_after, precision):
    reference = json.loads((run(toy_kit, config(tmp_path, method, "ref", precision), progress=False) / "results.json").read_text())

    from mona_kit.engine import Session

    original_log = Session.log
    seen = {"n": 0}

    def dying_log(self, **event):  # dies right after a logged training step of the chosen stage
        original_log(self, **event)
        if event.get("stage") == kill_stage and "loss" in event and "split" not in event:
            seen["n"] += 1
            if seen["n"] == kill_after:
                raise Killed()

    monkeypatch.setattr(Session, "log", dying_log)
    with pytest.raises(Killed):
        run(toy_kit, config(tmp_path, method, "killed", precision), progress=False)
    monkeypatch.setattr(Session, "log", original_log)
    run_dir = tmp_path / "killed"
    assert not (run_dir / "results.json").exists()
    torch.manual_seed(12345)  # resuming must not depend on the state of the process
    resumed = json.loads((run(toy_kit, config(tmp_path, method, "killed", precision), progress=False, resume=run_dir) / "results.json").read_text())
    assert resumed["test"] == reference["test"] and resumed["val"] == reference["val"]
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any(e.get("event") == "resumed" for e in events)


def test_resume_refuses_a_hand_edited_config(toy_kit, tmp_path):
    from mona_kit.errors import CheckpointError

    path = run(toy_kit, config(tmp_path, "finetune", "r"), progress=False)
    (path / "results.json").unlink()  # stopped before its last record: a finished run is not resumed at all
    text = (path / "config.yaml").read_text().replace("epochs: 2", "epochs: 3")
    (path / "config.yaml").write_text(text)
    with pytest.raises(CheckpointError, match=r"config\.yaml' was edited after the run started"):
        run(toy_kit, config(tmp_path, "finetune", "r"), progress=False, resume=path)


def test_resume_refuses_a_config_that_resolves_differently(toy_kit, tmp_path):
    """config.yaml and its hash agree (as after a component changed a default), the config now does not."""
    import yaml

    from mona_kit.errors import CheckpointError
    from mona_kit.resume_rules import config_hash

    path = run(toy_kit, config(tmp_path, "finetune", "r"), progress=False)
    (path / "results.json").unlink()  # stopped before its last record: a finished run is not resumed at all
    text = (path / "config.yaml").read_text().replace("epochs: 2", "epochs: 3")
    (path / "config.yaml").write_text(text)
    env = json.loads((path / "env.json").read_text())
    (path / "env.json").write_text(json.dumps(env | {"config_sha256": config_hash(yaml.safe_load(text))}))
    with pytest.raises(CheckpointError, match=r"train.epochs: 3 \(checkpoint\) != 2 \(now\)"):
        run(toy_kit, config(tmp_path, "finetune", "r"), progress=False, resume=path)


def test_resumed_wall_time_counts_the_attempt_it_continues(toy_kit, tmp_path, monkeypatch):
    """results.json's wall_time_s adds the time recorded with the checkpoint a resume continues from,
    so a cell interrupted late does not report only its last few minutes."""
    import time

    from mona_kit.engine import Session

    original_log = Session.log
    seen = {"n": 0}

    def slow_then_dying_log(self, **event):  # the first step takes 0.6 s more; killed after the third
        original_log(self, **event)
        if event.get("stage") == "finetune" and "loss" in event and "split" not in event:
            seen["n"] += 1
            if seen["n"] == 1:
                time.sleep(0.6)
            if seen["n"] == 3:
                raise Killed()

    monkeypatch.setattr(Session, "log", slow_then_dying_log)
    with pytest.raises(Killed):
        run(toy_kit, config(tmp_path, "finetune", "killed"), progress=False)
    monkeypatch.setattr(Session, "log", original_log)
    run_dir = tmp_path / "killed"
    pointer = json.loads((run_dir / "checkpoints" / "stage-0-latest.json").read_text())
    before = pointer["elapsed_s"]
    assert before >= 0.6
    t0 = time.time()
    resumed = run(toy_kit, config(tmp_path, "finetune", "killed"), progress=False, resume=run_dir)
    this_process = time.time() - t0
    wall = json.loads((resumed / "results.json").read_text())["wall_time_s"]
    assert before < wall <= before + this_process
    assert json.loads((run_dir / "checkpoints" / "progress.json").read_text())["elapsed_s"] <= wall


@pytest.mark.parametrize("pointer,resumed,restarts_stage,offset", [
    ({"elapsed_s": 100.0}, True, False, 100.0),   # inside a stage: its last mid-stage slot
    (None, True, False, 40.0),                    # between stages: the end of the last finished one
    ({"elapsed_s": 100.0}, True, True, 40.0),     # a learning-rate override restarts the stage
    ("damaged", True, False, 40.0),               # load reports a damaged pointer; the clock does not fail on it
    ({}, True, False, 40.0),                      # a pointer from before times were recorded
    ({"elapsed_s": 100.0}, False, False, 0.0),    # a new run
])
def test_run_clock_starts_from_the_checkpoint_the_resume_continues(tmp_path, pointer, resumed, restarts_stage, offset):
    from types import SimpleNamespace

    from mona_kit.distributed import DistInfo
    from mona_kit.run_records import read_progress
    from mona_kit.runner import _run_clock

    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / "progress.json").write_text(json.dumps({"done": ["warmup"], "metrics_bytes": 0, "elapsed_s": 40.0}))
    if pointer == "damaged":
        (checkpoints / "stage-1-latest.json").write_text("{not json")
    elif pointer is not None:
        (checkpoints / "stage-1-latest.json").write_text(json.dumps({"slot": "a", "step": 4, **pointer}))
    run_dir = SimpleNamespace(checkpoints=checkpoints)
    session = SimpleNamespace(dist=DistInfo(), run=run_dir)
    clock = _run_clock(session, 1, resumed, restarts_stage, read_progress(run_dir).elapsed_s)
    assert offset <= clock() < offset + 5


@pytest.mark.parametrize("record,size,seconds", [
    ({"done": ["warmup"], "metrics_bytes": 12, "elapsed_s": 40}, 12, 40.0),
    ({"done": ["warmup"]}, None, None),                                         # written before both were kept
    ({"done": ["warmup"], "metrics_bytes": True, "elapsed_s": "40"}, None, None),  # not numbers: ignored, not trusted
])
def test_read_progress_reads_sizes_and_times_only_when_they_are_numbers(tmp_path, record, size, seconds):
    from types import SimpleNamespace

    from mona_kit.run_records import read_progress

    (tmp_path / "progress.json").write_text(json.dumps(record))
    progress = read_progress(SimpleNamespace(checkpoints=tmp_path))
    assert (progress.done, progress.partial, progress.metrics_bytes, progress.elapsed_s) == (["warmup"], {}, size, seconds)


def test_resuming_a_finished_run_does_not_count_its_time_twice(toy_kit, tmp_path, monkeypatch):
    import time

    from mona_kit.engine import Session

    original_log = Session.log

    def slow_log(self, **event):  # one step 1 s longer, so that counting the run twice shows
        original_log(self, **event)
        if event.get("stage") == "finetune" and event.get("step") == 1 and "loss" in event:
            time.sleep(1.0)

    monkeypatch.setattr(Session, "log", slow_log)
    path = run(toy_kit, config(tmp_path, "mona", "done"), progress=False)
    monkeypatch.setattr(Session, "log", original_log)
    first = json.loads((path / "results.json").read_text())["wall_time_s"]
    assert first >= 1.0
    t0 = time.time()
    run(toy_kit, config(tmp_path, "mona", "done"), progress=False, resume=path)
    again = json.loads((path / "results.json").read_text())["wall_time_s"]
    # progress.json's time is taken as the last stage ends, a moment before results.json's
    assert first - 0.5 <= again <= first + (time.time() - t0)


def files(folder):
    """Every file under ``folder`` (hidden ones too) -> its bytes."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("keep_checkpoints", [True, False])
def test_resume_of_a_finished_run_changes_nothing(toy_kit, tmp_path, capsys, keep_checkpoints):
    """A finished run (results.json written) is left byte for byte: no retraining (even with checkpoints/
    deleted), no new wall time or memory, no lock taken; one line says where its results are."""
    import shutil

    from mona_kit.errors import ConfigError

    path = run(toy_kit, config(tmp_path, "finetune", "done"), progress=False)
    if not keep_checkpoints:
        shutil.rmtree(path / "checkpoints")
    before = files(path)
    capsys.readouterr()
    assert run(toy_kit, config(tmp_path, "finetune", "done"), progress=False, resume=path) == path
    assert files(path) == before
    assert capsys.readouterr().out.strip() == (
        f"run {str(path)!r} already finished; its results are in {str(path / 'results.json')!r} (left unchanged)."
    )
    with pytest.raises(ConfigError, match="already finished .* there is nothing to resume, so train.lr=0.1 changes nothing"):
        run(toy_kit, config(tmp_path, "finetune", "done"), progress=False, resume=path, overrides=["train.lr=0.1"])
    assert files(path) == before
