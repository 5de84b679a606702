"""Every registered method runs end to end on a 1-D and a 2-D offline task (tiny body, capped data)."""

import json

import pytest

from mona_kit.kit import load_kit
from mona_kit.runconfig import RunConfig
from mona_kit.runner import run

KIT = load_kit(entry_points=False)
METHODS = [e.name for e in KIT.methods]
TASKS = {
    "gunpoint": {"name": "gunpoint"},  # 1-D classification
    "darcy-16": {"name": "darcy-16", "max_train": 32, "max_val": 16, "max_test": 16},  # 2-D dense regression
}
#: From-scratch specialists serve one task family; elsewhere they refuse with one line (test_references).
SPECIALISTS = {"fno": {"darcy-16"}, "cnn": {"gunpoint"}, "minirocket": {"gunpoint"}}
FAST = {
    "orca": {"align_epochs": 2, "max_source": 64, "target_samples": 32},
    "mona": {"meta_steps": 2},
    "mona-grad-align": {"meta_steps": 2},
    "recraft": {"head_epochs": 2, "penalty_start_epoch": 1, "head_batch_size": 16, "max_source": 32, "align_epochs": 2,
                "target_samples": 32, "label_epochs": 1, "label_max_samples": 8},
}


def test_all_eight_methods_are_registered():
    assert set(METHODS) >= {"scratch", "linear-probe", "finetune", "fpt", "orca", "pare", "mona", "mona-grad-align"}


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("method", METHODS)
def test_method_runs_end_to_end(tmp_path, method, task):
    if task not in SPECIALISTS.get(method, TASKS):
        pytest.skip(f"{method} is a specialist of another task family (its refusal is tested in test_references)")
    config = RunConfig.from_dict({
        "task": TASKS[task], "backbone": "tiny-bert", "method": {"name": method, **FAST.get(method, {})},
        "source": {"name": "rotten-tomatoes", "max_per_class": 30},
        "train": {"epochs": 1, "batch_size": 16}, "output_dir": str(tmp_path), "run_name": "r",
    })
    results = json.loads((run(KIT, config, progress=False) / "results.json").read_text())
    metric = results["metric"]
    assert results["method"] == method and results["task"] == task
    assert 0.0 <= results["test"][metric] < 10.0 and 0.0 <= results["val"][metric] < 10.0
