"""The knowledge-reuse probes also log linear CKA to the pretrained body's source features: 1 before
the body trains, lower once it has, and measuring it changes nothing in training."""

import json

import pytest
import yaml

from mona_kit import cli


@pytest.fixture
def toy_cli(monkeypatch, toy_kit):
    import mona_kit.kit

    monkeypatch.setattr(mona_kit.kit, "load_kit", lambda *a, **k: toy_kit)
    return toy_kit


def run_events(tmp_path, name, reuse_every):
    cfg = {
        "task": {"name": "toy-seq", "n_train": 48}, "backbone": "toy-body", "source": "toy-text", "method": "finetune",
        "train": {"epochs": 3, "batch_size": 16, "lr": 1e-2}, "output_dir": str(tmp_path / "runs"), "run_name": name,
        "diagnostics": {"reuse_every": reuse_every, "reuse_samples": 20},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert cli.main(["run", str(path), "--no-progress", "--no-plots"]) == 0
    lines = (tmp_path / "runs" / name / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_cka_starts_at_one_and_falls_as_the_body_trains(toy_cli, tmp_path):
    probes = [e for e in run_events(tmp_path, "probed", 1) if e.get("event") == "knowledge-reuse"]
    assert len(probes) >= 3 and all("cka_to_pretrained" in e for e in probes)
    assert probes[0]["cka_to_pretrained"] == pytest.approx(1.0)  # the body before it trained
    assert all(0.0 <= e["cka_to_pretrained"] <= 1.0 + 1e-9 for e in probes)
    assert probes[-1]["cka_to_pretrained"] < 1.0 - 1e-6


def test_measuring_reuse_changes_no_training_step(toy_cli, tmp_path, monkeypatch):
    """The probes (CKA's pretrained reference included) draw nothing from the global generators that
    dropout and initialisation use, so a probed run trains exactly as an unprobed one."""
    import torch

    from mona_kit.source_proxy import SourceProxyServices

    measure, calls = SourceProxyServices.measure_reuse, []

    def checked(self, *args, **kwargs):
        before = torch.get_rng_state()
        values = measure(self, *args, **kwargs)
        assert torch.equal(before, torch.get_rng_state()), "a knowledge-reuse probe drew from the global generator"
        calls.append(values)
        return values

    monkeypatch.setattr(SourceProxyServices, "measure_reuse", checked)

    def losses(events):
        return [(e.get("stage"), e.get("step"), e.get("split"), e["loss"]) for e in events if "loss" in e]

    probed, plain = run_events(tmp_path, "probed", 1), run_events(tmp_path, "plain", 0)
    assert calls and losses(probed) and losses(probed) == losses(plain)
