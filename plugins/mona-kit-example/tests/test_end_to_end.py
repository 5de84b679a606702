"""A real (tiny) run: `mona-kit run task=chirp-direction embedder=stft-patch`, through mona_kit.api.fit."""

import pytest

from mona_kit.api import fit


def chirp_fit(kit, tmp_path, n_train=96, **train):
    task = {"name": "chirp-direction", "n_train": n_train, "n_val": 96, "n_test": 96}
    return fit("finetune", task, kit=kit, run_dir=tmp_path / "chirp", backbone="tiny-bert", embedder="stft-patch",
               device="cpu", train={"epochs": 1, "batch_size": 16, "lr": 1e-3, **train})


def test_finetune_runs_and_reports_the_task_metric(example_kit, tmp_path):
    results = chirp_fit(example_kit, tmp_path, max_steps=4).results
    assert results["components"]["embedder"] == "stft-patch"
    assert results["task"] == "chirp-direction" and results["metric"] == "zero-one-error"
    assert 0.0 <= results["test"]["zero-one-error"] <= 1.0


@pytest.mark.slow
def test_finetune_learns_the_direction(example_kit, tmp_path):
    results = chirp_fit(example_kit, tmp_path, n_train=600, epochs=20, batch_size=32, lr=3e-3).results
    # Chance is 0.67; a plain magnitude spectrum cannot tell up from down chirps (about 0.45).
    assert results["test"]["zero-one-error"] < 0.25
