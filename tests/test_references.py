"""Reference methods (mean, linear, knn, fno, cnn, minirocket, specialist): registered like any
method, fitted on train, selected on val only, end to end through the CLI, repeatable by seed."""

from __future__ import annotations

import json
import math

import pytest
import torch

from mona_kit.components import TaskData, TaskSpec
from mona_kit.config import config, option
from mona_kit.data import TensorDictDataset
from mona_kit.engine import Session
from mona_kit.hookspecs import hookimpl
from mona_kit.runconfig import RunConfig
from mona_kit.runner import run
from mona_kit.runs import RunDir

REFERENCES = ("mean", "linear", "knn", "fno", "cnn", "minirocket", "specialist")


# Synthetic tasks, each built so one reference has something exact to show ---------------------
@config
class LinearTaskOptions:
    poison_test: bool = option(False, help="replace the test targets with garbage")


def linear_task(cfg: LinearTaskOptions) -> TaskData:
    """y = A x + b (3 outputs from 8 inputs), a little noise."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 8, generator=g), torch.randn(3, generator=g)

    def split(n, poison=False):
        x = torch.randn(n, 1, 8, generator=g)
        y = x.flatten(1) @ a.T + b + 0.01 * torch.randn(n, 3, generator=g)
        if poison:
            y = 1e3 * torch.randn(n, 3, generator=g)
        return TensorDictDataset({"x": x, "y": y})

    spec = TaskSpec(name="ref-linear", task_type="regression", input_shape=(1, 8), output_shape=(3,), loss="mse", metric="relative-l2")
    return TaskData(spec=spec, train=split(200), val=split(50), test=split(50, cfg.poison_test))


def smooth_fields(n: int, length: int, g: torch.Generator) -> torch.Tensor:
    t = torch.arange(length) / length
    k = torch.arange(1, 5)
    coef = torch.randn(n, 4, 2, generator=g)
    waves = coef[..., 0, None] * torch.sin(2 * math.pi * k[:, None] * t) + coef[..., 1, None] * torch.cos(2 * math.pi * k[:, None] * t)
    return waves.sum(1, keepdim=True)  # [n, 1, L]


def grid_task() -> TaskData:
    """A translation-invariant linear operator on periodic 1-D fields (an FNO can represent it)."""
    g = torch.Generator().manual_seed(1)

    def split(n):
        x = smooth_fields(n, 32, g)
        return TensorDictDataset({"x": x, "y": torch.roll(x, 5, dims=-1) - 0.5 * x})

    spec = TaskSpec(name="ref-grid", task_type="dense1d", input_shape=(1, 32), output_shape=(1, 32), loss="mse", metric="relative-l2")
    return TaskData(spec=spec, train=split(128), val=split(32), test=split(32))


def motif_task() -> TaskData:
    """One-hot sequences; class 1 holds the motif ACGTAC somewhere. Modality unknown on purpose:
    the specialist must recognise a categorical sequence from its data."""
    g = torch.Generator().manual_seed(2)
    motif = torch.tensor([0, 1, 2, 3, 0, 1])

    def split(n):
        seq = torch.randint(0, 4, (n, 48), generator=g)
        y = torch.arange(n) % 2
        for i in range(n):
            if y[i]:
                at = int(torch.randint(0, 48 - len(motif), (1,), generator=g))
                seq[i, at : at + len(motif)] = motif
        x = torch.nn.functional.one_hot(seq, 4).float().transpose(1, 2)
        return TensorDictDataset({"x": x, "y": y})

    spec = TaskSpec(name="ref-motif", task_type="classification", input_shape=(4, 48), output_shape=(2,), loss="cross-entropy", metric="zero-one-error")
    return TaskData(spec=spec, train=split(256), val=split(64), test=split(64))


def series_task() -> TaskData:
    """Noisy bursts at a class-dependent frequency and a random time: three classes."""
    g = torch.Generator().manual_seed(3)

    def split(n):
        y = torch.arange(n) % 3
        t = torch.arange(96).float()
        start = torch.randint(0, 48, (n, 1), generator=g)
        window = ((t >= start) & (t < start + 40)).float()
        x = window * torch.sin(2 * math.pi * (y[:, None] + 1) * t / 24) + 0.3 * torch.randn(n, 96, generator=g)
        return TensorDictDataset({"x": x[:, None], "y": y})

    spec = TaskSpec(name="ref-series", task_type="classification", input_shape=(1, 96), output_shape=(3,), loss="cross-entropy", metric="zero-one-error", modality="motion")
    return TaskData(spec=spec, train=split(60), val=split(30), test=split(60))


class RefTasks:
    @hookimpl
    def register_datasets(self, register):
        register("ref-linear", linear_task, config=LinearTaskOptions, summary="linear regression")
        register("ref-grid", lambda: grid_task(), summary="1-D operator")
        register("ref-motif", lambda: motif_task(), summary="one-hot motif")
        register("ref-series", lambda: series_task(), summary="time series")


@pytest.fixture(scope="module")
def ref_kit():
    from mona_kit.kit import load_kit

    return load_kit(entry_points=False, extra=[RefTasks()])


def run_ref(kit, tmp_path, task, method, name="r", seed=0, **train) -> dict:
    config = RunConfig.from_dict({
        "task": task, "backbone": "tiny-bert", "method": method, "seed": seed,
        "train": {"batch_size": 16, **train}, "output_dir": str(tmp_path), "run_name": name,
    })
    # checkpoints="all": a resume test rewinds progress.json to stand for a kill after the fit stage.
    return json.loads((run(kit, config, progress=False, checkpoints="all") / "results.json").read_text())


def fit_model(kit, task, method):
    """A session and its reference model after the fit stage (no run directory)."""
    from mona_plugins.methods.references.common import FitStage

    session = Session(kit, RunConfig.from_dict({"task": task, "backbone": "tiny-bert", "method": method}), progress=False)
    model = session.method.build_model(session, pretrained=False)
    FitStage().run(session, model)
    return session, model


def all_of(dataset):
    batch = torch.utils.data.default_collate([dataset[i] for i in range(len(dataset))])
    return batch["x"], batch["y"]


# Registration -----------------------------------------------------------------------------------
def test_every_reference_is_registered_and_described(capsys):
    from mona_kit.cli import main

    for name in REFERENCES:
        assert main(["describe", name]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"{name}  (method)") and "reference: True" in out


# Closed-form references --------------------------------------------------------------------------
def test_mean_is_the_training_mean(ref_kit):
    session, model = fit_model(ref_kit, "ref-linear", "mean")
    _, y = all_of(session.task.train)
    x_test, _ = all_of(session.task.test)
    assert torch.allclose(model(x_test), y.mean(0).expand(len(x_test), -1), atol=1e-6)


def test_mean_predicts_the_majority_class(kit):
    session, model = fit_model(kit, {"name": "gunpoint", "max_train": 20}, "mean")
    _, y = all_of(session.task.train)
    majority = int(torch.bincount(y).argmax())
    x, _ = all_of(session.task.test)
    assert (model(x).argmax(1) == majority).all()
    assert session.results["reference"]["majority_class"] == majority


def test_linear_recovers_a_linear_map_and_never_reads_test(ref_kit, tmp_path):
    clean = run_ref(ref_kit, tmp_path, "ref-linear", "linear", name="clean")
    assert clean["test"]["relative-l2"] < 0.01  # noise is 1% of a unit-scale signal
    poisoned = run_ref(ref_kit, tmp_path, {"name": "ref-linear", "poison_test": True}, "linear", name="poisoned")
    # Garbage test targets change the test score, not what was selected on val.
    assert poisoned["test"]["relative-l2"] > 0.9
    assert poisoned["reference"]["alpha"] == clean["reference"]["alpha"]
    assert poisoned["val"] == clean["val"]


def test_linear_picks_its_strength_on_validation(ref_kit):
    session, model = fit_model(ref_kit, "ref-linear", {"name": "linear", "strengths": [1e4, 1e-3]})
    # Nearly noise-free data: the weak penalty fits, the strong one shrinks to the mean.
    assert session.results["reference"]["alpha"] == 1e-3


def test_knn_copies_the_nearest_training_target(ref_kit):
    session, model = fit_model(ref_kit, "ref-linear", "knn")
    x_train, y_train = all_of(session.task.train)
    x_test, _ = all_of(session.task.test)
    nearest = torch.cdist(x_test.flatten(1), x_train.flatten(1)).argmin(1)
    assert torch.allclose(model(x_test), y_train[nearest])
    assert torch.equal(model(x_train[:7]), y_train[:7])  # a training point is its own neighbour


# Specialists ------------------------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fno_learns_an_operator(ref_kit, tmp_path, precision, monkeypatch):
    """bf16: the training step runs under CPU autocast, which every reference model turns off around its forward."""
    from mona_plugins.methods.references.common import ReferenceModel

    call, autocast_seen = ReferenceModel.__call__, set()

    def watched(self, x):
        autocast_seen.add(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None)
        return call(self, x)

    monkeypatch.setattr(ReferenceModel, "__call__", watched)
    mean = run_ref(ref_kit, tmp_path, "ref-grid", "mean", name="mean")
    fno = run_ref(ref_kit, tmp_path, "ref-grid", {"name": "fno", "width": 8, "modes": 6, "layers": 2, "lr": 1e-2}, name="fno",
                  epochs=15, precision=precision)
    assert fno["test"]["relative-l2"] < 0.5 * mean["test"]["relative-l2"]
    # training ran under the precision asked for (evaluation may run without autocast)
    assert (torch.bfloat16 in autocast_seen) == (precision == "bf16")


def _trained_references():
    from types import SimpleNamespace

    from mona_plugins.methods.references.cnn import CnnConfig, SequenceCnn
    from mona_plugins.methods.references.fno import Fno, FnoConfig

    def grid(dims):
        spec = SimpleNamespace(input_shape=(2, *[16] * dims), output_shape=(1, *[16] * dims))
        return Fno(spec, FnoConfig(width=8, modes=4, layers=2)), (3, *spec.input_shape)

    def sequence(dims):
        spec = SimpleNamespace(input_shape=(4, *[32] * dims), output_shape=(3,))
        return SequenceCnn(spec, CnnConfig(channels=8, blocks=2)).eval(), (3, *spec.input_shape)

    return {"fno-1d": lambda: grid(1), "fno-2d": lambda: grid(2), "cnn-1d": lambda: sequence(1), "cnn-2d": lambda: sequence(2)}


@pytest.mark.parametrize("which", ["fno-1d", "fno-2d", "cnn-1d", "cnn-2d"])
def test_trained_references_compute_in_fp32_under_bf16_autocast(which):
    """A specialist is a reference row: a bf16 column must not blunt it. Under autocast its output is
    the fp32 model's, bit for bit (before, the FNO's lifting, mixing and projection layers and all of
    the CNN ran in bf16)."""
    torch.manual_seed(0)
    model, shape = _trained_references()[which]()
    x = torch.randn(*shape)
    full = model(x)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        mixed = model(x)
    assert mixed.dtype == torch.float32
    assert torch.equal(mixed, full)


@pytest.mark.parametrize("dims", [1, 2])
def test_fno_spectral_path_runs_in_fp32_under_autocast(dims, monkeypatch):
    """cuFFT has no bf16 transform and CUDA no half-complex matmul (both failed on an H200 under
    autocast; CPU autocast runs FFTs in fp32, so the CPU never showed it): the FFT sees fp32 input
    with autocast off."""
    from mona_plugins.methods.references.fno import SpectralConv

    name = "rfft" if dims == 1 else "rfft2"
    real_fft, seen = getattr(torch.fft, name), []

    def spy(x, *args, **kwargs):
        seen.append((x.dtype, torch.is_autocast_enabled("cpu")))
        return real_fft(x, *args, **kwargs)

    monkeypatch.setattr(torch.fft, name, spy)
    torch.manual_seed(0)
    conv = SpectralConv(channels=4, modes=3, dims=dims)
    v = torch.randn(2, 4, *([8] * dims)).to(torch.bfloat16)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        low = conv(v)
    assert seen == [(torch.float32, False)]
    assert low.dtype == torch.float32 and torch.isfinite(low).all()


def test_cnn_and_minirocket_beat_the_majority(ref_kit, tmp_path):
    for task, method in (("ref-motif", {"name": "cnn", "channels": 16, "blocks": 2, "lr": 3e-3}), ("ref-series", "minirocket")):
        majority = run_ref(ref_kit, tmp_path, task, "mean", name=f"{task}-mean")
        special = run_ref(ref_kit, tmp_path, task, method, name=f"{task}-special", epochs=8)
        assert special["test"]["zero-one-error"] < majority["test"]["zero-one-error"] - 0.25, (task, special["test"])


@pytest.mark.parametrize(("task", "expected"), [("ref-grid", "fno"), ("ref-motif", "cnn"), ("ref-series", "minirocket")])
def test_specialist_picks_by_task_family(ref_kit, task, expected):
    from mona_plugins.methods.references.specialist import SpecialistConfig, choose

    session = Session(ref_kit, RunConfig.from_dict({"task": task, "backbone": "tiny-bert", "method": "specialist"}), progress=False)
    assert choose(session, SpecialistConfig()).model_name == expected


def test_specialist_scales_the_task_budget_and_passes_its_width(ref_kit):
    from mona_plugins.methods.references.specialist import SpecialistConfig, choose

    session = Session(ref_kit, RunConfig.from_dict({"task": "ref-grid", "backbone": "tiny-bert", "method": "specialist",
                                                    "train": {"epochs": 7}}), progress=False)
    fno = choose(session, SpecialistConfig(epochs_scale=3, width=48))
    assert (fno.cfg.epochs, fno.cfg.width) == (21, 48)
    assert choose(session, SpecialistConfig()).cfg.epochs is None  # the stage falls back to train.epochs
    assert choose(session, SpecialistConfig(epochs=4, epochs_scale=3)).cfg.epochs == 4  # its own epochs win
    motif = Session(ref_kit, RunConfig.from_dict({"task": "ref-motif", "backbone": "tiny-bert", "method": "specialist"}), progress=False)
    assert choose(motif, SpecialistConfig(width=24)).cfg.channels == 24
    # patience goes to the chosen model's stage; None leaves train.patience in charge
    assert choose(session, SpecialistConfig()).stages(session)[0].patience is None
    assert choose(session, SpecialistConfig(patience=15)).stages(session)[0].patience == 15
    assert choose(motif, SpecialistConfig(patience=9)).stages(motif)[0].patience == 9


def test_a_stage_patience_overrides_train_patience(ref_kit, tmp_path):
    """train.patience 1 would stop a noisy run at its first pass without a gain; the fno's own
    patience (more passes than the run has) lets it use its whole budget."""
    method = {"name": "fno", "width": 8, "modes": 6, "layers": 2, "lr": 1e-2, "patience": 1000}
    result = run_ref(ref_kit, tmp_path, "ref-grid", method, name="patient", epochs=6, patience=1, evals_per_epoch=4)
    plateau = result["plateau"]["fno"]
    assert not plateau["stopped_early"] and plateau["steps"] == plateau["budget"]


def test_specialist_refuses_a_task_it_has_no_model_for(ref_kit, tmp_path):
    from mona_kit.errors import ConfigError

    with pytest.raises(ConfigError, match="no specialist for task 'ref-linear'"):
        run_ref(ref_kit, tmp_path, "ref-linear", "specialist")
    assert not (tmp_path / "r").exists()  # refused before the run directory was made


def test_seed_decides_the_result(ref_kit, tmp_path):
    method = {"name": "fno", "width": 8, "modes": 6, "layers": 2}
    a = run_ref(ref_kit, tmp_path, "ref-grid", method, name="a", seed=3, epochs=2)
    b = run_ref(ref_kit, tmp_path, "ref-grid", method, name="b", seed=3, epochs=2)
    c = run_ref(ref_kit, tmp_path, "ref-grid", method, name="c", seed=4, epochs=2)
    assert a["test"] == b["test"] and a["val"] == b["val"]
    assert c["test"] != a["test"]


# Through the CLI on real offline tasks ----------------------------------------------------------
CLI_CASES = {
    "mean": "task=gunpoint",
    "linear": "task=gunpoint",
    "knn": "task=gunpoint",
    "minirocket": "task=basic-motions",
    "specialist": "task=gunpoint",
    "fno": "task.name=darcy-16 task.max_train=32 task.max_val=16 task.max_test=16",
    "cnn": "task.name=dna-oct4-mafk task.max_train=64 task.max_val=32 task.max_test=32",
}


@pytest.mark.parametrize("method", REFERENCES)
def test_reference_runs_through_the_cli(tmp_path, method, capsys):
    from mona_kit.cli import main

    args = ["run", *CLI_CASES[method].split(), f"method={method}", "backbone=tiny-bert", "train.epochs=1",
            f"output_dir={tmp_path}", "run_name=r", "--no-progress", "--no-plots"]
    assert main(args) == 0
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    metric = results["metric"]
    assert results["method"] == method and results["reference"]["model"] in REFERENCES
    assert math.isfinite(results["val"][metric]) and math.isfinite(results["test"][metric])
    assert (tmp_path / "r" / "checkpoints" / "progress.json").is_file()


@pytest.mark.parametrize("method", ["linear", "knn", "minirocket"])
def test_fitted_state_survives_a_resume(ref_kit, tmp_path, method):
    """Stopped after the fit stage: the resumed run evaluates the fitted state from the checkpoint
    (its buffers), not a blank model."""
    task = "ref-series" if method == "minirocket" else "ref-linear"
    first = run_ref(ref_kit, tmp_path, task, method)
    run_dir = tmp_path / "r"
    (run_dir / "checkpoints" / "progress.json").write_text(json.dumps({"done": ["fit"]}))
    (run_dir / "results.json").unlink()
    config = RunConfig.from_dict(RunDir.open(run_dir).read_config())
    resumed = json.loads((run(ref_kit, config, progress=False, resume=run_dir) / "results.json").read_text())
    assert resumed["test"] == first["test"] and resumed["reference"] == first["reference"]


def test_specialist_for_images_is_a_2d_cnn_that_learns(tmp_path):
    import json

    from mona_kit.cli import main

    argv = ["run", "task=mnist-5k", "task.max_train=300", "task.max_val=100", "task.max_test=200", "method=specialist",
            "method.epochs=4", "backbone=tiny-bert", "train.batch_size=32", f"output_dir={tmp_path}", "run_name=r",
            "--no-progress", "--no-plots"]
    assert main(argv) == 0
    res = json.loads((tmp_path / "r" / "results.json").read_text())
    assert res["reference"]["model"] == "cnn" and res["reference"]["specialist"] is True
    assert res["test"]["zero-one-error"] < 0.4  # ten classes: the majority class scores about 0.9
