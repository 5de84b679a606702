"""A real (tiny) run: `mona-kit run task=chirp-direction embedder=stft-patch` through mona_kit.runner."""

import json

import pytest

from mona_kit.runconfig import RunConfig
from mona_kit.runner import run


def chirp_config(tmp_path, n_train=96, **train):
    return RunConfig.from_dict({
        "task": {"name": "chirp-direction", "n_train": n_train, "n_val": 96, "n_test": 96},
        "backbone": "tiny-bert",
        "embedder": "stft-patch",
        "method": "finetune",
        "train": {"epochs": 1, "batch_size": 16, "lr": 1e-3, **train},
        "output_dir": str(tmp_path),
        "run_name": "chirp",
        "device": "cpu",
    })


def test_finetune_runs_and_reports_the_task_metric(example_kit, tmp_path):
    path = run(example_kit, chirp_config(tmp_path, max_steps=4), progress=False)
    results = json.loads((path / "results.json").read_text())
    assert results["components"]["embedder"] == "stft-patch"
    assert results["task"] == "chirp-direction" and results["metric"] == "zero-one-error"
    assert 0.0 <= results["test"]["zero-one-error"] <= 1.0


@pytest.mark.slow
def test_finetune_learns_the_direction(example_kit, tmp_path):
    config = chirp_config(tmp_path, n_train=600, epochs=20, batch_size=32, lr=3e-3)
    path = run(example_kit, config, progress=False)
    results = json.loads((path / "results.json").read_text())
    # Chance is 0.67; a plain magnitude spectrum cannot tell up from down chirps (about 0.45).
    assert results["test"]["zero-one-error"] < 0.25
